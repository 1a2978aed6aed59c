"""The overlay viewer: an opacity slider over the original image and its Grad-CAM, side by side.

Moving the slider only re-blends a heatmap coloured once (``overlay(alpha)``): it never reaches the
model. Each page passes its own slider key, so every page keeps its own opacity.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import streamlit as st

from dermascan.render.legend import legend_strip
from dermascan.render.overlay import DEFAULT_ALPHA
from dermascan.render.png import png_bytes

OPACITY_LABEL = "Heatmap opacity"


@functools.cache
def legend_png() -> bytes:
    """The heatmap's colour legend as PNG, encoded once per process (it never changes)."""
    return png_bytes(legend_strip())


def opacity_slider(key: str, label: str = OPACITY_LABEL) -> float:
    """The heatmap opacity, 0 (original only) to 1 (heatmap only), starting at the engine's default."""
    return st.slider(label, 0.0, 1.0, DEFAULT_ALPHA, 0.05, key=key)


def overlay_viewer(original: np.ndarray, overlay: Callable[[float], np.ndarray] | None, *, key: str,
                   caption: str, original_caption: str = "Original", missing: str = "", stacked: bool = False,
                   legend: str | None = None) -> float | None:
    """The slider, then the original (left) and its overlay at the chosen opacity (right); returns the opacity.

    ``caption`` goes under the overlay and must already be Markdown-safe (``presentation.plain``).
    Without a heatmap (``overlay`` None) there is no slider: the original shows beside ``missing``.
    ``stacked`` shows the two one above the other at the full width of the panel (to read details);
    ``legend`` (Markdown-safe) captions a colour strip of the heatmap's scale under the overlay.
    """
    if overlay is None:
        left, right = st.columns(2)
        left.image(original, caption=original_caption, width="stretch")
        right.info(missing, icon=":material/hide_image:")
        return None
    alpha = opacity_slider(key)
    left, right = (st.container(), st.container()) if stacked else st.columns(2)
    left.image(original, caption=original_caption, width="stretch")
    right.image(overlay(alpha), caption=caption, width="stretch")
    if legend is not None:
        right.image(legend_png(), caption=legend, width="stretch", output_format="PNG")  # exact colours
    return alpha
