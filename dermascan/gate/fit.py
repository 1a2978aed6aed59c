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
from .features import PENULTIMATE, FeatureLayout
from .ood import DEFAULT_COMPONENTS, DEFAULT_PERCENTILE, GateStats, fit_stats

Progress = Callable[[int, int], None]
SCORE_NAME = "sum over layers of mahalanobis-pca+residual / held-out median"


def model_features(model, images: Sequence[np.ndarray], progress: Progress | None = None) -> np.ndarray:
    """Gate features (N, D) of RGB uint8 images (``model.feature_layout``), with the card's preprocessing."""
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
             layout: FeatureLayout | None = None, percentile: float = DEFAULT_PERCENTILE,
             n_components: int = DEFAULT_COMPONENTS, seed: int = 0) -> tuple[GateStats, float, dict]:
    """``(stats, threshold, summary)`` from training features and classes (and held-out features if any).

    ``layout`` cuts the columns into segments (None: one segment of all of them); each segment gets its own
    statistics and is scaled by the median of its held-out scores, and the threshold is the ``percentile``-th
    percentile of the held-out images' summed scores.
    """
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
    held_out_features = np.asarray(held_out_features, np.float64)
    layout = layout or FeatureLayout(((PENULTIMATE, train_features.shape[1]),))
    if layout.width != train_features.shape[1]:
        raise ValueError(f"The features have {train_features.shape[1]} columns but the layout {layout.width}.")
    segments, scales, held_scores = [], [], []
    for train_part, held_part in zip(layout.split(train_features), layout.split(held_out_features), strict=True):
        segment = fit_stats(train_part, train_classes, n_components)
        segments.append(segment)
        held_scores.append(segment.scores(held_part))
        scales.append(float(max(np.median(held_scores[-1]), 1e-12)))
    stats = GateStats(tuple(segments), layout.taps, tuple(scales))
    # The held-out images' summed scores, as stats.scores would give them, from the scores already computed.
    scores = np.stack([raw / scale for raw, scale in zip(held_scores, scales, strict=True)], axis=1).sum(axis=1)
    threshold = float(np.percentile(scores, percentile))
    summary = {"n_fit": int(len(train_features)), "n_threshold": int(len(scores)), "threshold_on": held_out,
               "percentile": float(percentile), "components": int(segments[0].components.shape[1]),
               "feature_dim": stats.feature_dim, "feature_norm": stats.feature_norm,
               "layers": [name for name, _ in layout.segments]}
    return stats, threshold, summary


def write_gate(stats: GateStats, threshold: float, summary: dict, card: ModelCard, model_path: Path,
               card_path: Path) -> Path:
    """Write ``<model stem>.gate.npz`` beside the card and the card's ``gate`` entry; returns the sidecar path."""
    sidecar = Path(card_path).parent / f"{Path(model_path).stem}.gate.npz"
    stats.save(sidecar)
    entry = {"file": sidecar.name, "threshold": float(threshold), "score": SCORE_NAME, **summary}
    write_card(card.with_overrides(gate=entry), card_path)
    return sidecar


def _splits(labels_csv: Path | None) -> dict[str, str]:
    """``{image_id: split}`` from the labels CSV's optional ``split`` column (train / val / test)."""
    if labels_csv is None:
        return {}
    import csv
    import io

    text = Path(labels_csv).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    if "split" not in (reader.fieldnames or []):
        return {}
    return {Path((row.get("image_id") or "").strip()).stem: (row.get("split") or "").strip().lower()
            for row in reader}


def fit_gate_from_folder(model, images_dir: str | Path, labels_csv: str | Path | None = None, *,
                         progress: Progress | None = None) -> tuple[Path, float, dict]:
    """Fit the gate for ``model`` from a folder (``fit-gate``) and write the sidecar and card entry.

    With a labels CSV (``image_id,dx``) the classes are the true labels, else the model's own top class;
    a ``split`` column picks the rows: ``train`` fits, ``val`` sets the threshold, ``test`` is left alone.
    Unreadable images are skipped. Returns ``(sidecar path, threshold, summary)``.
    """
    from ..errors import DermascanError
    from ..intake.images import read_image_file
    from ..intake.labelsets import IMAGE_SUFFIXES, find_labeled_images, read_labels_csv
    from ..model.card import read_card

    folder = Path(images_dir)
    if labels_csv is not None:
        found = find_labeled_images(folder, read_labels_csv(labels_csv))
        paths, truth = found.paths, found.labels
        unknown = sorted(set(truth) - set(model.labels))
        if unknown:
            raise DermascanError(f"The labels CSV has labels the model does not know: {', '.join(unknown[:5])}.")
    elif folder.is_dir():
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        truth = [None] * len(paths)
    else:
        raise DermascanError(f"The images folder {folder.name} does not exist.")
    split_of = _splits(Path(labels_csv) if labels_csv is not None else None)
    groups: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for start in range(0, len(paths), DEFAULT_CHUNK):
        images, kept = [], []
        for path, label in zip(paths[start : start + DEFAULT_CHUNK], truth[start : start + DEFAULT_CHUNK],
                               strict=True):
            split = split_of.get(path.stem, "train") if split_of else "train"
            split = "val" if split == "validation" else split
            if split not in groups:
                continue
            try:
                images.append(read_image_file(path))
            except DermascanError:
                continue
            kept.append((split, label))
        if images:
            x = model.preprocess(images)
            probs, features = model.predict_prepared(x, calibrated=False, with_features=True)
            for (split, label), f, p in zip(kept, features, probs, strict=True):
                groups[split][0].append(f)
                groups[split][1].append(model.labels.index(label) if label is not None else int(np.argmax(p)))
        if progress is not None:
            progress(min(start + DEFAULT_CHUNK, len(paths)), len(paths))
    train_f, train_c = groups["train"]
    if len(train_f) < 3:
        raise DermascanError("Fitting the gate needs at least 3 readable training images.")
    stats, threshold, summary = fit_gate(np.array(train_f), np.array(train_c),
                                         np.array(groups["val"][0]) if groups["val"][0] else None,
                                         layout=model.feature_layout)
    card_path = model.card_file or Path(model.path).with_name(Path(model.path).stem + ".card.json")
    card = read_card(card_path) if Path(card_path).is_file() else model.card
    summary["classes_from"] = "the labels CSV" if labels_csv is not None else "the model's own top class"
    sidecar = write_gate(stats, threshold, summary, card, Path(model.path), Path(card_path))
    return sidecar, threshold, summary


def fit_for_export(model_path: Path, card_path: Path, train_images: Sequence[np.ndarray],
                   train_classes: Sequence[int], val_images: Sequence[np.ndarray]) -> Path:
    """Fit and write the gate for a freshly exported model (the training recipe's last step); returns the sidecar."""
    from ..model.card import read_card
    from ..model.lesion import load_model

    model = load_model(model_path, card=card_path, gate={})
    stats, threshold, summary = fit_gate(model_features(model, train_images), np.asarray(train_classes),
                                         model_features(model, val_images), layout=model.feature_layout)
    summary["classes_from"] = "the training labels"
    return write_gate(stats, threshold, summary, read_card(card_path), Path(model_path), Path(card_path))
