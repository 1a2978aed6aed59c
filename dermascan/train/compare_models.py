"""Whether a candidate model is better than the shipped one: the same images through the engine, paired.

``python -m dermascan.train.compare_models --models SHIPPED.keras CANDIDATE.keras [...]`` loads every model
with ``dermascan.load_model`` (its card's preprocessing, resize and temperature: what the app serves),
predicts one part of a split file (validation by default), and prints a Markdown table: each model's
balanced accuracy, melanoma / macro / malignant AUC and ECE, the mean of all models' probabilities, then
each later model against the first as a **paired, lesion-grouped bootstrap** of the difference (95%
interval, share of resamples where it is ahead). Paired because both models are scored on the same
resampled lesions, which removes the images' difficulty from the comparison; grouped because images of
one lesion are not independent. The decision to ship is made on validation; the test split is for the
record once the decision is taken (``--part test``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..config import TRAINING_DATA
from ..evaluation.metrics import classification_report, paired_bootstrap
from .data import load_image_files
from .pipeline import SPLIT_V2
from .split import split_part

HEADLINE = ("balanced_accuracy", "melanoma_auc", "macro_auc", "malignant_auc")


def predict_part(models: list, paths: list[Path]) -> list[np.ndarray]:
    """Calibrated probabilities of every model for the images at ``paths`` (decoded once per input size)."""
    decoded: dict[tuple, np.ndarray] = {}
    out = []
    for model in models:
        size = tuple(model.input_size)
        if size not in decoded:
            decoded[size] = load_image_files(paths, size)
        out.append(np.asarray(model.predict(list(decoded[size])), dtype=np.float64))
    return out


def compare(names: list[str], probs: list[np.ndarray], truth: list[str], lesions: list[str], labels: list[str],
            malignant: list[str], *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Each model's report and each later model's paired difference from the first (see the module doc)."""
    rows = []
    candidates = list(zip(names, probs))
    if len(probs) > 1:
        candidates.append(("mean of all", np.mean(probs, axis=0)))
    for name, p in candidates:
        report = classification_report(truth, p, labels, malignant, {})
        rows.append({"model": name, "n": report["n"], "ece": report["ece"],
                     **{k: report[k] if k != "malignant_auc" else report["malignant"]["auc"] for k in HEADLINE}})
    paired = {name: paired_bootstrap(truth, probs[0], p, labels, malignant, {}, groups=lesions,
                                     n_resamples=n_resamples, seed=seed)
              for name, p in candidates[1:]}
    return {"reference": names[0], "models": rows, "paired": paired}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def markdown(result: dict, part: str) -> str:
    """The comparison as two Markdown tables."""
    lines = [f"| model ({part}, n = {result['models'][0]['n']}) | bal.acc | melanoma AUC | macro AUC | "
             "malignant AUC | ECE |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | " + " | ".join(_fmt(r[k]) for k in (*HEADLINE, "ece")) + " |"
              for r in result["models"]]
    lines += ["", f"| minus {result['reference']} (paired, lesion-grouped bootstrap, 95%) | "
              + " | ".join(HEADLINE) + " |", "|---|" + "---|" * len(HEADLINE)]
    for name, diffs in result["paired"].items():
        cells = [f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], ahead in {d['b_ahead']:.0%}"
                 if (d := diffs.get(k)) else "n/a" for k in HEADLINE]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Compare the models on one part of the split and print the tables (and JSON with ``--json``)."""
    from .. import load_model

    p = argparse.ArgumentParser(prog="python -m dermascan.train.compare_models", description=__doc__)
    p.add_argument("--models", type=Path, nargs="+", required=True, help="the reference (shipped) model first")
    p.add_argument("--split", type=Path, default=SPLIT_V2)
    p.add_argument("--part", choices=["val", "test"], default="val")
    p.add_argument("--data", type=Path, default=TRAINING_DATA, help="ham10000_224/ (its parent holds both folders)")
    p.add_argument("--limit", type=int, default=None, help="first N images only (quick checks)")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    models = [load_model(m) for m in args.models]
    if len({tuple(m.labels) for m in models}) != 1:
        print("The models do not share one label list; they cannot be compared class by class.")
        return 2
    paths, rows = split_part(args.split, args.part, args.data)
    if args.limit:
        paths, rows = paths[: args.limit], rows.iloc[: args.limit]
    probs = predict_part(models, paths)
    names = [str(m) for m in args.models]
    result = compare(names, probs, list(rows["dx"]), list(rows["lesion_id"]), list(models[0].labels),
                     list(models[0].card.malignant_labels), n_resamples=args.resamples)
    print(markdown(result, args.part))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
