"""The heatmap legend: the overlay's own colours, from relevance 0 to 1."""

from __future__ import annotations

import numpy as np
import pytest

from dermascan.render.legend import legend_strip
from dermascan.render.overlay import colorize


def test_the_strip_runs_through_the_overlay_colours_from_low_to_high():
    strip = legend_strip(height=5)
    assert strip.shape == (5, 256, 3) and strip.dtype == np.uint8
    assert (strip == strip[:1]).all()  # every row the same
    assert np.array_equal(strip[0, 0], colorize(np.zeros((1, 1), np.float32), (1, 1))[0, 0])
    assert np.array_equal(strip[0, -1], colorize(np.ones((1, 1), np.float32), (1, 1))[0, 0])
    assert strip[0, 0, 2] > strip[0, 0, 0] and strip[0, -1, 0] > strip[0, -1, 2]  # jet: blue, then red


def test_a_strip_needs_a_height():
    with pytest.raises(ValueError, match="height"):
        legend_strip(height=0)
