"""Malignancy score and triage band.

The score is the sum of the probabilities of the card's malignant labels, looked up by
label *name*. (The original backend summed positions of the probability-sorted list,
which silently scores the wrong classes whenever the ranking changes.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TRIAGE_BANDS = ("low", "medium", "high")
INDETERMINATE = "indeterminate"
"""The triage of an image the input gate refused: never a band; left out of every triage statistic."""
TRIAGE_VALUES = (*TRIAGE_BANDS, INDETERMINATE)


def triaged(values: Sequence[str | None]) -> list[bool]:
    """Per value, True when it is a real triage band (not indeterminate, not missing): what statistics count."""
    return [v in TRIAGE_BANDS for v in values]


def malignant_scores(probs: np.ndarray, labels: Sequence[str], malignant_labels: Sequence[str]) -> np.ndarray:
    """Per-row sum of the probabilities of ``malignant_labels`` (found by name in ``labels``)."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    labels = list(labels)
    if probs.shape[1] != len(labels):
        raise ValueError(f"probs has {probs.shape[1]} columns but {len(labels)} labels were given.")
    missing = [m for m in malignant_labels if m not in labels]
    if missing:
        raise ValueError(f"Malignant label(s) not among the labels: {', '.join(missing)}.")
    return probs[:, [labels.index(m) for m in malignant_labels]].sum(axis=1)


def malignant_score(probs: np.ndarray, labels: Sequence[str], malignant_labels: Sequence[str]) -> float:
    """Malignancy score of one probability vector."""
    return float(malignant_scores(np.asarray(probs)[None, :], labels, malignant_labels)[0])


def triage_band(score: float, thresholds: dict[str, float]) -> str:
    """``high`` at or above thresholds['high'], ``medium`` at or above thresholds['medium'], else ``low``.

    A non-finite score raises ``ValueError``: every comparison with NaN is false, so it would
    otherwise fall through to ``low``, the one band that tells a clinician not to worry.
    """
    if not math.isfinite(score):
        raise ValueError(f"The malignancy score must be a finite number; got {score}.")
    if score >= thresholds["high"]:
        return "high"
    if score >= thresholds["medium"]:
        return "medium"
    return "low"
