"""Evaluate a model on a labelled image folder (the CLI ``evaluate`` command, and the Batch page).

Prediction only, no Grad-CAM: the metrics need probabilities, and skipping the
backward pass makes evaluation several times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DermascanError
from ..inference.batch import file_sources, run_batch
from ..intake.labelsets import find_labeled_images, read_labels_csv


def metrics_for(model, y_true: list[str], probs: np.ndarray) -> dict:
    """Metrics for probabilities already computed by ``model`` (same as the CLI's)."""
    from .metrics import classification_report

    unknown = sorted(set(y_true) - set(model.labels))
    if unknown:
        raise DermascanError(f"Labels not among the model's classes: {', '.join(unknown[:5])}.")
    probs = np.asarray(probs)
    invalid = int(np.count_nonzero(~np.isfinite(probs).all(axis=-1)))
    if invalid:
        raise DermascanError(f"The model produced invalid numbers (NaN or infinity) for {invalid} image(s); "
                             "no metrics can be computed.")
    return classification_report(list(y_true), probs, model.labels, model.card.malignant_labels,
                                 model.card.thresholds)


def evaluate_folder(model, images_dir: str | Path, labels_csv: str | Path,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Metrics of ``model`` on the images of ``images_dir`` listed in ``labels_csv`` (image_id,dx)."""
    labelset = find_labeled_images(images_dir, read_labels_csv(labels_csv))
    if not labelset.ids:
        raise DermascanError("None of the labelled images were found in the images folder.")
    probs, y_true, unreadable = [], [], []
    items = run_batch(model, file_sources(labelset.paths), with_cam=False)
    for done, (item, label) in enumerate(zip(items, labelset.labels), start=1):
        if item.error is None:
            probs.append(item.analysis.probabilities)
            y_true.append(label)
        else:
            unreadable.append(item.name)
        if progress is not None:
            progress(done, len(labelset.ids))
    if not probs:
        raise DermascanError("None of the labelled images could be read.")
    report = metrics_for(model, y_true, np.stack(probs))
    report["model"] = {"name": model.card.name, "version": model.version, "preprocessing": model.card.preprocessing,
                       "resize": model.card.resize, "temperature": model.card.temperature}
    report["missing_images"] = labelset.missing
    report["unreadable_images"] = unreadable
    return report


def format_report(report: dict) -> str:
    """A short human-readable summary of an evaluation report."""
    lines = [
        f"Images: {report['n']} (missing {len(report.get('missing_images', []))}, "
        f"unreadable {len(report.get('unreadable_images', []))})",
        f"Accuracy {report['accuracy']:.3f} | balanced accuracy {report['balanced_accuracy']:.3f} | "
        f"macro AUC {_fmt(report.get('macro_auc'))} | melanoma AUC {_fmt(report.get('melanoma_auc'))} | "
        f"ECE {report['ece']:.3f}",
        "",
        f"{'class':<8}{'precision':>10}{'recall':>8}{'f1':>8}{'n':>6}",
    ]
    for label, row in report["per_class"].items():
        lines.append(f"{label:<8}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}{row['support']:>6}")
    malignant = report.get("malignant", {})
    for band, row in malignant.get("at_thresholds", {}).items():
        lines.append(f"malignant vs benign at {band} (score >= {row['threshold']:.3f}): "
                     f"sensitivity {row['sensitivity']:.3f}, specificity {row['specificity']:.3f}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
