"""The whole training run: split, data, two-phase fit, calibration, evaluation and export."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..config import REPO_ROOT
from ..evaluation.metrics import apply_temperature, classification_report
from ..model.card import HAM10000_LABELS
from .architecture import build_model
from .calibration import fit_calibration
from .data import class_weights, load_images, training_dataset
from .export import build_card, save_model_and_card, strip_for_inference, today
from .fitting import FitConfig, predict_probs, train_two_phases
from .runlog import RunLog
from .split import load_or_make_split, split_sizes

# Time kept back from the budget for prediction, calibration, report and export.
EVALUATION_RESERVE_S = 120.0


@dataclass
class RunOptions:
    """Command-line options of one training run."""

    data: Path
    out: Path
    weights: Path | None
    seed: int = 42
    limit: int | None = None
    time_budget_min: float = 50.0
    dropout: float = 0.3
    probe: bool = False  # recipe probe: stop after validation, never touch the test split, export nothing
    command: str = ""


def _display_path(path: Path) -> str:
    """``path`` relative to the repository root when inside it (portable provenance), else absolute."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


def _select_images(labels: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    labels = labels.sort_values("image_id").reset_index(drop=True)
    if limit is not None and limit < len(labels):
        labels = labels.sample(n=limit, random_state=seed).sort_values("image_id").reset_index(drop=True)
    return labels


@contextmanager
def deterministic_ops():
    """Deterministic TF kernels (CPU reductions included) for the duration of a run, then the previous state.

    Restoring matters when training runs inside a longer process (the test suite): the switch is global.
    """
    from tensorflow.python.framework import config as tf_config  # the public API can only switch it on

    was_enabled = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            tf_config.disable_op_determinism()


def run_training(options: RunOptions, config: FitConfig) -> dict:
    """Train, calibrate, evaluate and (unless probing) export; returns a summary dict."""
    with deterministic_ops():
        return _run(options, config)


def _run(options: RunOptions, config: FitConfig) -> dict:
    log = RunLog(options.out / ("probe_log.txt" if options.probe else "train_log.txt"))
    deadline = log.start + options.time_budget_min * 60.0 - EVALUATION_RESERVE_S
    keras.utils.set_random_seed(options.seed)
    log(f"command: {options.command}")
    log(f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} inter-op threads, "
        f"{os.cpu_count()} CPU cores")
    log(f"recipe: {json.dumps(asdict(config))}, seed {options.seed}, budget {options.time_budget_min} min")

    labels_list = list(HAM10000_LABELS)
    table = _select_images(pd.read_csv(options.data / "labels.csv", dtype=str), options.limit, options.seed)
    split_path = options.out / "split.csv"
    split = load_or_make_split(table, split_path, options.seed)
    sizes = split_sizes(split)
    log(f"split ({split_path.name}): " + ", ".join(f"{k} {v['total']}" for k, v in sizes.items()))

    t0 = time.perf_counter()
    parts = {name: split[split["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
    if options.probe:
        parts.pop("test")  # recipe choice must never see the test split
    images = {k: load_images(options.data / "images", list(v["image_id"])) for k, v in parts.items()}
    y = {k: np.array([labels_list.index(d) for d in v["dx"]], dtype=np.int64) for k, v in parts.items()}
    log(f"decoded {sum(len(v) for v in images.values())} images into memory "
        f"({sum(v.nbytes for v in images.values()) / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s")

    n_classes = len(labels_list)
    weights = class_weights(y["train"], n_classes, config.class_weight_power) if config.class_weight_power else None
    if weights:
        log("class weights: " + ", ".join(f"{labels_list[k]} {w:.2f}" for k, w in weights.items()))
    train_ds, steps = training_dataset(
        images["train"], y["train"], n_classes, config.batch_size, options.seed, config.sampling_power
    )
    model = build_model(n_classes, options.weights, options.dropout)
    phases = train_two_phases(model, train_ds, steps, weights, (images["val"], y["val"]), config, deadline, log)
    for phase in phases:
        rate = f"{phase.images_per_second:.1f} img/s" if phase.images_per_second else "n/a"
        log(f"phase {phase.name}: {phase.epochs} epochs, {phase.seconds / 60:.2f} min, {rate}")
    train_minutes = log.elapsed_min

    t0 = time.perf_counter()
    val_probs = predict_probs(model, images["val"])
    temperature, thresholds = fit_calibration(val_probs, y["val"], labels_list, ["mel", "bcc", "akiec"])
    malignant = ["mel", "bcc", "akiec"]
    val_true = list(parts["val"]["dx"])
    val_after = classification_report(
        val_true, apply_temperature(val_probs, temperature), labels_list, malignant, thresholds
    )
    val_ece_before = classification_report(val_true, val_probs, labels_list, malignant, thresholds)["ece"]
    log(f"calibration on val: T={temperature:.4f}, thresholds medium {thresholds['medium']:.4f} "
        f"high {thresholds['high']:.4f}")
    log(f"val: bal.acc {val_after['balanced_accuracy']:.4f}, macro AUC {val_after['macro_auc']}, "
        f"ECE {val_after['ece']:.4f}")
    summary = {
        "recipe": asdict(config),
        "seed": options.seed,
        "val_balanced_accuracy": val_after["balanced_accuracy"],
        "val_macro_auc": val_after["macro_auc"],
        "temperature": temperature,
        "thresholds": thresholds,
        "phases": [asdict(p) for p in phases],
        "train_minutes": train_minutes,
    }
    if options.probe:
        (options.out / "probe_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        log(f"probe done in {log.elapsed_min:.2f} min")
        return summary

    test_probs = predict_probs(model, images["test"])
    test_true = list(parts["test"]["dx"])
    before = classification_report(test_true, test_probs, labels_list, malignant, thresholds)
    after = classification_report(
        test_true, apply_temperature(test_probs, temperature), labels_list, malignant, thresholds
    )
    log(f"prediction + calibration + reports: {time.perf_counter() - t0:.1f}s")
    log(f"test: bal.acc {after['balanced_accuracy']:.4f}, macro AUC {after['macro_auc']:.4f}, "
        f"mel AUC {after['melanoma_auc']}, mel sens(high) {after['mel_sensitivity_high']}, "
        f"ECE before {before['ece']:.4f} after {after['ece']:.4f}")

    metrics = {
        "split": "test",
        "calibrated": True,
        "test": after,
        "ece_uncalibrated": before["ece"],
        "validation": {"balanced_accuracy": val_after["balanced_accuracy"], "macro_auc": val_after["macro_auc"],
                       "ece": val_after["ece"], "ece_uncalibrated": val_ece_before},
        "split_sizes": sizes,
    }
    provenance = {
        "command": options.command,
        "seed": options.seed,
        "code": "dermascan/train (python -m dermascan.train)",
        "date": today(),
        "training_minutes": round(train_minutes, 2),
        "total_minutes_incl_evaluation": round(log.elapsed_min, 2),  # up to export; the log has the final figure
        "machine": "2-core CPU",
        "split_file": _display_path(split_path),
        "recipe": asdict(config),
        "phases": [{"name": p.name, "epochs": p.epochs, "minutes": round(p.seconds / 60, 2)} for p in phases],
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    card = build_card(labels_list, temperature, thresholds, metrics, provenance,
                      options.weights.name if options.weights else "none")
    clean = strip_for_inference(model, n_classes, options.dropout)
    model_path, card_path = save_model_and_card(clean, card, options.out)
    log(f"saved {model_path.name} ({model_path.stat().st_size / 2**20:.2f} MiB) and {card_path.name}")
    evaluation = {"before": before, "after": after, "validation": val_after, "split_sizes": sizes,
                  "source": "direct Keras predictions (training process)"}
    (options.out / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    try:
        from .report import write_report

        write_report(options.out, evaluation, card.to_dict())
        log("wrote EVALUATION.md and confusion_matrix.svg")
    except Exception as exc:  # noqa: BLE001 - the model is already saved; the report can be regenerated
        log(f"report generation failed ({type(exc).__name__}: {exc}); rerun python -m dermascan.train.report")
    log(f"total wall time {log.elapsed_min:.2f} min")
    summary.update({"test": after, "model": str(model_path), "card": str(card_path)})
    print(json.dumps({k: summary[k] for k in ("val_balanced_accuracy", "temperature", "train_minutes")}),
          file=sys.stderr)
    return summary
