"""Image-quality checks from the pixels alone: exposure, blur, lesion area (one module each)."""

from __future__ import annotations

import cv2
import numpy as np

from . import blur, exposure, lesion_area

QUALITY_SIZE = (224, 224)
"""Every check runs on a copy at this size (where its limits were measured), whatever the upload's: cheap for
a 12-megapixel photo too."""


def check_quality(image: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """``(measures, reasons)`` for an RGB uint8 image; an empty ``reasons`` means the quality is acceptable."""
    rgb = np.ascontiguousarray(image, dtype=np.uint8)
    small = cv2.resize(rgb, QUALITY_SIZE[::-1], interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    measures, reasons = exposure.check(small, grey)
    area, area_reasons = lesion_area.check(small, grey)
    sharpness, blur_reasons = blur.check(grey)
    measures.update(sharpness)
    measures.update(area)
    if not lesion_area.is_uniform(area):  # a uniform frame has no edges at all: "blurred" would add nothing
        reasons.extend(blur_reasons)
    reasons.extend(area_reasons)
    return measures, reasons
