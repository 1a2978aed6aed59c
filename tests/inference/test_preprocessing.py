"""The preprocessing registry: scalings and resize policies."""

from __future__ import annotations

import numpy as np
import pytest

from dermascan.inference.preprocessing import RESIZE_POLICIES, SCALINGS, prepare, prepare_batch, register_scaling


def test_registry_has_the_documented_options_with_descriptions():
    assert {"raw", "unit", "tf", "imagenet"} <= set(SCALINGS)
    assert {"squash", "center-crop", "pad"} <= set(RESIZE_POLICIES)
    for option in [*SCALINGS.values(), *RESIZE_POLICIES.values()]:
        assert option.description and "\n" not in option.description
    assert not SCALINGS["raw"].rescales and SCALINGS["unit"].rescales


@pytest.mark.parametrize(("name", "lo", "hi"), [("raw", 0, 255), ("unit", 0, 1), ("tf", -1, 1)])
def test_scaling_ranges(name, lo, hi):
    image = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    out = prepare(image, (1, 2), name, "squash")
    assert out.dtype == np.float32
    assert out.min() == pytest.approx(lo) and out.max() == pytest.approx(hi)


def test_imagenet_scaling_centres_the_mean_colour():
    mean = np.array([[[0.485 * 255, 0.456 * 255, 0.406 * 255]]], np.float32)
    out = prepare(np.round(mean).astype(np.uint8), (1, 1), "imagenet", "squash")
    np.testing.assert_allclose(out, 0.0, atol=0.02)


def test_resize_policies_reach_the_input_size_and_keep_what_they_promise():
    image = np.zeros((450, 600, 3), np.uint8)
    image[:, :60] = 255  # a white band on the left edge, outside the central square
    for name in RESIZE_POLICIES:
        assert prepare(image, (224, 224), "raw", name).shape == (224, 224, 3)
    squash = prepare(image, (224, 224), "raw", "squash")
    crop = prepare(image, (224, 224), "raw", "center-crop")
    pad = prepare(image, (224, 224), "raw", "pad")
    assert squash[:, :15].mean() > 250  # the band is stretched, still on the left
    assert crop[:, :10].mean() < 5  # the central crop drops the left band
    assert pad[:20].mean() == 0 and pad[-20:].mean() == 0  # letterboxed top and bottom


def test_adding_an_option_is_one_small_function():
    @register_scaling("half-test", "x / 2 (test only)")
    def _half(x):
        return x / 2

    try:
        out = prepare(np.full((2, 2, 3), 100, np.uint8), (2, 2), "half-test", "squash")
        assert out.max() == 50
    finally:
        SCALINGS.pop("half-test")


def test_a_scaling_that_returns_a_new_array_still_fills_the_batch():
    @register_scaling("new-array-test", "x - 100 as a new array (test only)")
    def _shifted(x):
        return x - 100

    try:
        images = [np.full((3, 4, 3), v, np.uint8) for v in (100, 150)]
        batch = prepare_batch(images, (3, 4), "new-array-test", "squash")
        assert batch.dtype == np.float32 and batch.shape == (2, 3, 4, 3)
        np.testing.assert_array_equal(batch[:, 0, 0, 0], [0.0, 50.0])
    finally:
        SCALINGS.pop("new-array-test")


@pytest.mark.parametrize("name", ["raw", "unit", "tf", "imagenet"])
def test_built_in_scalings_in_a_batch_equal_the_textbook_formula(name):
    images = [np.random.default_rng(i).integers(0, 256, (5, 6, 3), dtype=np.uint8) for i in range(3)]
    x = np.stack(images).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
    std = np.array([0.229, 0.224, 0.225], np.float32) * 255.0
    expected = {"raw": x, "unit": x / np.float32(255.0), "tf": x / np.float32(127.5) - np.float32(1.0),
                "imagenet": (x - mean) / std}[name]
    np.testing.assert_array_equal(prepare_batch(images, (5, 6), name, "squash"), expected)
