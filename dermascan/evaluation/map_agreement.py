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
from .faithfulness import top_region


def top_region_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the top regions (``faithfulness.top_region``) of two maps of the same shape."""
    ta, tb = top_region(a, np.shape(a)[:2]), top_region(b, np.shape(b)[:2])
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
