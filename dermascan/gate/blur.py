"""Blur: the variance of the Laplacian at the model's input resolution, kept deliberately lenient.

The literature warns that Laplacian variance is unreliable on skin close-ups (smooth skin scores as
"blurred"). Measured on the 5,984 HAM10000 224 px images: 5.5 - 1271 (0.5th percentile 12.0); the same
images Gaussian-blurred with sigma 2 px: 1.5 - 5.4 (99th percentile 4.0), sigma 4 px: at most 2.4. Only
an image below every HAM10000 image, i.e. strongly blurred, is flagged; mild blur is not detected.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_SHARPNESS = 4.0


def check(grey_small: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """``(measures, reasons)`` for the grey image already brought to the model's input size."""
    sharpness = float(cv2.Laplacian(grey_small, cv2.CV_64F).var())
    reasons = []
    if sharpness < MIN_SHARPNESS:
        reasons.append("The image is strongly blurred: refocus and retake it.")
    return {"sharpness": round(sharpness, 3)}, reasons
