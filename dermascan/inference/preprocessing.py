"""Registry of preprocessing options: pixel scalings and resize policies.

Each option is one small function registered under a name with a one-line description,
so the UI can list them and a new option is a decorator away. Resize policies take an RGB
``uint8`` array of shape (H, W, 3). Scalings get a fresh ``float32`` copy of the resized
pixels (0..255) that they own: they may scale it in place (the built-in ones do, which saves
two full-size temporaries per image) or return a new array of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .aligned import empty_aligned

__all__ = [
    "RESIZE_POLICIES",
    "SCALINGS",
    "ResizePolicy",
    "Scaling",
    "prepare",
    "prepare_batch",
    "register_resize",
    "register_scaling",
]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255.0


@dataclass(frozen=True)
class Scaling:
    """A named pixel scaling applied after resizing."""

    name: str
    description: str
    fn: Callable[[np.ndarray], np.ndarray]
    rescales: bool  # False only for "raw": the model must rescale inside


@dataclass(frozen=True)
class ResizePolicy:
    """A named way to bring an image to the model's input size."""

    name: str
    description: str
    fn: Callable[[np.ndarray, tuple[int, int]], np.ndarray]


SCALINGS: dict[str, Scaling] = {}
RESIZE_POLICIES: dict[str, ResizePolicy] = {}


def register_scaling(name: str, description: str, *, rescales: bool = True):
    """Register ``fn(float32 HxWx3 in 0..255, owned by fn) -> float32`` as scaling ``name``."""

    def decorator(fn):
        SCALINGS[name] = Scaling(name, description, fn, rescales)
        return fn

    return decorator


def register_resize(name: str, description: str):
    """Register ``fn(uint8 HxWx3, (height, width)) -> uint8`` as resize policy ``name``."""

    def decorator(fn):
        RESIZE_POLICIES[name] = ResizePolicy(name, description, fn)
        return fn

    return decorator


@register_scaling(
    "raw", "0-255 floats, unchanged: for models that rescale inside (e.g. Keras EfficientNet)", rescales=False
)
def _raw(x: np.ndarray) -> np.ndarray:
    return x


@register_scaling("unit", "x / 255 -> [0, 1]: the most common choice for small custom CNNs")
def _unit(x: np.ndarray) -> np.ndarray:
    return np.divide(x, np.float32(255.0), out=x)


@register_scaling("tf", "x / 127.5 - 1 -> [-1, 1]: MobileNet / Inception family")
def _tf(x: np.ndarray) -> np.ndarray:
    np.divide(x, np.float32(127.5), out=x)
    return np.subtract(x, np.float32(1.0), out=x)


@register_scaling("imagenet", "(x/255 - ImageNet mean) / ImageNet std: ResNet-style torch ports")
def _imagenet(x: np.ndarray) -> np.ndarray:
    np.subtract(x, IMAGENET_MEAN, out=x)
    return np.divide(x, IMAGENET_STD, out=x)


def _interpolation(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    # Area averaging avoids aliasing when shrinking; linear is smoother when enlarging.
    shrinking = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=_interpolation(image.shape[:2], (h, w)))


@register_resize("squash", "Stretch the whole frame to the input size (how HAM10000 224 px images were made)")
def _squash(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return _resize(image, size)


@register_resize("center-crop", "Crop the central region with the input's aspect ratio, then resize")
def _center_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = image.shape[:2]
    target_ratio = size[1] / size[0]
    if w / h > target_ratio:
        new_w = max(1, round(h * target_ratio))
        x0 = (w - new_w) // 2
        image = image[:, x0 : x0 + new_w]
    else:
        new_h = max(1, round(w / target_ratio))
        y0 = (h - new_h) // 2
        image = image[y0 : y0 + new_h]
    return _resize(image, size)


@register_resize("pad", "Keep the aspect ratio and pad the short side with black to the input size")
def _pad(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(size[0] / h, size[1] / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = _resize(image, (new_h, new_w))
    out = np.zeros((size[0], size[1], 3), dtype=np.uint8)
    y0, x0 = (size[0] - new_h) // 2, (size[1] - new_w) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return out


def prepare(image: np.ndarray, size: tuple[int, int], scaling: str, resize: str, *,
            out: np.ndarray | None = None) -> np.ndarray:
    """Resize an RGB uint8 image with policy ``resize`` and scale it with ``scaling``.

    ``out`` (float32, the input size) receives the result, e.g. one row of a batch; it is returned.
    """
    resized = RESIZE_POLICIES[resize].fn(image, size)
    if out is None:
        out = np.empty((size[0], size[1], 3), dtype=np.float32)
    out[...] = resized  # the cast to float32 happens in this one copy
    scaled = SCALINGS[scaling].fn(out)
    if scaled is not out:  # a registered scaling that returns a new array
        out[...] = scaled
    return out


def prepare_batch(images, size: tuple[int, int], scaling: str, resize: str) -> np.ndarray:
    """``prepare`` over several images, written straight into one float32 batch (N, H, W, 3)."""
    out = empty_aligned((len(images), size[0], size[1], 3))  # handed to TensorFlow without a copy
    for i, image in enumerate(images):
        prepare(image, size, scaling, resize, out=out[i])
    return out
