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
from ..model.card import HAM10000_LABELS, default_malignant
from .architecture import DEFAULT_BACKBONE, build_model
from .backbones import BACKBONES
from .calibration import fit_calibration
from .data import Augmentation, class_weights, load_image_files, load_images, training_dataset
from .export import (
    MODEL_VERSION,
    MODEL_VERSION_V2,
    build_card,
    fit_input_gate,
    save_model_and_card,
    strip_for_inference,
    thresholds_in_words,
    today,
)
from .fitting import FitConfig, LogitAdjustedLoss, predict_probs, train_two_phases
from .report import METADATA_NAME, card_metrics_extras, extended_results
from .runlog import RunLog
from .split import load_or_make_split, split_sizes

SPLIT_V2 = REPO_ROOT / "model" / "split_v2.csv"
V2_DATA_NAME = "HAM10000 (all 10,015 images, 7,470 lesions; 224 px where available, else 200x150 squash-resized)"

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
    probe: bool = False  # recipe probe: never touch the test split; export the model with validation metrics only
    command: str = ""
    data_v2: bool = False  # the lesion-grouped split_v2.csv over ham10000_224/ and ham10000_full_200x150/
    split_v2: Path = SPLIT_V2
    model_version: str | None = None  # the card's version; None: MODEL_VERSION (v1 recipe) or MODEL_VERSION_V2
    train_sources: tuple[str, ...] | None = None  # v2: train only on images of these folders (None: all)


def _scaling(config: FitConfig) -> str:
    return BACKBONES[config.backbone].scaling


def _size(config: FitConfig) -> tuple[int, int]:
    return (config.input_size, config.input_size)


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


@dataclass
class _Data:
    """The split and the decoded images of one run."""

    split_path: Path
    sizes: dict
    parts: dict  # split name -> its rows of labels.csv
    images: dict  # split name -> uint8 images
    y: dict  # split name -> class indices


@dataclass
class _Calibration:
    """What the validation split decided: temperature, triage thresholds and the reports they give."""

    temperature: float
    thresholds: dict
    malignant: list
    val_after: dict
    val_ece_before: float


def _run(options: RunOptions, config: FitConfig) -> dict:
    log = RunLog(options.out / ("probe_log.txt" if options.probe else "train_log.txt"))
    deadline = log.start + options.time_budget_min * 60.0 - EVALUATION_RESERVE_S
    keras.utils.set_random_seed(options.seed)
    _log_setup(log, options, config)

    labels_list = list(HAM10000_LABELS)
    data = load_run_data(options, config, labels_list, log)
    model, phases = _fit(options, config, data, labels_list, deadline, log)
    train_minutes = log.elapsed_min

    t0 = time.perf_counter()
    calibration = calibrate_on_validation(model, data, labels_list, log, _scaling(config))
    summary = {
        "recipe": asdict(config),
        "seed": options.seed,
        "val_balanced_accuracy": calibration.val_after["balanced_accuracy"],
        "val_macro_auc": calibration.val_after["macro_auc"],
        "temperature": calibration.temperature,
        "thresholds": calibration.thresholds,
        "phases": [asdict(p) for p in phases],
        "train_minutes": train_minutes,
    }
    make_card = _card_maker(options, config, labels_list, data, calibration, phases, train_minutes, log)
    clean = strip_for_inference(model, len(labels_list), options.dropout, config.backbone, _size(config))
    if options.probe:
        summary.update(export_probe(options.out, clean, make_card, data, calibration, log))
        (options.out / "probe_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary

    summary.update(evaluate_and_export(options, model, clean, make_card, data, labels_list, calibration, log,
                                       _scaling(config), t0))
    print(json.dumps({k: summary[k] for k in ("val_balanced_accuracy", "temperature", "train_minutes")}),
          file=sys.stderr)
    return summary


def evaluate_and_export(options: RunOptions, model, clean, make_card, data: _Data, labels_list: list[str],
                        calibration: _Calibration, log: RunLog, scaling: str, t0: float) -> dict:
    """The test reports, the saved model and card (``make_card(metrics)``), the report and the input gate.

    ``model`` predicts; ``clean`` (the same weights, no training state) is what is saved. Returns the summary's
    test, model and card entries.
    """
    before, after, extras = _test_reports(model, data, labels_list, calibration, scaling,
                                          options.data / METADATA_NAME, options.seed)
    log(f"prediction + calibration + reports: {time.perf_counter() - t0:.1f}s")
    log(f"test: bal.acc {after['balanced_accuracy']:.4f}, macro AUC {after['macro_auc']:.4f}, "
        f"mel AUC {after['melanoma_auc']}, mel sens(high) {after['mel_sensitivity_high']}, "
        f"ECE before {before['ece']:.4f} after {after['ece']:.4f}")
    card = make_card(_card_metrics(data, calibration, (before, after, extras)))
    model_path, card_path = _save(options.out, clean, card, data, calibration, (before, after, extras), log)
    # The input gate describes this model's own features: statistics from the train split, threshold on validation.
    gate_path = fit_input_gate(model_path, card_path, data.images["train"], data.y["train"], data.images["val"])
    log(f"input gate: {gate_path.name} (OOD statistics from train, threshold on validation)")
    log(f"total wall time {log.elapsed_min:.2f} min")
    return {"test": after, "model": str(model_path), "card": str(card_path)}


def finish_trained(model, options: RunOptions, config: FitConfig, labels_list: list[str], scaling: str, log: RunLog,
                   card_for, after_calibration=None) -> dict:
    """What a run does after fitting, for a network that exists already (an ensemble, a promoted probe).

    Loads the split's images, fits temperature and thresholds on validation, then exports a probe
    (``options.probe``) or a release (test report, card, report, gate). ``card_for(calibration, data, metrics)``
    builds the card; ``after_calibration(calibration)`` may log what the calibration found.
    """
    with deterministic_ops():
        data = load_run_data(options, config, labels_list, log)
        t0 = time.perf_counter()
        calibration = calibrate_on_validation(model, data, labels_list, log, scaling)
        if after_calibration is not None:
            after_calibration(calibration)

        def make_card(metrics: dict):
            return card_for(calibration, data, metrics)

        if options.probe:
            summary = export_probe(options.out, model, make_card, data, calibration, log)
        else:
            summary = evaluate_and_export(options, model, model, make_card, data, labels_list, calibration, log,
                                          scaling, t0)
    return {"val_balanced_accuracy": calibration.val_after["balanced_accuracy"],
            "temperature": calibration.temperature, **summary}


def _log_setup(log: RunLog, options: RunOptions, config: FitConfig) -> None:
    log(f"command: {options.command}")
    log(f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} inter-op threads, "
        f"{os.cpu_count()} CPU cores")
    log(f"recipe: {json.dumps(asdict(config))}, seed {options.seed}, budget {options.time_budget_min} min")
    log(f"data: {'v2 lesion-grouped split ' + str(options.split_v2.name) if options.data_v2 else 'v1'} "
        f"({_display_path(options.data)}), backbone weights "
        f"{options.weights.name if options.weights else 'none (random)'}")


def load_run_data(options: RunOptions, config: FitConfig, labels_list: list[str], log: RunLog) -> _Data:
    """The run's split and decoded images: the committed lesion-grouped split with ``data_v2``, else v1's."""
    return (_load_data_v2 if options.data_v2 else _load_data)(options, config, labels_list, log)


def _load_data(options: RunOptions, config: FitConfig, labels_list: list[str], log: RunLog) -> _Data:
    table = _select_images(pd.read_csv(options.data / "labels.csv", dtype=str), options.limit, options.seed)
    split_path = options.out / "split.csv"
    split = load_or_make_split(table, split_path, options.seed)
    sizes = split_sizes(split)
    log(f"split ({split_path.name}): " + ", ".join(f"{k} {v['total']}" for k, v in sizes.items()))

    t0 = time.perf_counter()
    parts = {name: split[split["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
    if options.probe:
        parts.pop("test")  # recipe choice must never see the test split
    images = {k: load_images(options.data / "images", list(v["image_id"]), _size(config)) for k, v in parts.items()}
    return _decoded(split_path, sizes, parts, images, labels_list, t0, log)


def _decoded(split_path, sizes, parts, images, labels_list, t0, log) -> _Data:
    y = {k: np.array([labels_list.index(d) for d in v["dx"]], dtype=np.int64) for k, v in parts.items()}
    log(f"decoded {sum(len(v) for v in images.values())} images into memory "
        f"({sum(v.nbytes for v in images.values()) / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s")
    return _Data(split_path, sizes, parts, images, y)


def _load_data_v2(options: RunOptions, config: FitConfig, labels_list: list[str], log: RunLog) -> _Data:
    """The committed lesion-grouped split; each row read from its ``source`` folder beside ``options.data``."""
    split = pd.read_csv(options.split_v2, dtype=str)
    if options.limit is not None and options.limit < len(split):
        # Same fraction of every split, so a small (test) run still has train, val and test.
        frac = options.limit / len(split)
        picked = [part.sample(n=max(2, round(len(part) * frac)), random_state=options.seed)
                  for _, part in split.groupby("split")]
        split = pd.concat(picked).sort_values("image_id").reset_index(drop=True)
    if options.train_sources:
        # A data probe: validation and test keep every image, so the run is judged on the same images as any other.
        dropped = (split["split"] == "train") & ~split["source"].isin(options.train_sources)
        log(f"train sources {', '.join(options.train_sources)} only: {int(dropped.sum())} train images left out")
        split = split[~dropped].reset_index(drop=True)
    split_path = options.out / "split_v2.csv"
    if split_path.resolve() == Path(options.split_v2).resolve() and options.limit is not None:
        split_path = options.out / "split_v2_subset.csv"  # never overwrite the committed split with a subset
    split_path.parent.mkdir(parents=True, exist_ok=True)
    if split_path.resolve() != Path(options.split_v2).resolve():
        split.to_csv(split_path, index=False)
    sizes = split_sizes(split)
    log(f"split ({options.split_v2.name}, lesion-grouped, {split['lesion_id'].nunique()} lesions): "
        + ", ".join(f"{k} {v['total']}" for k, v in sizes.items()))
    t0 = time.perf_counter()
    parts = {name: split[split["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
    if options.probe:
        parts.pop("test")
    root = Path(options.data).parent
    images = {k: load_image_files([root / src / "images" / f"{i}.jpg" for src, i in zip(v["source"], v["image_id"])],
                                  _size(config))
              for k, v in parts.items()}
    return _decoded(split_path, sizes, parts, images, labels_list, t0, log)


def _fit(options: RunOptions, config: FitConfig, data: _Data, labels_list: list[str], deadline: float, log: RunLog):
    """Build and train the network: (model, phases)."""
    images, y, n_classes = data.images, data.y, len(labels_list)
    weights = class_weights(y["train"], n_classes, config.class_weight_power) if config.class_weight_power else None
    if weights:
        log("class weights: " + ", ".join(f"{labels_list[k]} {w:.2f}" for k, w in weights.items()))
    aug = Augmentation(_size(config), _scaling(config), config.rrc_min_area, config.sog_prob)
    train_ds, steps = training_dataset(
        images["train"], y["train"], n_classes, config.batch_size, options.seed, config.sampling_power, aug
    )
    loss = "sparse_categorical_crossentropy"
    if config.logit_adjust:
        prior = np.bincount(y["train"], minlength=n_classes) + 1.0  # +1: a class absent from a tiny run stays finite
        loss = LogitAdjustedLoss(prior, config.logit_adjust)
        log(f"logit-adjusted loss, tau {config.logit_adjust}, train prior "
            + ", ".join(f"{labels_list[k]} {p / prior.sum():.3f}" for k, p in enumerate(prior)))
    model = build_model(n_classes, options.weights, options.dropout, config.backbone, _size(config))
    phases = train_two_phases(model, train_ds, steps, weights, (images["val"], y["val"]), config, deadline, log,
                              loss=loss, scaling=_scaling(config))
    for phase in phases:
        rate = f"{phase.images_per_second:.1f} img/s" if phase.images_per_second else "n/a"
        log(f"phase {phase.name}: {phase.epochs} epochs, {phase.seconds / 60:.2f} min, {rate}")
    return model, phases


def calibrate_on_validation(model, data: _Data, labels_list: list[str], log: RunLog, scaling: str) -> _Calibration:
    val_probs = predict_probs(model, data.images["val"], scaling=scaling)
    malignant = default_malignant(labels_list)
    temperature, thresholds = fit_calibration(val_probs, data.y["val"], labels_list, malignant)
    val_true = list(data.parts["val"]["dx"])
    val_after = classification_report(
        val_true, apply_temperature(val_probs, temperature), labels_list, malignant, thresholds
    )
    val_ece_before = classification_report(val_true, val_probs, labels_list, malignant, thresholds)["ece"]
    log(f"calibration on val: T={temperature:.4f}, thresholds medium {thresholds['medium']:.4f} "
        f"high {thresholds['high']:.4f}")
    log(f"val: bal.acc {val_after['balanced_accuracy']:.4f}, macro AUC {val_after['macro_auc']}, "
        f"ECE {val_after['ece']:.4f}")
    return _Calibration(temperature, thresholds, malignant, val_after, val_ece_before)


def _test_reports(model, data: _Data, labels_list: list[str], cal: _Calibration, scaling: str,
                  metadata: Path, seed: int) -> tuple[dict, dict, dict]:
    """Reports on the test split: (uncalibrated, calibrated, intervals and subgroups of the calibrated one)."""
    test_probs = predict_probs(model, data.images["test"], scaling=scaling)
    test_true = list(data.parts["test"]["dx"])
    calibrated = apply_temperature(test_probs, cal.temperature)
    before = classification_report(test_true, test_probs, labels_list, cal.malignant, cal.thresholds)
    after = classification_report(test_true, calibrated, labels_list, cal.malignant, cal.thresholds)
    extras = extended_results(test_true, calibrated, list(data.parts["test"]["image_id"]), labels_list,
                              cal.malignant, cal.thresholds, metadata, seed)
    return before, after, extras


def _validation_metrics(cal: _Calibration) -> dict:
    return {"balanced_accuracy": cal.val_after["balanced_accuracy"], "macro_auc": cal.val_after["macro_auc"],
            "ece": cal.val_after["ece"], "ece_uncalibrated": cal.val_ece_before}


def _card_metrics(data: _Data, cal: _Calibration, test: tuple[dict, dict, dict]) -> dict:
    """The card's ``metrics``: the calibrated test report, validation summary, split sizes, intervals, subgroups."""
    before, after, extras = test
    return {
        "split": "test",
        "calibrated": True,
        "test": after,
        "ece_uncalibrated": before["ece"],
        "validation": _validation_metrics(cal),
        "split_sizes": data.sizes,
        **card_metrics_extras(extras),
    }


PROBE_SUFFIX = "-probe"  # a probe's card version: reviews of a shipped version never attach to a probe


def export_probe(out: Path, clean, make_card, data: _Data, cal: _Calibration, log: RunLog) -> dict:
    """A recipe probe's model and card, with validation metrics only (the test split was never decoded), so that
    ``compare_models`` can judge it on validation; no test report, no gate. Returns the summary's model and card."""
    metrics = {"split": "validation", "calibrated": True, "validation": _validation_metrics(cal),
               "split_sizes": data.sizes, "note": "Recipe probe: the test split was not read."}
    card = make_card(metrics)
    if not card.version.endswith(PROBE_SUFFIX):
        card = card.with_overrides(version=card.version + PROBE_SUFFIX)
    model_path, card_path = save_model_and_card(clean, card, out)
    log(f"saved {model_path.name} and {card_path.name} (probe {card.version}: validation metrics only, "
        "the test split was not read)")
    log(f"probe done in {log.elapsed_min:.2f} min")
    return {"model": str(model_path), "card": str(card_path)}


def base_provenance(options: RunOptions, data: _Data, log: RunLog, train_minutes: float) -> dict:
    """The provenance entries every exported model has (command, seed, date, minutes, machine, split, versions)."""
    return {
        "command": options.command,
        "seed": options.seed,
        "code": "dermascan/train (python -m dermascan.train)",
        "date": today(),
        "training_minutes": round(train_minutes, 2),
        "total_minutes_incl_evaluation": round(log.elapsed_min, 2),  # up to export; the log has the final figure
        "machine": "2-core CPU",
        "split_file": _display_path(data.split_path),
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def _card_maker(options: RunOptions, config: FitConfig, labels_list: list[str], data: _Data, cal: _Calibration,
                phases, train_minutes: float, log: RunLog):
    """``make_card(metrics)`` for a single trained network."""
    def make_card(metrics: dict):
        provenance = {
            **base_provenance(options, data, log, train_minutes),
            "recipe": asdict(config),
            "phases": [{"name": p.name, "epochs": p.epochs, "minutes": round(p.seconds / 60, 2)} for p in phases],
        }
        v1_recipe = config.backbone == DEFAULT_BACKBONE and not options.data_v2
        return build_card(labels_list, cal.temperature, cal.thresholds, metrics, provenance,
                          options.weights.name if options.weights else "none", config.backbone, _size(config),
                          *([V2_DATA_NAME] if options.data_v2 else []),
                          version=options.model_version or (MODEL_VERSION if v1_recipe else MODEL_VERSION_V2),
                          thresholds_note=thresholds_in_words(cal.thresholds, cal.val_after, cal.malignant))

    return make_card


def _save(out: Path, clean, card, data: _Data, cal: _Calibration, test: tuple[dict, dict, dict],
          log: RunLog) -> tuple[Path, Path]:
    """Save the inference model and its card, evaluation.json and the report: (model path, card path)."""
    before, after, extras = test
    model_path, card_path = save_model_and_card(clean, card, out)
    log(f"saved {model_path.name} ({model_path.stat().st_size / 2**20:.2f} MiB) and {card_path.name}")
    evaluation = {"before": before, "after": after, "validation": cal.val_after, "split_sizes": data.sizes,
                  "source": "direct Keras predictions (training process)", **extras}
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    try:
        from .report import write_report  # matplotlib is imported only here

        write_report(out, evaluation, card.to_dict())
        log("wrote EVALUATION.md and confusion_matrix.svg")
    except Exception as exc:  # noqa: BLE001 - the model is already saved; the report can be regenerated
        log(f"report generation failed ({type(exc).__name__}: {exc}); rerun python -m dermascan.train.report")
    return model_path, card_path
