"""The heatmap's colour legend: a strip coloured by exactly the code that colours the overlays."""

from __future__ import annotations

import numpy as np

from .overlay import DEFAULT_COLORMAP, colorize

LEGEND_LEVELS = 256  # one column per colormap entry


def legend_strip(height: int = 14, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """An RGB uint8 strip, ``height`` x 256 pixels, running from relevance 0 (left) to 1 (right)."""
    if height < 1:
        raise ValueError("A legend needs a height of at least one pixel.")
    ramp = np.linspace(0.0, 1.0, LEGEND_LEVELS, dtype=np.float32)[np.newaxis, :]
    # Through colorize itself, so the legend cannot drift from the overlays if the colour table or its
    # scaling ever changes; one row, repeated (resampling one row to many would round some rows apart).
    row = colorize(ramp, (1, LEGEND_LEVELS), colormap)
    return np.ascontiguousarray(np.repeat(row, height, axis=0))
