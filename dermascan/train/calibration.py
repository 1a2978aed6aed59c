"""Post-hoc calibration and triage thresholds, fitted on the validation split only."""

from __future__ import annotations

import numpy as np

from ..evaluation.metrics import apply_temperature, fit_temperature, malignant_scores, thresholds_for_sensitivity

HIGH_SENSITIVITY = 0.95  # "high" band: flags at least 95% of malignant validation lesions
MEDIUM_SENSITIVITY = 0.99  # "medium" band: flags at least 99%, so medium <= high


def fit_calibration(
    val_probs: np.ndarray, val_y: np.ndarray, labels: list[str], malignant_labels: list[str]
) -> tuple[float, dict[str, float]]:
    """Temperature by validation NLL, then the medium/high malignancy thresholds on the calibrated scores."""
    temperature = fit_temperature(val_probs, val_y)
    scores = malignant_scores(apply_temperature(val_probs, temperature), labels, malignant_labels)
    is_malignant = np.isin(val_y, [labels.index(m) for m in malignant_labels])
    high = thresholds_for_sensitivity(scores, is_malignant, HIGH_SENSITIVITY)
    medium = min(thresholds_for_sensitivity(scores, is_malignant, MEDIUM_SENSITIVITY), high)
    return temperature, {"medium": medium, "high": high}
