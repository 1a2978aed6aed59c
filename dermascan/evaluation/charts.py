"""Altair chart builders for batch results and evaluation metrics (UI-free, unit-testable).

Each ``*_frame`` function turns engine output into a tidy pandas frame; each chart
function takes such a frame and returns an ``alt.Chart``. Pages only call
``st.altair_chart``. Triage colours come with their words in the legend, never alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from ..inference.scoring import TRIAGE_BANDS
from .metrics import malignant_scores

TRIAGE_COLOURS = {"low": "#4c9a6a", "medium": "#e0a030", "high": "#c0504d"}
SCORE_BIN = 0.05


def _triage_scale() -> alt.Scale:
    return alt.Scale(domain=list(TRIAGE_BANDS), range=[TRIAGE_COLOURS[b] for b in TRIAGE_BANDS])


# -- batch results ---------------------------------------------------------------------------------------


def class_distribution_chart(frame: pd.DataFrame, label_column: str = "top_label") -> alt.Chart:
    """Bars counting images per predicted class (``frame`` has one row per image)."""
    counts = frame[label_column].value_counts().rename_axis("class").reset_index(name="images")
    return (
        alt.Chart(counts, title="Predicted class")
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("images:Q", title="Images", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("class:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=["class", "images"],
        )
    )


def score_histogram(frame: pd.DataFrame, score_column: str = "malignant_score",
                    triage_column: str = "triage") -> alt.Chart:
    """Histogram of malignancy scores in 0.05-wide bins, stacked and coloured by triage band."""
    scores = frame[score_column].astype(float).clip(0.0, 1.0)
    lower = np.minimum(np.floor(scores / SCORE_BIN) * SCORE_BIN, 1.0 - SCORE_BIN).round(6)
    binned = (
        pd.DataFrame({"lower": lower, "triage": frame[triage_column].astype(str)})
        .groupby(["lower", "triage"], as_index=False)
        .size()
        .rename(columns={"size": "images"})
    )
    binned["upper"] = (binned["lower"] + SCORE_BIN).round(6)
    return (
        alt.Chart(binned, title="Malignancy score")
        .mark_bar()
        .encode(
            x=alt.X("lower:Q", bin="binned", scale=alt.Scale(domain=[0, 1]), title="Malignancy score",
                    axis=alt.Axis(format="%")),
            x2="upper:Q",
            y=alt.Y("images:Q", stack=True, title="Images", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("triage:N", scale=_triage_scale(), title="Triage band",
                            legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("lower:Q", format=".0%", title="from"), alt.Tooltip("upper:Q", format=".0%",
                     title="to"), "triage", "images"],
        )
    )


# -- evaluation ------------------------------------------------------------------------------------------


def confusion_frame(report: dict) -> pd.DataFrame:
    """Tidy confusion matrix: true, predicted, count and the share of the true class's row."""
    labels = report["confusion_matrix"]["labels"]
    matrix = np.asarray(report["confusion_matrix"]["matrix"], dtype=float)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    return pd.DataFrame(
        [
            {"true": t, "predicted": p, "count": int(matrix[i, j]), "share": float(share[i, j])}
            for i, t in enumerate(labels)
            for j, p in enumerate(labels)
        ]
    )


def confusion_heatmap(frame: pd.DataFrame) -> alt.Chart:
    """Confusion-matrix heatmap (colour: share of the true class) with counts written in the cells."""
    order = list(dict.fromkeys(frame["true"]))
    base = alt.Chart(frame, title="Confusion matrix").encode(
        x=alt.X("predicted:N", sort=order, title="Predicted"),
        y=alt.Y("true:N", sort=order, title="True"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), title="Share of true class"),
        tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".0%")],
    )
    text = base.mark_text(baseline="middle").encode(
        text="count:Q",
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("#1f2d33")),
    )
    return alt.layer(cells, text)


def recall_frame(report: dict) -> pd.DataFrame:
    """Per-class recall and support (classes absent from the data have no recall and are left out)."""
    rows = [
        {"class": label, "recall": row["recall"], "support": row["support"]}
        for label, row in report["per_class"].items()
        if row["recall"] is not None
    ]
    return pd.DataFrame(rows, columns=["class", "recall", "support"])


def recall_bars(frame: pd.DataFrame) -> alt.Chart:
    """Per-class recall (sensitivity) bars, with each class's number of images in the tooltip."""
    return (
        alt.Chart(frame, title="Recall per class")
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="Recall"),
            y=alt.Y("class:N", title=None),
            tooltip=["class", alt.Tooltip("recall:Q", format=".1%"), "support"],
        )
    )


def roc_frame(y_true: Sequence[str], probs: np.ndarray, labels: Sequence[str],
              malignant_labels: Sequence[str]) -> pd.DataFrame:
    """ROC points (false / true positive rate, threshold) of the malignancy score, malignant vs benign.

    Empty when only one of the two groups is present (no curve exists).
    """
    is_malignant = np.isin(list(y_true), list(malignant_labels)).astype(int)
    if not malignant_labels or is_malignant.min(initial=1) == is_malignant.max(initial=0):
        return pd.DataFrame(columns=["point", "fpr", "tpr", "threshold"])
    scores = malignant_scores(probs, list(labels), list(malignant_labels))
    fpr, tpr, thresholds = roc_curve(is_malignant, scores)
    return pd.DataFrame({"point": np.arange(len(fpr)), "fpr": fpr, "tpr": tpr,
                         "threshold": np.clip(thresholds, 0.0, 1.0)})


def roc_chart(frame: pd.DataFrame, auc: float | None = None) -> alt.Chart:
    """ROC curve of malignant vs benign with the chance diagonal; the AUC goes in the title."""
    title = "ROC: malignant vs benign" + ("" if auc is None else f" (AUC {auc:.3f})")
    diagonal = alt.Chart(pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="#999999"
    ).encode(x="fpr:Q", y="tpr:Q")
    curve = alt.Chart(frame).mark_line(interpolate="step-after", point=True).encode(
        x=alt.X("fpr:Q", scale=alt.Scale(domain=[0, 1]), title="False positive rate (1 - specificity)"),
        y=alt.Y("tpr:Q", scale=alt.Scale(domain=[0, 1]), title="True positive rate (sensitivity)"),
        order=alt.Order("point:Q"),  # roc_curve's own order: fpr and tpr both non-decreasing
        tooltip=[alt.Tooltip("threshold:Q", format=".3f", title="score ≥"), alt.Tooltip("tpr:Q", format=".2f"),
                 alt.Tooltip("fpr:Q", format=".2f")],
    )
    return alt.layer(diagonal, curve).properties(title=title)


def reliability_frame(bins: list[dict]) -> pd.DataFrame:
    """Non-empty bins of ``metrics.reliability_bins``: mean confidence, accuracy and count."""
    rows = [b for b in bins if b["count"]]
    return pd.DataFrame(rows, columns=["lower", "upper", "confidence", "accuracy", "count"])


def reliability_chart(frame: pd.DataFrame) -> alt.Chart:
    """Reliability diagram: accuracy against mean confidence per bin, each point labelled with its image count
    (a bin of 2 images says little), the diagonal of perfect calibration, and the bin's range in the tooltip."""
    ideal = alt.Chart(pd.DataFrame({"confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="#999999"
    ).encode(x="confidence:Q", y="accuracy:Q")
    frame = frame.assign(label=[f"n={int(c)}" for c in frame["count"]])
    base = alt.Chart(frame).encode(
        x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"),
                title="Mean confidence of the top class"),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"),
                title="Share of the top class that is right"),
        tooltip=[alt.Tooltip("lower:Q", format=".0%", title="confidence from"),
                 alt.Tooltip("upper:Q", format=".0%", title="to"),
                 alt.Tooltip("confidence:Q", format=".1%", title="mean confidence"),
                 alt.Tooltip("accuracy:Q", format=".1%", title="accuracy"), alt.Tooltip("count:Q", title="images")],
    )
    observed = base.mark_line(point=alt.OverlayMarkDef(size=60, filled=True), color="#2f6f8f")
    counts = base.mark_text(dy=-12, fontSize=11, color="#1f2d33").encode(text="label:N")
    return alt.layer(ideal, observed, counts).properties(
        title=alt.Title("Reliability (calibration)", subtitle="Dashed: perfect calibration. Labels: images per bin."))


# -- preprocessing comparison ----------------------------------------------------------------------------


def option_metrics_frame(rows: list[dict], metrics: dict[str, str]) -> pd.DataFrame:
    """Long frame (option, metric, value, best) from ``compare.metrics_table`` rows; None values dropped."""
    long = [
        {"option": r["option"], "metric": title, "value": r[key], "best": bool(r.get("best"))}
        for r in rows
        for key, title in metrics.items()
        if r.get(key) is not None
    ]
    return pd.DataFrame(long, columns=["option", "metric", "value", "best"])


def option_metrics_chart(frame: pd.DataFrame) -> alt.Chart:
    """Grouped bars: each metric per option, the best option drawn opaque and the others faded."""
    return (
        alt.Chart(frame, title="Metrics per option")
        .mark_bar()
        .encode(
            x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), title=None),
            y=alt.Y("option:N", title=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color("option:N", legend=None),
            opacity=alt.condition(alt.datum.best, alt.value(1.0), alt.value(0.45)),
            row=alt.Row("metric:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            tooltip=["option", "metric", alt.Tooltip("value:Q", format=".3f"), "best"],
        )
    )
