"""Altair chart builders: the frames hold the right numbers and the charts encode them."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest
from shared_data import HAM_LABELS

from dermascan.evaluation import charts
from dermascan.evaluation.metrics import classification_report, reliability_bins

MALIGNANT = ["mel", "bcc", "akiec"]


@pytest.fixture
def evaluation():
    rng = np.random.default_rng(0)
    y_true = [HAM_LABELS[i] for i in rng.integers(0, 7, size=60)]
    logits = rng.normal(size=(60, 7)) + 2.0 * np.eye(7)[[HAM_LABELS.index(y) for y in y_true]]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    report = classification_report(y_true, probs, HAM_LABELS, MALIGNANT, {"medium": 0.2, "high": 0.5})
    return y_true, probs, report


def spec(chart) -> dict:
    return chart.to_dict()


def test_class_distribution_counts_each_predicted_class():
    frame = pd.DataFrame({"top_label": ["nv", "nv", "mel", "bkl", "nv"]})
    chart = charts.class_distribution_chart(frame)
    assert isinstance(chart, alt.Chart) and spec(chart)["mark"]["type"] == "bar"
    counts = dict(zip(chart.data["class"], chart.data["images"]))
    assert counts == {"nv": 3, "mel": 1, "bkl": 1}


def test_score_histogram_bins_scores_and_colours_by_triage_band():
    frame = pd.DataFrame({"malignant_score": [0.0, 0.04, 0.21, 0.55, 1.0], "triage": ["low", "low", "medium", "high",
                                                                                     "high"]})
    chart = charts.score_histogram(frame)
    data = chart.data.set_index(["lower", "triage"])["images"].to_dict()
    assert data == {(0.0, "low"): 2, (0.2, "medium"): 1, (0.55, "high"): 1, (0.95, "high"): 1}
    color = spec(chart)["encoding"]["color"]
    assert color["field"] == "triage" and color["scale"]["domain"] == ["low", "medium", "high"]
    assert chart.data["images"].sum() == len(frame)


def test_confusion_heatmap_matches_the_report(evaluation):
    _, _, report = evaluation
    frame = charts.confusion_frame(report)
    assert len(frame) == 49 and frame["count"].sum() == report["n"]
    matrix = np.array(report["confusion_matrix"]["matrix"])
    row = frame[(frame["true"] == "mel") & (frame["predicted"] == "nv")].iloc[0]
    assert row["count"] == matrix[4, 5]
    shares = frame.groupby("true")["share"].sum()
    assert np.allclose(shares[matrix.sum(axis=1)[[HAM_LABELS.index(t) for t in shares.index]] > 0], 1.0)
    layered = spec(charts.confusion_heatmap(frame))
    assert [layer["mark"]["type"] for layer in layered["layer"]] == ["rect", "text"]


def test_recall_bars_leave_out_absent_classes(evaluation):
    _, _, report = evaluation
    report["per_class"]["df"] = {**report["per_class"]["df"], "recall": None, "support": 0}
    frame = charts.recall_frame(report)
    assert "df" not in set(frame["class"]) and len(frame) == 6
    assert frame.set_index("class")["recall"]["mel"] == report["per_class"]["mel"]["recall"]
    assert spec(charts.recall_bars(frame))["encoding"]["x"]["field"] == "recall"


def test_roc_curve_area_equals_the_reported_malignant_auc(evaluation):
    y_true, probs, report = evaluation
    frame = charts.roc_frame(y_true, probs, HAM_LABELS, MALIGNANT)
    assert frame["fpr"].is_monotonic_increasing and frame["tpr"].is_monotonic_increasing
    area = float(np.sum(np.diff(frame["fpr"]) * (frame["tpr"].to_numpy()[1:] + frame["tpr"].to_numpy()[:-1]) / 2))
    assert area == pytest.approx(report["malignant"]["auc"], abs=1e-9)
    chart = charts.roc_chart(frame, report["malignant"]["auc"])
    assert f"AUC {report['malignant']['auc']:.3f}" in spec(chart)["title"]
    assert charts.roc_frame(["nv", "bkl"], probs[:2], HAM_LABELS, MALIGNANT).empty  # no malignant case: no curve


def test_reliability_diagram_uses_the_non_empty_bins(evaluation):
    y_true, probs, report = evaluation
    bins = reliability_bins(np.array([HAM_LABELS.index(y) for y in y_true]), probs)
    frame = charts.reliability_frame(bins)
    assert len(frame) == sum(1 for b in bins if b["count"]) and frame["count"].sum() == len(y_true)
    layered = spec(charts.reliability_chart(frame))
    assert layered["layer"][1]["encoding"]["y"]["field"] == "accuracy"


def test_option_metrics_chart_marks_the_best_option():
    rows = [{"option": "unit · squash", "accuracy": 0.5, "balanced_accuracy": 0.4, "macro_auc": None, "best": False},
            {"option": "tf · squash", "accuracy": 0.6, "balanced_accuracy": 0.5, "macro_auc": 0.7, "best": True}]
    frame = charts.option_metrics_frame(rows, {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
                                               "macro_auc": "Macro AUC"})
    assert len(frame) == 5  # the missing AUC is left out, not drawn as 0
    assert set(frame[frame["best"]]["option"]) == {"tf · squash"}
    assert "opacity" in spec(charts.option_metrics_chart(frame))["encoding"]


def test_reliability_chart_writes_each_bin_count_and_draws_the_diagonal(evaluation):
    y_true, probs, _ = evaluation
    frame = charts.reliability_frame(reliability_bins(np.array([HAM_LABELS.index(y) for y in y_true]), probs))
    chart = charts.reliability_chart(frame)
    ideal, observed, counts = chart.layer
    assert list(ideal.data["confidence"]) == [0.0, 1.0] and list(ideal.data["accuracy"]) == [0.0, 1.0]
    layers = spec(chart)["layer"]
    assert layers[2]["mark"]["type"] == "text" and layers[2]["encoding"]["text"]["field"] == "label"
    assert list(counts.data["label"]) == [f"n={c}" for c in frame["count"]]  # every bin's count is written
    assert any(t["field"] == "count" for t in layers[1]["encoding"]["tooltip"])
