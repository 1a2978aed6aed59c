"""Overlay colouring and blending."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from dermascan.overlay import blend, colorize, overlay, png_bytes, png_data_uri


def test_overlay_keeps_the_image_resolution_and_alpha_extremes():
    image = np.full((450, 600, 3), 120, np.uint8)
    heatmap = np.zeros((7, 7), np.float32)
    heatmap[3, 3] = 1.0
    colored = colorize(heatmap, image.shape[:2])
    assert colored.shape == image.shape and colored.dtype == np.uint8
    np.testing.assert_array_equal(blend(image, colored, 0.0), image)
    np.testing.assert_array_equal(blend(image, colored, 1.0), colored)
    half = overlay(image, heatmap, 0.5)
    assert not np.array_equal(half, image) and half.shape == image.shape


def test_hot_regions_are_red_and_cold_regions_blue_in_jet():
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[:4] = 1.0
    colored = colorize(heatmap, (80, 80))
    top, bottom = colored[5, 40].astype(int), colored[75, 40].astype(int)
    assert top[0] > top[2]  # red dominates where the map is hot
    assert bottom[2] > bottom[0]  # blue where it is cold


@pytest.mark.parametrize("alpha", [-1.0, 2.0])
def test_alpha_is_clipped(alpha):
    image = np.zeros((4, 4, 3), np.uint8)
    colored = np.full((4, 4, 3), 200, np.uint8)
    expected = image if alpha < 0 else colored
    np.testing.assert_array_equal(blend(image, colored, alpha), expected)


def test_png_data_uri_round_trips():
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    uri = png_data_uri(image)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png_bytes(image)
    from dermascan.intake import read_image

    np.testing.assert_array_equal(read_image(png_bytes(image)), image)
