"""Rendering of the evaluation report (Markdown) and the confusion-matrix figure (SVG).

UI-free: takes the JSON-ready dicts produced by ``dermascan.evaluation.metrics.classification_report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "comparison_markdown", "confusion_matrix_figure", "evaluate_report_markdown",
           "intervals_markdown", "subgroups_markdown"]

# Issue 12's targets on the internal lesion-grouped test split: (path of report keys, description, target,
# floor or None, higher is better). The floor is the least a shipped default model may reach.
TARGETS = [
    (("balanced_accuracy",), "Balanced accuracy (mean recall over classes)", 0.80, 0.75, True),
    (("melanoma_auc",), "Melanoma AUC (one-vs-rest)", 0.93, 0.90, True),
    (("macro_auc",), "Macro one-vs-rest AUC", 0.96, None, True),
    (("malignant", "at_thresholds", "high", "sensitivity"), "Malignant sensitivity at the high triage threshold",
     0.95, None, True),
    (("ece",), "Expected calibration error (top label, 15 bins), after calibration", 0.03, None, False),
]
TRAINING_BUDGET_MIN = 120  # the recipe end to end on a 2-core CPU, evaluation included


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _report_value(report: dict, path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _target_rows(after: dict, card: dict) -> list[list[Any]]:
    rows = []
    for path, text, target, floor, higher in TARGETS:
        value = _report_value(after, path)
        met = None if value is None else (value >= target if higher else value <= target)
        verdict = {None: "n/a", True: "yes", False: "**no**"}[met]
        if met is False and floor is not None and value >= floor:
            verdict = "**no** (floor met)"
        sign = ">=" if higher else "<="
        goal = f"{sign} {target}" + (f" (floor {floor})" if floor is not None else "")
        if met is False and round(value, 3) == round(target, 3):
            value = f"{value:.4f}"  # three places would print the target itself beside "no"
        rows.append([text, goal, value, verdict])
    provenance = card.get("provenance") or {}
    minutes = provenance.get("total_minutes_incl_evaluation", provenance.get("training_minutes"))
    if minutes is not None:
        rows.append(["Training run on a 2-core CPU (minutes, incl. evaluation)", f"<= {TRAINING_BUDGET_MIN}",
                     f"{float(minutes):.1f}", "yes" if minutes <= TRAINING_BUDGET_MIN else "**no**"])
    return rows


CI_NAMES = {
    "balanced_accuracy": "Balanced accuracy",
    "macro_auc": "Macro AUC (one-vs-rest)",
    "melanoma_auc": "Melanoma AUC",
    "malignant_auc": "Malignant vs benign AUC",
}
SUBGROUP_TITLES = {"sex": "Sex", "age_band": "Age band (years)", "localization": "Body site"}


def _ci_name(key: str) -> str:
    if key in CI_NAMES:
        return CI_NAMES[key]
    for kind in ("sensitivity", "specificity"):
        prefix = f"malignant_{kind}_"
        if key.startswith(prefix):
            return f"Malignant {kind}, {key[len(prefix):]} band"
    return key.replace("_", " ")


def intervals_markdown(intervals: dict | None) -> list[str]:
    """The bootstrap interval section (empty without intervals)."""
    if not intervals or not intervals.get("metrics"):
        return []
    level = round(100 * float(intervals.get("level", 0.95)))
    return [
        f"## {level}% confidence intervals (test, calibrated)",
        "",
        (f"Percentile bootstrap over the test images: {intervals.get('n_resamples')} resamples with replacement, "
         f"seed {intervals.get('seed')}, predictions fixed. Images of one lesion are resampled independently, so "
         "for lesions with several images the intervals are somewhat too narrow."),
        "",
        *_table(["Metric", "Estimate", "Low", "High"],
                [[_ci_name(k), m.get("estimate"), m.get("low"), m.get("high")]
                 for k, m in intervals["metrics"].items()]),
        "",
    ]


COMPARED = [
    (("balanced_accuracy",), "Balanced accuracy"),
    (("melanoma_auc",), "Melanoma AUC"),
    (("macro_auc",), "Macro AUC (one-vs-rest)"),
    (("malignant", "auc"), "Malignant vs benign AUC"),
    (("per_class", "mel", "precision"), "Melanoma precision (top-1)"),
    (("per_class", "mel", "recall"), "Melanoma recall (top-1)"),
    (("malignant", "at_thresholds", "high", "sensitivity"), "Malignant sensitivity, high band"),
    (("malignant", "at_thresholds", "high", "specificity"), "Malignant specificity, high band"),
    (("ece",), "ECE (top label, 15 bins)"),
]


def comparison_markdown(previous: dict | None, after: dict) -> list[str]:
    """This model against the one it replaces, on the same test images (empty without ``previous``)."""
    if not previous or not previous.get("report"):
        return []
    before = previous["report"]
    rows = []
    for path, text in COMPARED:
        old, new = _report_value(before, path), _report_value(after, path)
        change = None if old is None or new is None else f"{new - old:+.3f}"
        rows.append([text, old, new, change])
    return [
        f"## Compared with the previous default model ({previous.get('name', 'previous model')})",
        "",
        (f"Both through the engine, calibrated as each card says, on the same {before.get('n')} test images. "
         f"{previous.get('note', '')}").strip(),
        "",
        *_table(["Metric", "Previous", "This model", "Change"], rows),
        "",
    ]


def subgroups_markdown(subgroups: dict | None) -> list[str]:
    """The subgroup section: one table per attribute (empty without subgroups)."""
    if not subgroups:
        return []
    lines = [
        "## Subgroups (test, calibrated; HAM10000_metadata.csv)",
        "",
        ("Where the model is weaker. Small groups give noisy numbers: read them with their counts. Balanced "
         "accuracy is n/a for a group with fewer than 2 classes; malignant sensitivity at the high threshold is "
         "n/a without malignant images."),
        "",
    ]
    for attribute, rows in subgroups.items():
        if not rows:
            continue
        sens_key = next((k for k in rows[0] if k.startswith("malignant_sensitivity_")), None)
        lines += [f"### {SUBGROUP_TITLES.get(attribute, attribute)}", ""]
        lines += _table(["Group", "Images", "Classes", "Balanced accuracy", "Malignant", "Malignant sensitivity"],
                        [[r.get("group"), r.get("n"), r.get("classes"), r.get("balanced_accuracy"),
                          r.get("malignant"), r.get(sens_key) if sens_key else None] for r in rows])
        lines.append("")
    return lines


def _members_sentence(provenance: dict) -> str:
    """For an ensemble (``train.ensemble``): each member's training command and minutes, else nothing."""
    members = [m for m in provenance.get("members") or [] if isinstance(m, dict)]
    if not members:
        return ""
    runs = "; ".join(f"`{m.get('command', 'n/a')}` ({_fmt(m.get('minutes'), 1)} min)" for m in members)
    return f" An ensemble of {len(members)} networks, trained one by one: {runs}."


def evaluate_report_markdown(report_before: dict, report_after: dict, card: dict, split_sizes: dict,
                             intervals: dict | None = None, subgroups: dict | None = None,
                             previous: dict | None = None) -> str:
    """The evaluation report of a model on its test split, before and after temperature scaling, as Markdown."""
    labels = report_after["confusion_matrix"]["labels"]
    provenance = card.get("provenance") or {}
    name = f"{card.get('name') or 'model'} {card.get('version') or ''}".strip()
    lines = [
        f"# Evaluation: {name}",
        "",
        ("Generated by `dermascan.train` (training run, or `python -m dermascan.train.report`); do not edit. "
        f"Internal held-out **test** split of HAM10000, n = {report_after['n']}; nothing here was used for "
        "training, model selection, calibration or threshold setting (those used the validation split)."),
        "",
        f"- Calibration: temperature T = {_fmt(card.get('temperature'), 4)} (fitted on validation by NLL).",
        "- Triage thresholds on the malignancy score p(mel)+p(bcc)+p(akiec), calibrated: "
        + ", ".join(f"{k} >= {_fmt(v, 4)}" for k, v in sorted((card.get("thresholds") or {}).items(),
                                                               key=lambda kv: kv[1]))
        + " (set on validation for 99% / 95% malignant sensitivity).",
        (f"- Training: {_fmt(provenance.get('training_minutes'), 1)} min of fitting on "
         f"{provenance.get('machine', 'n/a')}, seed {provenance.get('seed', 'n/a')}, "
         f"`{provenance.get('command', 'n/a')}`."
         + (f" {provenance['note']}" if isinstance(provenance.get("note"), str) else "")
         + _members_sentence(provenance)),
        "",
        "## Targets",
        "",
        *_table(["Metric", "Target", "Test", "Met"], _target_rows(report_after, card)),
        "",
        "## Summary",
        "",
        *_table(
            ["Metric", "Uncalibrated", "Calibrated"],
            [
                ["Accuracy", report_before["accuracy"], report_after["accuracy"]],
                ["Balanced accuracy", report_before["balanced_accuracy"], report_after["balanced_accuracy"]],
                ["Macro AUC (one-vs-rest)", report_before["macro_auc"], report_after["macro_auc"]],
                ["Melanoma AUC", report_before["melanoma_auc"], report_after["melanoma_auc"]],
                ["Malignant vs benign AUC", report_before["malignant"]["auc"], report_after["malignant"]["auc"]],
                ["ECE (top label, 15 bins)", report_before["ece"], report_after["ece"]],
                ["Melanoma sensitivity, high band", report_before["mel_sensitivity_high"],
                 report_after["mel_sensitivity_high"]],
            ],
        ),
        "",
        *_calibration_note(report_before, report_after, card),
        ("Temperature scaling divides log-probabilities by one constant: it changes confidence, not the ranking "
        "of classes, so accuracy and AUCs barely move while ECE does. The triage thresholds were fitted on "
        "calibrated scores, so the uncalibrated column's band numbers are for reference only."),
        "",
        *comparison_markdown(previous, report_after),
        *intervals_markdown(intervals),
        "## Triage bands (malignant = mel, bcc, akiec)",
        "",
        *_table(
            ["Band", "Threshold", "Sensitivity", "Specificity"],
            [[band, v["threshold"], v["sensitivity"], v["specificity"]]
             for band, v in report_after["malignant"]["at_thresholds"].items()],
        ),
        "",
        "## Per class (calibrated)",
        "",
        *_table(
            ["Class", "Precision", "Recall", "F1", "Support"],
            [[label, m["precision"], m["recall"], m["f1"], m["support"]]
             for label, m in report_after["per_class"].items()],
        ),
        "",
        "## Confusion matrix (rows = true class, columns = predicted)",
        "",
        "![Confusion matrix](confusion_matrix.svg)",
        "",
        *_table(["true \\ pred", *labels],
                [[label, *row] for label, row in zip(labels, report_after["confusion_matrix"]["matrix"])]),
        "",
        "## Reliability (top-label confidence vs accuracy, non-empty bins)",
        "",
        *_table(
            ["Bin", "Count (uncal.)", "Confidence", "Accuracy", "Count (cal.)", "Confidence", "Accuracy"],
            [
                [f"{b['lower']:.2f}-{b['upper']:.2f}", b["count"], b["confidence"], b["accuracy"],
                 a["count"], a["confidence"], a["accuracy"]]
                for b, a in zip(report_before["reliability"], report_after["reliability"])
                if b["count"] or a["count"]
            ],
        ),
        "",
        *subgroups_markdown(subgroups),
        f"## Split sizes ({_split_description(card)})",
        "",
        *_split_table(split_sizes),
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in card.get("limitations") or []],
        "",
    ]
    return "\n".join(lines)


def _calibration_note(before: dict, after: dict, card: dict) -> list[str]:
    """A sentence on how the validation-fitted temperature carried over to the test split."""
    val = (card.get("metrics") or {}).get("validation") or {}
    if before.get("ece") is None or after.get("ece") is None:
        return []
    text = f"Test ECE went from {before['ece']:.3f} to {after['ece']:.3f} with the temperature"
    if val.get("ece_uncalibrated") is not None and val.get("ece") is not None:
        text += f" (validation, where it was fitted: {val['ece_uncalibrated']:.3f} to {val['ece']:.3f})"
    text += "."
    if after["ece"] > before["ece"]:
        text += (" Here the temperature did not carry over: ECE over a few hundred images with 15 bins is noisy "
                 "(a few hundredths), and the temperature was fitted for log-loss, not ECE.")
    return [text, ""]


def _split_description(card: dict) -> str:
    split_file = str((card.get("provenance") or {}).get("split_file") or "model/split.csv")
    if "split_v2" in split_file:
        return f"lesion-grouped, `{split_file}`"
    return f"stratified 70/15/15, `{split_file}`"


def _split_table(split_sizes: dict) -> list[str]:
    classes = sorted({k for part in split_sizes.values() for k in part if k != "total"})
    rows = [[name, part.get("total", 0), *[part.get(c, 0) for c in classes]] for name, part in split_sizes.items()]
    return _table(["Split", "Total", *classes], rows)


def confusion_matrix_figure(report: dict, path: str | Path) -> Path:
    """Write the report's confusion matrix (row-normalised colour, counts annotated) as an SVG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = report["confusion_matrix"]["labels"]
    matrix = np.asarray(report["confusion_matrix"]["matrix"], dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    path = Path(path).with_suffix(".svg")
    # Fixed hash salt and no date: the SVG only changes when the numbers do (clean diffs).
    with plt.rc_context({"svg.hashsalt": "dermascan", "svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(6.4, 5.6))
        image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=9,
                        color="white" if normalised[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(f"Confusion matrix, test split (n = {report.get('n', int(matrix.sum()))})")
        fig.colorbar(image, ax=ax, label="Fraction of the true class")
        fig.tight_layout()
        fig.savefig(path, format="svg", metadata={"Date": None})
        plt.close(fig)
    return path
