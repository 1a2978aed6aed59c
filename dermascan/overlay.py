"""Heatmap colouring and blending, cheap enough to rerun on every slider move.

Colouring (resize + colormap) happens once per heatmap; a blend is one weighted sum
at the original image's resolution and never touches the model.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

COLORMAPS = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
}
DEFAULT_ALPHA = 0.4


def colorize(heatmap: np.ndarray, size: tuple[int, int], colormap: str = "jet") -> np.ndarray:
    """Resize a [0, 1] heatmap to ``size`` (height, width) and map it to RGB uint8 colours."""
    h, w = size
    smooth = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    levels = np.clip(smooth * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


def blend(image: np.ndarray, colored: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """``(1 - alpha) * image + alpha * colored`` as uint8; alpha is clipped to [0, 1]."""
    alpha = float(min(max(alpha, 0.0), 1.0))
    return cv2.addWeighted(image, 1.0 - alpha, colored, alpha, 0.0)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = DEFAULT_ALPHA, colormap: str = "jet") -> np.ndarray:
    """The heatmap over ``image`` at the image's own resolution."""
    return blend(image, colorize(heatmap, image.shape[:2], colormap), alpha)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as PNG."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV only fails on invalid arrays
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def png_data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` URI of an RGB uint8 image."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
