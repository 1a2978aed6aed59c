"""PNG encoding: every decoder reads back exactly the pixels that went in."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from dermascan.intake.images import read_image
from dermascan.render.overlay import overlay
from dermascan.render.png import png_bytes, png_data_uri
from tests.shared_data import ham_sample, needs_shared


def _decoded_by_pillow(data: bytes) -> np.ndarray:
    Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.mode) == ("PNG", "RGB")
        return np.asarray(img)


def _decoded_by_opencv(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (9, 1, 3), (31, 17, 3), (224, 224, 3), (450, 600, 3)])
def test_round_trips_through_pillow_opencv_and_intake(shape):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(image)
    np.testing.assert_array_equal(_decoded_by_pillow(data), image)
    np.testing.assert_array_equal(_decoded_by_opencv(data), image)
    np.testing.assert_array_equal(read_image(data), image)


def test_extreme_row_differences_wrap_as_png_expects():
    image = np.zeros((6, 5, 3), np.uint8)
    image[1::2] = 255  # every "Up" difference is +255 or -255, i.e. wraps modulo 256
    np.testing.assert_array_equal(_decoded_by_pillow(png_bytes(image)), image)


def test_non_contiguous_views_are_encoded_as_seen():
    image = np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    view = image[::2, ::3]
    np.testing.assert_array_equal(_decoded_by_pillow(png_bytes(view)), view)


@needs_shared
def test_real_dermoscopy_overlays_are_about_the_size_of_opencvs_png():
    # The speed must not be paid for in response size: OpenCV's default PNG was the encoder before.
    ours = theirs = 0
    for path in ham_sample(7, per_class=True):
        image = overlay(read_image(path.read_bytes()), np.random.default_rng(0).random((7, 7)), 0.4)
        data = png_bytes(image)
        np.testing.assert_array_equal(_decoded_by_pillow(data), image)
        ours, theirs = ours + len(data), theirs + len(cv2.imencode(".png", image)[1])
    assert ours <= 1.05 * theirs


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)])
def test_rejects_what_is_not_an_rgb_uint8_image(bad):
    with pytest.raises(ValueError, match="RGB uint8"):
        png_bytes(bad)


def test_data_uri_holds_the_same_png():
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    uri = png_data_uri(image)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png_bytes(image)


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 48), st.integers(1, 48), st.just(3))))
def test_any_rgb_image_round_trips_exactly(image):
    np.testing.assert_array_equal(_decoded_by_pillow(png_bytes(image)), image)
