"""Is there a lesion to look at? Otsu's threshold on the blue channel (lesions absorb blue light).

Measured on the 5,984 HAM10000 224 px images: the Otsu dark share is 0.011 - 0.90, the contrast between
the two Otsu classes 10.8 - 195 grey levels and the grey standard deviation 5.0 - 80. A nearly uniform
frame (a solid colour, a blank sheet) or one with under 0.5% dark area is flagged (0 false flags there).
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_CONTRAST = 6.0  # grey levels between the Otsu classes
MIN_STD = 3.0
MIN_LESION_FRACTION = 0.005


def check(rgb_small: np.ndarray, grey_small: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """``(measures, reasons)`` for the RGB and grey images at the model's input size."""
    blue = np.ascontiguousarray(rgb_small[..., 2])
    _, mask = cv2.threshold(blue, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    fraction = cv2.countNonZero(mask) / mask.size
    contrast = 0.0
    if 0.0 < fraction < 1.0:  # OpenCV's masked means: several times faster than numpy's boolean indexing
        contrast = cv2.mean(blue, cv2.bitwise_not(mask))[0] - cv2.mean(blue, mask)[0]
    std = float(cv2.meanStdDev(grey_small)[1][0, 0])
    reasons = []
    if is_uniform({"grey_std": std, "lesion_contrast": contrast}):
        reasons.append("No lesion is visible: the image is nearly uniform.")
    elif fraction < MIN_LESION_FRACTION:
        reasons.append("The lesion area is too small: move closer or zoom in.")
    return {"lesion_fraction": round(fraction, 4), "lesion_contrast": round(contrast, 2),
            "grey_std": round(std, 2)}, reasons


def is_uniform(measures: dict[str, float]) -> bool:
    """True when ``check``'s measures describe a nearly uniform frame (nothing to see, lesion or edge)."""
    return measures["grey_std"] < MIN_STD or measures["lesion_contrast"] < MIN_CONTRAST
