"""Overlay colouring and blending."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dermascan.render.overlay import COLORMAPS, _cubic_resampling, blend, colorize, overlay


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


@pytest.mark.parametrize("colormap", sorted(COLORMAPS))
def test_colours_are_opencvs_colormap_in_rgb_order(colormap):
    heatmap = np.linspace(0.0, 1.0, 49, dtype=np.float32).reshape(7, 7)
    smooth = cv2.resize(heatmap, (60, 50), interpolation=cv2.INTER_CUBIC)
    levels = np.clip(smooth * 255.0, 0, 255).astype(np.uint8)
    expected = cv2.cvtColor(cv2.applyColorMap(levels, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(colorize(heatmap, (50, 60), colormap), expected)


@pytest.mark.parametrize(("map_shape", "size"), [((7, 7), (224, 224)), ((7, 7), (450, 600)), ((14, 10), (97, 31)),
                                                 ((1, 1), (5, 8)), ((7, 7), (7, 7)), ((16, 16), (4, 6))])
def test_matrix_resampling_is_opencvs_bicubic_resize(map_shape, size):
    heatmap = np.random.default_rng(sum(size)).random(map_shape).astype(np.float32)
    expected = cv2.resize(heatmap, size[::-1], interpolation=cv2.INTER_CUBIC).reshape(size)
    got = _cubic_resampling(map_shape[0], size[0]) @ heatmap @ _cubic_resampling(map_shape[1], size[1]).T
    np.testing.assert_allclose(got, expected, atol=1e-5)
