"""The views of test-time augmentation: flips and 90° rotations of a prepared batch, and their inverses.

Pure NumPy and free of the engine, so the model card can check a declared view list without importing it;
``tta`` averages over the views and stability (``evaluation.trust``) compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .aligned import empty_aligned

MAX_VIEWS_PER_CALL = 64  # bounds the float32 batch (64 x 224 x 224 x 3 = 38 MB)


@dataclass(frozen=True)
class Transform:
    """A view of an (H, W, ...) array and the way back (for heatmaps)."""

    name: str
    description: str
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    square_only: bool = False  # rotating by 90° swaps height and width


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("identity", "The image as it is", lambda a: a, lambda a: a),
        Transform("hflip", "Mirrored left-right", lambda a: a[:, ::-1], lambda a: a[:, ::-1]),
        Transform("vflip", "Mirrored top-bottom", lambda a: a[::-1], lambda a: a[::-1]),
        Transform("rot90", "Rotated 90°", lambda a: np.rot90(a, 1), lambda a: np.rot90(a, -1), True),
        Transform("rot180", "Rotated 180°", lambda a: np.rot90(a, 2), lambda a: np.rot90(a, -2)),
        Transform("rot270", "Rotated 270°", lambda a: np.rot90(a, 3), lambda a: np.rot90(a, -3), True),
        # The two diagonal mirrors complete the 8 symmetries of a square; each is its own inverse.
        Transform("transpose", "Mirrored across the main diagonal", lambda a: np.swapaxes(a, 0, 1),
                  lambda a: np.swapaxes(a, 0, 1), True),
        Transform("antitranspose", "Mirrored across the other diagonal", lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
                  lambda a: np.swapaxes(a[::-1, ::-1], 0, 1), True),
    )
}
DEFAULT_TTA = ("identity", "hflip", "vflip", "rot180")
# Stability views: DEFAULT_TTA's 4 (usable at any input size); all 8 symmetries of a square input (``ALL_VIEWS``)
# cost about twice as much again. On a 2-vCPU CPU a forward pass of n images costs about n single analyses, so even
# 4 views take the analysis to ~2.7x (benchmarks/explanations.py): stability is opt-in on the pages.
STABILITY_VIEWS = DEFAULT_TTA
ALL_VIEWS = tuple(TRANSFORMS)


def available_transforms(input_size: tuple[int, int]) -> list[str]:
    """Transform names usable for a model input of ``input_size`` (no 90° turns for non-square inputs)."""
    square = input_size[0] == input_size[1]
    return [name for name, t in TRANSFORMS.items() if square or not t.square_only]


def check_views(transforms: Sequence[str], input_size: tuple[int, int]) -> list[Transform]:
    """The ``Transform`` of each name; ``ValueError`` (one line) for none, or one the input size cannot take."""
    if not transforms:
        raise ValueError("TTA needs at least one transform.")
    usable = available_transforms(input_size)
    bad = [t for t in transforms if t not in usable]
    if bad:
        raise ValueError(f"Transform(s) not usable for input size {input_size}: {', '.join(bad)}.")
    return [TRANSFORMS[t] for t in transforms]


def augment(x: np.ndarray, transforms: Sequence[str]) -> np.ndarray:
    """All views of a prepared batch (N, H, W, 3) as (N * T, H, W, 3), image-major."""
    chosen = check_views(transforms, x.shape[1:3])
    views = empty_aligned((len(x) * len(chosen), *x.shape[1:]), x.dtype)
    for i, image in enumerate(x):
        for j, t in enumerate(chosen):
            views[i * len(chosen) + j] = t.forward(image)
    return views


def views_in_words(views: Sequence[str]) -> str:
    """The views an analysis averaged over, for people: ``"none"`` or ``"2 views: The image as it is; ..."``."""
    if not views:
        return "none"
    return f"{len(views)} views averaged: " + "; ".join(TRANSFORMS[v].description for v in views)
