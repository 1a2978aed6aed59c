"""Fitting the OOD statistics for a model from its training images, and writing them beside its card.

Used by ``python -m dermascan fit-gate`` and by the training recipe's export. The threshold is the
``percentile``-th percentile of the scores of held-out in-distribution images (the validation split), or,
without one, of a seeded fifth of the images that is left out of the fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..inference.batch import DEFAULT_CHUNK
from ..model.card import ModelCard, write_card
from .ood import DEFAULT_COMPONENTS, DEFAULT_PERCENTILE, OODStats, fit_stats

Progress = Callable[[int, int], None]


def model_features(model, images: Sequence[np.ndarray], progress: Progress | None = None) -> np.ndarray:
    """Penultimate features (N, D) of RGB uint8 images, with the card's preprocessing, in chunks."""
    if not model.has_features:
        from .features import NO_FEATURES

        raise ValueError(f"The gate cannot be fitted: {NO_FEATURES}.")
    out = []
    for start in range(0, len(images), DEFAULT_CHUNK):
        x = model.preprocess(images[start : start + DEFAULT_CHUNK])
        out.append(model.predict_prepared(x, calibrated=False, with_features=True)[1])
        if progress is not None:
            progress(min(start + DEFAULT_CHUNK, len(images)), len(images))
    return np.concatenate(out).astype(np.float64)


def fit_gate(train_features: np.ndarray, train_classes: np.ndarray, held_out_features: np.ndarray | None = None, *,
             percentile: float = DEFAULT_PERCENTILE, n_components: int = DEFAULT_COMPONENTS,
             seed: int = 0) -> tuple[OODStats, float, dict]:
    """``(stats, threshold, summary)`` from training features and classes (and held-out features if any)."""
    train_features = np.asarray(train_features, np.float64)
    train_classes = np.asarray(train_classes)
    if held_out_features is None or len(held_out_features) == 0:
        order = np.random.default_rng(seed).permutation(len(train_features))
        cut = max(1, len(order) // 5)
        held_out_features = train_features[order[:cut]]
        train_features, train_classes = train_features[order[cut:]], train_classes[order[cut:]]
        held_out = "a seeded fifth of the images, left out of the fit"
    else:
        held_out = "the validation images"
    stats = fit_stats(train_features, train_classes, n_components)
    scores = stats.scores(held_out_features)
    threshold = float(np.percentile(scores, percentile))
    summary = {"n_fit": int(len(train_features)), "n_threshold": int(len(scores)), "threshold_on": held_out,
               "percentile": float(percentile), "components": int(stats.components.shape[1]),
               "feature_dim": stats.feature_dim}
    return stats, threshold, summary


def write_gate(stats: OODStats, threshold: float, summary: dict, card: ModelCard, model_path: Path,
               card_path: Path) -> Path:
    """Write ``<model stem>.gate.npz`` beside the card and the card's ``gate`` entry; returns the sidecar path."""
    sidecar = Path(card_path).parent / f"{Path(model_path).stem}.gate.npz"
    stats.save(sidecar)
    entry = {"file": sidecar.name, "threshold": float(threshold), "score": "mahalanobis-pca+residual", **summary}
    write_card(card.with_overrides(gate=entry), card_path)
    return sidecar
