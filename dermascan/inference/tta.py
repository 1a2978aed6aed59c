"""Test-time augmentation: flips and 90° rotations, probabilities averaged over them.

Every image is resized and scaled once; the transforms are applied to that prepared
tensor and all views go through the model in ONE batched compiled call (per chunk of
images), so TTA costs one bigger call rather than one call per view.
The Grad-CAM of a TTA result is the mean of the views' heatmaps mapped back to the
original orientation, over the views whose own top class is the averaged top class.

Stability (``stability``) reads the same views the other way: not averaged, but each view's own
top class and malignancy score against the analysis of the image as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..intake.images import sha256_hex
from ..render.numbers import percent
from .aligned import empty_aligned
from .analysis import Analysis
from .scoring import malignant_scores

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


def _check(transforms: Sequence[str], input_size: tuple[int, int]) -> list[Transform]:
    if not transforms:
        raise ValueError("TTA needs at least one transform.")
    usable = available_transforms(input_size)
    bad = [t for t in transforms if t not in usable]
    if bad:
        raise ValueError(f"Transform(s) not usable for input size {input_size}: {', '.join(bad)}.")
    return [TRANSFORMS[t] for t in transforms]


def augment(x: np.ndarray, transforms: Sequence[str]) -> np.ndarray:
    """All views of a prepared batch (N, H, W, 3) as (N * T, H, W, 3), image-major."""
    chosen = _check(transforms, x.shape[1:3])
    views = empty_aligned((len(x) * len(chosen), *x.shape[1:]), x.dtype)
    for i, image in enumerate(x):
        for j, t in enumerate(chosen):
            views[i * len(chosen) + j] = t.forward(image)
    return views


def _image_chunks(n: int, n_views: int) -> range:
    return range(0, n, max(1, MAX_VIEWS_PER_CALL // n_views))


def tta_probabilities(model, x: np.ndarray, transforms: Sequence[str], *, calibrated: bool = True) -> np.ndarray:
    """Mean probabilities (N, C) over ``transforms`` of a prepared batch; one compiled call per chunk."""
    t = len(transforms)
    out = np.empty((len(x), len(model.labels)), dtype=np.float64)
    step = _image_chunks(len(x), t).step
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        probs = np.asarray(model.predict_prepared(augment(chunk, transforms), calibrated=calibrated), np.float64)
        out[start : start + len(chunk)] = probs.reshape(len(chunk), t, -1).mean(axis=1)
    return out


def _merge_heatmaps(cams: np.ndarray, chosen: np.ndarray, top: int, transforms: list[Transform]) -> tuple:
    # Only views that explain the averaged top class can be averaged meaningfully.
    agreeing = [j for j in range(len(transforms)) if int(chosen[j]) == top]
    if not agreeing:
        return np.ascontiguousarray(transforms[0].inverse(cams[0])), int(chosen[0])
    merged = np.mean([transforms[j].inverse(cams[j]) for j in agreeing], axis=0)
    peak = float(merged.max())
    return (merged / peak if peak > 0 else merged).astype(np.float32), top


def analyze_with_tta(model, images: Sequence[np.ndarray], transforms: Sequence[str], *,
                     names: Sequence[str | None] | None = None, hashes: Sequence[str] | None = None,
                     preprocessing: str | None = None, resize: str | None = None,
                     cam_method: str | None = None) -> list[Analysis]:
    """Analyses whose probabilities are averaged over ``transforms`` (RGB uint8 images in), heatmaps by
    ``cam_method`` (None: the card's).

    Probabilities and heatmaps of all views come from one ``explain_prepared`` call per
    chunk of images. ``hashes`` should be the sha256 of the uploaded bytes (computed from
    the pixels when omitted).
    """
    preprocessing = preprocessing or model.card.preprocessing
    resize = resize or model.card.resize
    chosen_t = _check(transforms, model.input_size)
    t = len(chosen_t)
    names = list(names) if names is not None else [None] * len(images)
    hashes = list(hashes) if hashes is not None else [sha256_hex(np.ascontiguousarray(im).tobytes()) for im in images]
    results: list[Analysis] = []
    step = _image_chunks(len(images), t).step
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        x = model.preprocess(chunk, preprocessing=preprocessing, resize=resize)
        probs, cams, chosen = model.explain_prepared(augment(x, transforms), cam_method=cam_method)
        probs = np.asarray(probs, np.float64).reshape(len(chunk), t, -1)
        for i, image in enumerate(chunk):
            mean = probs[i].mean(axis=0)
            heatmap, explained = None, int(np.argmax(mean))
            if model.target is not None:
                views = slice(i * t, (i + 1) * t)
                heatmap, explained = _merge_heatmaps(np.asarray(cams[views]), np.asarray(chosen[views]),
                                                     explained, chosen_t)
            results.append(model.make_analysis(
                image, mean, heatmap, explained, sha256=hashes[start + i], name=names[start + i],
                preprocessing=preprocessing, resize=resize, cam_method=cam_method,
            ))
    return results


@dataclass(frozen=True)
class ViewResult:
    """One view's own answer: its top class and malignancy score."""

    view: str
    top_label: str
    malignant_score: float

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"view": self.view, "top_label": self.top_label, "malignant_score": self.malignant_score}


def stability_views(views: Sequence[str], input_size: tuple[int, int]) -> tuple[str, ...]:
    """``views`` that the model's input allows, the original (``identity``) first and exactly once."""
    usable = set(available_transforms(input_size))
    return ("identity", *[v for v in dict.fromkeys(views) if v != "identity" and v in usable])


def view_results(model, views: Sequence[str], probs: np.ndarray) -> tuple[ViewResult, ...]:
    """A ``ViewResult`` per row of ``probs`` (C columns in the model's label order), named by ``views``."""
    labels = model.labels
    scores = malignant_scores(probs, labels, model.card.malignant_labels)
    return tuple(ViewResult(v, labels[int(np.argmax(p))], float(s)) for v, p, s in zip(views, probs, scores))


def stability(top_label: str, results: Sequence[ViewResult]) -> tuple[float, str]:
    """``(share of views whose top class is top_label, the plain sentence)``; ``results`` includes the original."""
    changed = sum(r.top_label != top_label for r in results)
    n = len(results)
    low, high = min(r.malignant_score for r in results), max(r.malignant_score for r in results)
    if changed == 0:
        head = f"The top class stayed the same under all {n} views (the image flipped and rotated)"
    else:
        head = f"The top class changed under {changed} of {n} views (the image flipped and rotated)"
    return (n - changed) / n, f"{head}; the malignancy score ranged from {percent(low, 0)} to {percent(high, 0)}."
