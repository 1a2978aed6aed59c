"""Validation-only probes of inference-time options for a trained model: TTA views and per-class logit offsets.

``python -m dermascan.train.posthoc --model M --split S`` loads the model through the engine
(``dermascan.load_model``: card preprocessing, resize and temperature), predicts every validation
image under all 8 symmetries of the square in batched compiled calls, then scores, on validation only:

* each TTA view set (identity alone, + horizontal flip, the 4 flips, all 8): mean calibrated probabilities;
* per-class logit offsets fitted for balanced accuracy, judged by 2-fold cross-validation *within* the
  validation split (folds grouped by lesion), so an offset is credited only with what it does on images
  it was not fitted on.

The test split is never read: these numbers decide what the card declares, and the test split must
stay unseen until the report. The printed Markdown table goes into ``model/TRAINING_LOG.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TRAINING_DATA
from ..evaluation.metrics import balanced_accuracy, classification_report
from ..inference.views import ALL_VIEWS, DEFAULT_TTA, augment, available_transforms
from .data import load_image_files
from .split import image_paths

VIEW_SETS: dict[str, tuple[str, ...]] = {
    "none": ("identity",),
    "hflip": ("identity", "hflip"),
    "flips4": DEFAULT_TTA,
    "all8": ALL_VIEWS,
}
OFFSET_GRID = np.round(np.linspace(-2.0, 2.0, 41), 3)  # log-probability offsets tried per class
OFFSET_ROUNDS = 3
CHUNK = 16  # images per compiled call (x 8 views)


def view_probabilities(model, images: np.ndarray, views: tuple[str, ...] = ALL_VIEWS) -> np.ndarray:
    """Calibrated probabilities of every view: (N, len(views), C), one compiled call per chunk of images."""
    out = np.empty((len(images), len(views), len(model.labels)), dtype=np.float64)
    for start in range(0, len(images), CHUNK):
        x = model.preprocess(list(images[start : start + CHUNK]))
        probs = np.asarray(model.predict_prepared(augment(x, views)), np.float64)
        out[start : start + len(x)] = probs.reshape(len(x), len(views), -1)
    return out


def fit_offsets(log_probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-class offsets added to log-probabilities that maximise balanced accuracy (coordinate ascent on a grid).

    Ties keep the offset nearest zero, so a class the data says nothing about stays where it was.
    """
    n_classes = log_probs.shape[1]
    offsets = np.zeros(n_classes)
    by_size = np.argsort(np.abs(OFFSET_GRID), kind="stable")
    for _ in range(OFFSET_ROUNDS):
        for k in range(n_classes):
            best, best_score = offsets[k], -1.0
            for value in OFFSET_GRID[by_size]:
                offsets[k] = value
                score = balanced_accuracy(y, np.argmax(log_probs + offsets, axis=1))
                if score > best_score + 1e-12:
                    best, best_score = value, score
            offsets[k] = best
    return offsets


def lesion_folds(lesions: pd.Series, seed: int = 42) -> np.ndarray:
    """Fold 0/1 per image, every image of a lesion in the same fold."""
    unique = lesions.drop_duplicates().sample(frac=1.0, random_state=seed).to_list()
    fold_of = {lesion: i % 2 for i, lesion in enumerate(unique)}
    return np.array([fold_of[lesion] for lesion in lesions], dtype=int)


def offsets_cross_validated(probs: np.ndarray, y: np.ndarray, folds: np.ndarray) -> dict:
    """Balanced accuracy with and without offsets, each fold's offsets judged on the other fold."""
    log_probs = np.log(np.maximum(probs, 1e-12))
    plain, adjusted, fitted = [], [], []
    for fold in (0, 1):
        fit, held = folds != fold, folds == fold
        offsets = fit_offsets(log_probs[fit], y[fit])
        fitted.append(offsets.tolist())
        plain.append(balanced_accuracy(y[held], np.argmax(log_probs[held], axis=1)))
        adjusted.append(balanced_accuracy(y[held], np.argmax(log_probs[held] + offsets, axis=1)))
    return {"bal_acc_plain": float(np.mean(plain)), "bal_acc_offsets": float(np.mean(adjusted)),
            "offsets_per_fold": fitted}


def probe(model, images: np.ndarray, truth: list[str], lesions: pd.Series,
          view_sets: tuple[str, ...] = tuple(VIEW_SETS)) -> list[dict]:
    """One row per view set (names of ``VIEW_SETS``): validation metrics of the mean probabilities and the
    cross-validated offsets. Each view is computed once, for every set that uses it."""
    labels, malignant = list(model.labels), list(model.card.malignant_labels)
    usable = set(available_transforms(model.input_size))
    sets = {name: VIEW_SETS[name] for name in view_sets if set(VIEW_SETS[name]) <= usable}
    views = tuple(v for v in ALL_VIEWS if any(v in chosen for chosen in sets.values()))
    per_view = view_probabilities(model, images, views)
    y = np.array([labels.index(t) for t in truth])
    folds = lesion_folds(lesions)
    rows = []
    for name, chosen in sets.items():
        probs = per_view[:, [views.index(v) for v in chosen]].mean(axis=1)
        report = classification_report(truth, probs, labels, malignant, model.card.thresholds)
        rows.append({"views": name, "n_views": len(chosen), "bal_acc": report["balanced_accuracy"],
                     "melanoma_auc": report["melanoma_auc"], "macro_auc": report["macro_auc"],
                     "malignant_auc": report["malignant"]["auc"], "ece": report["ece"],
                     **offsets_cross_validated(probs, y, folds)})
    return rows


def markdown(rows: list[dict]) -> str:
    """The probe rows as a Markdown table (validation split)."""
    lines = ["| TTA views | n | val bal.acc | val mel AUC | val macro AUC | val malignant AUC | val ECE "
             "| 2-fold bal.acc without / with offsets |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['views']} | {r['n_views']} | {r['bal_acc']:.4f} | {r['melanoma_auc']:.4f} | "
                     f"{r['macro_auc']:.4f} | {r['malignant_auc']:.4f} | {r['ece']:.4f} | "
                     f"{r['bal_acc_plain']:.4f} / {r['bal_acc_offsets']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the validation-only probes and print the table (and the rows as JSON with ``--json``)."""
    from .. import load_model

    p = argparse.ArgumentParser(prog="python -m dermascan.train.posthoc", description=__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--split", type=Path, required=True, help="a split CSV with image_id, lesion_id, dx, split")
    p.add_argument("--data", type=Path, default=TRAINING_DATA)
    p.add_argument("--limit", type=int, default=None, help="first N validation images only (quick check)")
    p.add_argument("--views", nargs="+", choices=list(VIEW_SETS), default=["none", "hflip", "flips4"],
                   help="view sets to score (all8 doubles the cost of flips4)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    model = load_model(args.model)
    rows = pd.read_csv(args.split, dtype=str)
    val = rows[rows["split"] == "val"].reset_index(drop=True)
    if args.limit:
        val = val.iloc[: args.limit]
    images = load_image_files(image_paths(val, args.data), tuple(model.input_size))
    result = probe(model, images, list(val["dx"]), val["lesion_id"], tuple(args.views))
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
