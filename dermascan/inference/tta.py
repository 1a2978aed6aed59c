"""Test-time augmentation: flips and 90° rotations, probabilities averaged over them.

Every image is resized and scaled once; the views (``views``) are made from that prepared
tensor and all views go through the model in ONE batched compiled call (per chunk of
images), so TTA costs one bigger call rather than one call per view. ``LesionModel`` calls
``predict_views`` / ``explain_views`` whenever views are asked for: a card's ``tta`` (the
model's validated behaviour) or the Compare page's.
The heatmap of a TTA result is the mean of the views' heatmaps mapped back to the
original orientation, over the views that explain the same class as the result.

Stability (``stability``) reads the same views the other way: not averaged, but each view's own
top class and malignancy score against the analysis of the image as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..render.numbers import percent
from .scoring import malignant_scores
from .views import MAX_VIEWS_PER_CALL, Transform, augment, available_transforms, check_views


def _image_chunks(n: int, n_views: int) -> range:
    return range(0, n, max(1, MAX_VIEWS_PER_CALL // n_views))


def _gate_features(features: np.ndarray, n: int, views: Sequence[str]) -> np.ndarray:
    # The OOD gate was fitted on single views of the image as it is: the identity view's features when the views
    # include it, else their mean (an (n, 0) array stays empty: the model has no features to give).
    if features.shape[1] == 0:
        return np.zeros((n, 0), features.dtype)
    per_image = features.reshape(n, len(views), -1)
    if "identity" in views:
        return per_image[:, list(views).index("identity")]
    return per_image.mean(axis=1)


def predict_views(model, x: np.ndarray, views: Sequence[str], *, calibrated: bool = True) -> tuple:
    """``(probabilities (N, C) averaged over views, gate features (N, D))`` of a prepared batch; one compiled
    call per chunk of images."""
    check_views(views, x.shape[1:3])
    t = len(views)
    probs_out = np.empty((len(x), len(model.labels)), dtype=np.float64)
    features_out = []
    step = _image_chunks(len(x), t).step
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        probs, features = model.predict_prepared(augment(chunk, views), calibrated=calibrated, with_features=True)
        probs_out[start : start + len(chunk)] = np.asarray(probs, np.float64).reshape(len(chunk), t, -1).mean(axis=1)
        features_out.append(_gate_features(np.asarray(features), len(chunk), views))
    return probs_out, np.concatenate(features_out) if features_out else np.zeros((0, 0), np.float32)


def explain_views(model, x: np.ndarray, views: Sequence[str], class_index: Sequence[int] | None = None, *,
                  calibrated: bool = True, cam_method: str | None = None) -> tuple:
    """``(probabilities averaged over views, heatmaps, explained class index, gate features)`` of a prepared
    batch, each heatmap in the original orientation; one compiled call of ``cam_method``'s pass per chunk.

    ``class_index`` -1 (or None for all) explains the averaged top class.
    """
    chosen_t = check_views(views, x.shape[1:3])
    t, n = len(chosen_t), len(x)
    idx = np.full(n, -1, np.int32) if class_index is None else np.asarray(class_index, np.int32)
    probs_out = np.empty((n, len(model.labels)), dtype=np.float64)
    explained = np.empty(n, dtype=np.int32)
    maps, features_out = [], []
    step = _image_chunks(n, t).step
    for start in range(0, n, step):
        chunk, wanted = x[start : start + step], idx[start : start + step]
        probs, cams, chosen, features = model.explain_prepared(
            augment(chunk, views), np.repeat(wanted, t), calibrated=calibrated, with_features=True,
            cam_method=cam_method)
        mean = np.asarray(probs, np.float64).reshape(len(chunk), t, -1).mean(axis=1)
        probs_out[start : start + len(chunk)] = mean
        cams, chosen = np.asarray(cams), np.asarray(chosen)
        for i in range(len(chunk)):
            target = int(wanted[i]) if wanted[i] >= 0 else int(np.argmax(mean[i]))
            own = slice(i * t, (i + 1) * t)
            heatmap, explained[start + i] = _merge_heatmaps(cams[own], chosen[own], target, chosen_t)
            maps.append(heatmap)
        features_out.append(_gate_features(np.asarray(features), len(chunk), views))
    return probs_out, np.stack(maps), explained, np.concatenate(features_out)


def _merge_heatmaps(cams: np.ndarray, chosen: np.ndarray, target: int, transforms: list[Transform]) -> tuple:
    # Only views that explain the target class can be averaged meaningfully.
    agreeing = [j for j in range(len(transforms)) if int(chosen[j]) == target]
    if not agreeing:
        return np.ascontiguousarray(transforms[0].inverse(cams[0])), int(chosen[0])
    merged = np.mean([transforms[j].inverse(cams[j]) for j in agreeing], axis=0)
    peak = float(merged.max())
    return (merged / peak if peak > 0 else merged).astype(np.float32), target


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
