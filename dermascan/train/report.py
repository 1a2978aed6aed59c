"""EVALUATION.md and the confusion matrix, from the training run or regenerated through the engine.

``python -m dermascan.train.report`` reloads the shipped model with ``dermascan.load_model`` (the
same path the app uses: card preprocessing, resize and temperature), predicts the validation and
test splits, and rewrites ``evaluation.json``, ``EVALUATION.md``, ``confusion_matrix.svg`` and the
card's ``metrics`` from those predictions. Calibration and thresholds are read from the card, never refitted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DEFAULT_MODELS_DIR, REPO_ROOT, TRAINING_DATA
from ..evaluation.metrics import UNKNOWN_GROUP, age_band, bootstrap_intervals, classification_report, subgroup_report
from ..inference.batch import DEFAULT_CHUNK
from ..model.card import read_card, write_card
from .data import load_image_files
from .export import MODEL_NAME, limitations_for
from .report_render import confusion_matrix_figure, evaluate_report_markdown
from .split import image_paths, model_split_file, split_part, split_sizes

METADATA_NAME = "HAM10000_metadata.csv"
SUBGROUP_ATTRIBUTES = ("sex", "age_band", "localization")


def subgroup_values(image_ids: list[str], metadata_path: Path) -> dict[str, list[str]] | None:
    """Per image, its sex, age band and body site from HAM10000's metadata (``unknown`` when missing).

    None when the metadata file is absent. Only these three columns are read, and they only ever leave
    this process aggregated into group counts and scores (never per image).
    """
    if not Path(metadata_path).is_file():
        return None
    meta = pd.read_csv(metadata_path, dtype=str, usecols=["image_id", "age", "sex", "localization"])
    meta = meta.drop_duplicates("image_id").set_index("image_id")
    rows = meta.reindex(list(image_ids))

    def clean(column: str) -> list[str]:
        return [UNKNOWN_GROUP if not isinstance(v, str) or not v.strip() else v.strip().lower() for v in rows[column]]

    return {"sex": clean("sex"), "age_band": [age_band(a) for a in rows["age"]], "localization": clean("localization")}


def extended_results(truth: list[str], probs: np.ndarray, image_ids: list[str], labels: list[str],
                     malignant: list[str], thresholds: dict, metadata_path: Path, seed: int = 0) -> dict:
    """Bootstrap intervals and (when the metadata is there) subgroup tables for one split's predictions."""
    out = {"confidence_intervals": bootstrap_intervals(truth, probs, labels, malignant, thresholds, seed=seed)}
    values = subgroup_values(image_ids, metadata_path)
    if values is not None:
        out["subgroups"] = {k: subgroup_report(truth, probs, values[k], labels, malignant, thresholds)
                            for k in SUBGROUP_ATTRIBUTES}
    return out


def card_metrics_extras(evaluation: dict) -> dict:
    """What the card's ``metrics`` carries of the extended results: interval table and subgroup rows."""
    extras = {}
    if evaluation.get("confidence_intervals"):
        extras["confidence_intervals"] = evaluation["confidence_intervals"]["metrics"]
    if evaluation.get("subgroups"):
        extras["subgroups"] = evaluation["subgroups"]
    return extras


def write_report(out_dir: Path, evaluation: dict, card: dict) -> None:
    """Write ``EVALUATION.md`` and ``confusion_matrix.svg`` into ``out_dir`` from an evaluation dict."""
    markdown = evaluate_report_markdown(evaluation["before"], evaluation["after"], card, evaluation["split_sizes"],
                                        evaluation.get("confidence_intervals"), evaluation.get("subgroups"),
                                        evaluation.get("previous"))
    source = evaluation.get("source")
    if source:
        markdown = markdown.replace("\n## Targets", f"\nPredictions: {source}.\n\n## Targets", 1)
    (Path(out_dir) / "EVALUATION.md").write_text(markdown, encoding="utf-8")
    confusion_matrix_figure(evaluation["after"], Path(out_dir) / "confusion_matrix.svg")


def engine_evaluation(model_path: Path, data_dir: Path, split_path: Path,
                      batch_size: int = DEFAULT_CHUNK) -> tuple[dict, dict]:
    """Reports computed through ``dermascan.load_model(...).predict``: (evaluation dict, card dict)."""
    from .. import load_model

    lesion_model = load_model(model_path)
    card = lesion_model.card
    labels, malignant = list(card.labels), list(card.malignant_labels)
    split = pd.read_csv(split_path, dtype=str)
    size = tuple(card.input_size)
    reports = {}
    for part in ("val", "test"):
        rows = split[split["split"] == part]
        images = list(load_image_files(image_paths(rows, data_dir), size))
        raw = lesion_model.predict(images, calibrated=False, batch_size=batch_size)
        calibrated = lesion_model.predict(images, calibrated=True, batch_size=batch_size)
        truth = list(rows["dx"])
        reports[part] = (
            classification_report(truth, np.asarray(raw), labels, malignant, card.thresholds),
            classification_report(truth, np.asarray(calibrated), labels, malignant, card.thresholds),
        )
        if part == "test":
            extras = extended_results(truth, np.asarray(calibrated), list(rows["image_id"]), labels, malignant,
                                      card.thresholds, Path(data_dir) / METADATA_NAME)
    evaluation = {
        "before": reports["test"][0],
        "after": reports["test"][1],
        "validation": reports["val"][1],
        "validation_uncalibrated_ece": reports["val"][0]["ece"],
        "split_sizes": split_sizes(split),
        "source": "`dermascan.load_model(...).predict` (the engine the app uses), calibrated=False / True",
        **extras,
    }
    return evaluation, card.to_dict()


def previous_model_evaluation(model_path: Path, data_dir: Path, split_path: Path,
                              batch_size: int = DEFAULT_CHUNK) -> dict:
    """The model being replaced, through the engine, on the same test images: ``{"name", "report", "note"}``."""
    from .. import load_model

    old = load_model(model_path)
    paths, rows = split_part(split_path, "test", data_dir)
    probs = old.predict(list(load_image_files(paths, tuple(old.input_size))), batch_size=batch_size)
    report = classification_report(list(rows["dx"]), np.asarray(probs), list(old.card.labels),
                                   list(old.card.malignant_labels), old.card.thresholds)
    trained_on = (old.card.provenance or {}).get("split_file", "its own split")
    return {"name": f"{old.card.name or model_path.stem} {old.card.version}", "report": report,
            "note": f"The previous model was trained on the train part of {trained_on}; none of these test "
                    "lesions was in it."}


def main(argv: list[str] | None = None) -> int:
    """Regenerate the evaluation of the shipped model through the engine."""
    p = argparse.ArgumentParser(prog="python -m dermascan.train.report", description=__doc__)
    p.add_argument("--model", type=Path, default=DEFAULT_MODELS_DIR / f"{MODEL_NAME}.keras")
    p.add_argument("--data", type=Path, default=TRAINING_DATA)
    p.add_argument("--split", type=Path, default=None,
                   help="default: the card's provenance split_file, else split.csv beside the model")
    p.add_argument("--previous", type=Path, default=None,
                   help="the model this one replaces: evaluated on the same test split for the comparison table")
    args = p.parse_args(argv)
    split_path = args.split or model_split_file(read_card(args.model.with_name(args.model.stem + ".card.json")),
                                                args.model, REPO_ROOT)
    evaluation, _ = engine_evaluation(args.model, args.data, split_path)
    if args.previous is not None:
        evaluation["previous"] = previous_model_evaluation(args.previous, args.data, split_path)
    out_dir = args.model.parent
    card_path = args.model.with_name(args.model.stem + ".card.json")
    stored = read_card(card_path)
    stored.metrics = {
        **stored.metrics,
        "test": evaluation["after"],
        "ece_uncalibrated": evaluation["before"]["ece"],
        "validation": {
            **{k: evaluation["validation"][k] for k in ("balanced_accuracy", "macro_auc", "ece")},
            "ece_uncalibrated": evaluation["validation_uncalibrated_ece"],
        },
        "split_sizes": evaluation["split_sizes"],
        "source": "dermascan.load_model(...).predict",
        **card_metrics_extras(evaluation),
    }
    # Documentation fields follow the code, like the metrics.
    stored.limitations = limitations_for(stored.provenance or {})
    write_card(stored, card_path)
    (out_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    write_report(out_dir, evaluation, stored.to_dict())
    after = evaluation["after"]
    print(f"test (engine): bal.acc {after['balanced_accuracy']:.4f} macro AUC {after['macro_auc']:.4f} "
          f"mel sens(high) {after['mel_sensitivity_high']} ECE {after['ece']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
