"""Pairwise agreement of heatmaps: rank correlation and top-region overlap on maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from dermascan.evaluation.map_agreement import pairwise_agreement, top_region_iou


def test_identical_reversed_and_disjoint_maps():
    ramp = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    rows = pairwise_agreement({"a": ramp, "same": ramp * 0.5, "reversed": 1 - ramp})
    by_pair = {(r["a"], r["b"]): r for r in rows}
    assert list(by_pair) == [("a", "same"), ("a", "reversed"), ("same", "reversed")]
    assert by_pair["a", "same"]["rank_correlation"] == pytest.approx(1.0)
    assert by_pair["a", "same"]["top_iou"] == 1.0
    assert by_pair["a", "reversed"]["rank_correlation"] == pytest.approx(-1.0)
    assert by_pair["a", "reversed"]["top_iou"] == 0.0  # the top 20% of one is the bottom 20% of the other


def test_half_overlapping_top_regions():
    a = np.zeros((10, 10), np.float32)
    b = np.zeros((10, 10), np.float32)
    a[:2] = 1.0  # top 20%: rows 0-1
    b[1:3] = 1.0  # top 20%: rows 1-2
    assert top_region_iou(a, b) == pytest.approx(10 / 30)


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="finite"):
        pairwise_agreement({"a": np.full((4, 4), np.nan), "b": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="shapes"):
        pairwise_agreement({"a": np.zeros((4, 4)), "b": np.zeros((5, 5))})
