"""Malignancy score and triage band.

The score is the sum of the probabilities of the card's malignant labels, looked up by
label *name*. (The original backend summed positions of the probability-sorted list,
which silently scores the wrong classes whenever the ranking changes.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRIAGE_BANDS = ("low", "medium", "high")


def malignant_scores(probs: np.ndarray, labels: Sequence[str], malignant_labels: Sequence[str]) -> np.ndarray:
    """Per-row sum of the probabilities of ``malignant_labels`` (found by name in ``labels``)."""
    probs = np.asarray(probs, dtype=np.float64)
    index = [list(labels).index(name) for name in malignant_labels]
    return probs[..., index].sum(axis=-1)


def malignant_score(probs: np.ndarray, labels: Sequence[str], malignant_labels: Sequence[str]) -> float:
    """Malignancy score of one probability vector."""
    return float(malignant_scores(np.asarray(probs)[None, :], labels, malignant_labels)[0])


def triage_band(score: float, thresholds: dict[str, float]) -> str:
    """``high`` at or above thresholds['high'], ``medium`` at or above thresholds['medium'], else ``low``."""
    if score >= thresholds["high"]:
        return "high"
    if score >= thresholds["medium"]:
        return "medium"
    return "low"
