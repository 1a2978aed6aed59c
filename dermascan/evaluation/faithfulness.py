"""Faithfulness of a heatmap: how much the prediction depends on the region it highlights.

Three numbers per analysis, all read off the explained class's (calibrated) probability:

- the **deletion curve**: the most relevant pixels removed in ``STEPS`` equal steps (0 %, 10 %, ...
  100 % of the image); a faithful map makes the probability fall early, so the area under the curve
  (trapezoid over the fraction removed, in [0, 1]) is *low*;
- the **insertion curve**: the other way round, from an image with everything removed, the most
  relevant pixels revealed first; a faithful map gives a *high* area;
- the **drop**: the share of the probability lost when the top ``TOP_FRACTION`` of the map is removed.

How pixels are removed matters. Filling them with black or any constant leaks the mask's shape to the
model (the hole itself becomes a feature), and a plain blurred copy keeps a region's mean colour, which
is exactly what a colour-sensitive lesion model uses. ROAD (Rong et al. 2022, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods") fills removed pixels by noisy *linear
imputation* from their kept neighbours, solving one sparse linear system per mask. We use the cheap
relative of that system, a normalised convolution: a removed pixel gets the Gaussian-weighted mean of
the *kept* pixels around it (``blur(image * kept) / blur(kept)``), the mean colour of the kept
pixels where none is near, and black when nothing is kept. Like ROAD's imputation it is smooth
across the mask's edge and carries no information from the removed pixels; it costs two blurs per
step instead of a sparse solve, so a whole curve takes milliseconds. We leave out ROAD's added
noise: on a lesion model noise is itself a perturbation the model reacts to, and it would make two
runs disagree. An image with nothing kept is black (RISE's deletion baseline), not its mean colour,
which would still carry the colour such a model reads.

All perturbed inputs of one call (both curves and the drop) go through the model in ONE batched
``predict_prepared`` call. The same measurement on a seeded random map (``random_baseline``) is the
yardstick: a map is only informative where it beats random.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import INVALID_OUTPUT_MESSAGE, DermascanError, InvalidModelOutput
from ..inference.aligned import empty_aligned

STEPS = 10  # deletion / insertion steps: the curves have STEPS + 1 points, 0 % to 100 %
TOP_FRACTION = 0.20  # the "highlighted region" whose removal gives the drop
IMPUTE_SIGMA_FRACTION = 0.05  # Gaussian sigma of the imputation, as a fraction of the shorter side
_MIN_WEIGHT = 1e-3  # below this share of kept pixels nearby, a removed pixel gets the kept mean colour
_EMPTY_PIXEL = 0  # an image with every pixel removed: black (see the module docstring)
STRONG_DROP = 0.5  # drop at or above: "depends strongly"
WEAK_DROP = 0.2  # drop below: "depends weakly"; in between: "moderately"
RANDOM_SEED = 0


@dataclass(frozen=True)
class Faithfulness:
    """Deletion / insertion AUC, drop and a plain sentence for one map of one image."""

    deletion_auc: float
    insertion_auc: float
    drop: float  # share of the explained class's probability lost with the top region removed, in [-1, 1]
    sentence: str
    deletion_curve: tuple[float, ...]  # probability after removing 0, 1/STEPS, ... 1 of the image
    insertion_curve: tuple[float, ...]  # probability after revealing 0, 1/STEPS, ... 1 of the image

    def to_dict(self) -> dict:
        """JSON-ready fields (every number finite)."""
        return {"deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc, "drop": self.drop,
                "sentence": self.sentence, "deletion_curve": list(self.deletion_curve),
                "insertion_curve": list(self.insertion_curve)}


def faithfulness(model, analysis, *, saliency: np.ndarray | None = None) -> Faithfulness:
    """How much ``analysis``'s prediction depends on its heatmap's region (or on ``saliency``, any 2-D map).

    ``model`` is the ``LesionModel`` that made the analysis; the image is preprocessed as the analysis
    was, and every perturbed copy is scored in one ``model.predict_prepared`` call.
    """
    saliency = analysis.heatmap if saliency is None else saliency
    if saliency is None:
        raise DermascanError("No heatmap to test: the model has no layer to explain.")
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.ndim != 2 or saliency.size == 0 or not np.isfinite(saliency).all():
        raise DermascanError("The heatmap to test must be a non-empty 2-D map of finite numbers.")
    x, blank = model.preprocess([analysis.image, np.full((*model.input_size, 3), _EMPTY_PIXEL, np.uint8)],
                                preprocessing=analysis.preprocessing, resize=analysis.resize)
    empty = blank[blank.shape[0] // 2, blank.shape[1] // 2]  # one pixel: the scaling is per channel
    fractions = np.linspace(0.0, 1.0, STEPS + 1)
    rank = _pixel_ranks(saliency, x.shape[:2])
    removed = [rank < round(f * rank.size) for f in fractions]  # most relevant first
    masks = removed + [~m for m in removed] + [top_region(saliency, x.shape[:2])]
    batch = empty_aligned((len(masks), *x.shape))
    for i, mask in enumerate(masks):
        batch[i] = impute(x, mask, empty)
    probs = model.predict_prepared(batch)
    if not np.isfinite(probs).all():
        raise InvalidModelOutput(INVALID_OUTPUT_MESSAGE)
    p = probs[:, analysis.labels.index(analysis.explained_label)].astype(np.float64)
    deletion, insertion, p_top = p[: STEPS + 1], p[STEPS + 1 : 2 * STEPS + 2], float(p[-1])
    drop = _relative_drop(float(deletion[0]), p_top)
    name = analysis.display_names.get(analysis.explained_label, analysis.explained_label)
    return Faithfulness(
        deletion_auc=_auc(fractions, deletion), insertion_auc=_auc(fractions, insertion), drop=drop,
        sentence=faithfulness_sentence(drop, name, has_evidence=bool(np.any(saliency > 0))),
        deletion_curve=tuple(float(v) for v in deletion), insertion_curve=tuple(float(v) for v in insertion),
    )


def random_baseline(model, analysis, *, seed: int = RANDOM_SEED) -> Faithfulness:
    """``faithfulness`` of a seeded uniform random map at the heatmap's resolution (the yardstick)."""
    shape = analysis.heatmap.shape if analysis.heatmap is not None else (7, 7)
    return faithfulness(model, analysis, saliency=random_map(shape, seed))


def random_map(shape: tuple[int, int], seed: int = RANDOM_SEED) -> np.ndarray:
    """A seeded uniform random map in [0, 1): upsampled like a heatmap, so it is as coarse as one."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def faithfulness_sentence(drop: float, class_name: str, *, has_evidence: bool = True) -> str:
    """The plain sentence shown beside a map: how strongly the prediction depends on its region."""
    if not has_evidence:
        return f"The heatmap shows no positive evidence for {class_name}, so there is no highlighted region to test."
    word = "strongly" if drop >= STRONG_DROP else "weakly" if drop < WEAK_DROP else "moderately"
    if abs(drop) < 0.005:
        change = "leaves it unchanged"
    else:
        change = f"lowers it by {drop:.0%}" if drop > 0 else f"raises it by {-drop:.0%}"
    return (f"The prediction depends {word} on the highlighted region: removing the top {TOP_FRACTION:.0%} "
            f"of the map from the image {change} (probability of {class_name}).")


def impute(x: np.ndarray, removed: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """``x`` (H, W, C) with the ``removed`` pixels filled from the kept ones (normalised convolution).

    ``empty`` (C,) is the colour of an image with nothing left, and of pixels with no kept pixel near.
    """
    kept = (~removed).astype(np.float32)
    if not kept.any():
        return np.broadcast_to(empty.astype(np.float32), x.shape).copy()
    sigma = IMPUTE_SIGMA_FRACTION * min(x.shape[:2])
    weight = _blur(kept, sigma)
    filled = _blur(x * kept[..., None], sigma) / np.maximum(weight, _MIN_WEIGHT)[..., None]
    kept_mean = (x * kept[..., None]).sum(axis=(0, 1)) / kept.sum()
    filled = np.where((weight >= _MIN_WEIGHT)[..., None], filled, kept_mean.astype(np.float32))
    return np.where(removed[..., None], filled, x).astype(np.float32)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    # Reflected borders: an image edge is not a removed region.
    return cv2.GaussianBlur(a, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _pixel_ranks(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Rank of every input pixel, 0 = most relevant; ties (a ReLU map is often 0 over wide areas) broken
    by a seeded random order, never by position, so no corner of the image is removed first by accident."""
    h, w = size
    up = cv2.resize(saliency, (w, h), interpolation=cv2.INTER_LINEAR).ravel()
    tiebreak = np.random.default_rng(RANDOM_SEED).random(up.size)
    order = np.lexsort((tiebreak, -up))
    rank = np.empty(up.size, dtype=np.int64)
    rank[order] = np.arange(up.size)
    return rank.reshape(h, w)


def top_region(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The ``TOP_FRACTION`` most relevant pixels of ``saliency`` resized to ``size`` (ties in a seeded random
    order): the region whose removal gives the drop."""
    rank = _pixel_ranks(np.asarray(saliency, np.float32), size)
    return rank < round(TOP_FRACTION * rank.size)


def _relative_drop(p_full: float, p_removed: float) -> float:
    if p_full <= 0.0:
        return 0.0
    return float(np.clip((p_full - p_removed) / p_full, -1.0, 1.0))


def _auc(fractions: np.ndarray, curve: np.ndarray) -> float:
    return float(np.clip(np.trapezoid(curve, fractions), 0.0, 1.0))
