"""How much heatmaps of one image agree, pair by pair: rank correlation and overlap of their top regions.

Two numbers per pair of maps of the same shape (every CAM method reads the same layer, so their maps have
one shape): the Spearman rank correlation over all positions (``explain_check.rank_correlation``; 1 for
the same ordering) and the intersection over union of their top ``TOP_FRACTION`` (the region the
faithfulness drop removes; 1 for the same region). Streamlit-free; the Compare page shows the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np

from .explain_check import rank_correlation
from .faithfulness import TOP_FRACTION, _pixel_ranks


def top_region(heatmap: np.ndarray) -> np.ndarray:
    """The ``TOP_FRACTION`` most relevant positions of ``heatmap`` (ties in a seeded random order)."""
    rank = _pixel_ranks(np.asarray(heatmap, np.float32), heatmap.shape[:2])
    return rank < round(TOP_FRACTION * rank.size)


def top_region_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the top regions of two maps of the same shape."""
    ta, tb = top_region(a), top_region(b)
    union = np.logical_or(ta, tb).sum()
    return float(np.logical_and(ta, tb).sum() / union) if union else 1.0


def pairwise_agreement(maps: Mapping[str, np.ndarray]) -> list[dict]:
    """``[{"a", "b", "rank_correlation", "top_iou"}]`` for every pair of ``maps`` (name -> 2-D map), in order."""
    for name, m in maps.items():
        if np.ndim(m) != 2 or not np.isfinite(m).all():
            raise ValueError(f"The map of {name} is not a 2-D map of finite numbers.")
    if len({np.shape(m) for m in maps.values()}) > 1:
        raise ValueError("The maps to compare have different shapes.")
    return [{"a": a, "b": b, "rank_correlation": rank_correlation(maps[a], maps[b]),
             "top_iou": top_region_iou(maps[a], maps[b])} for a, b in combinations(maps, 2)]
