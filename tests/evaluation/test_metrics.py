"""Metrics on hand-made arrays with known answers (no model, no data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shared_data import HAM_LABELS

from dermascan.evaluation.metrics import (
    apply_temperature,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    malignant_scores,
    reliability_bins,
    thresholds_for_sensitivity,
)

MALIGNANT = ["mel", "bcc", "akiec"]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ece_is_zero_for_a_perfectly_calibrated_toy():
    # 10 predictions at 80% confidence, 8 of them right: confidence equals accuracy.
    probs = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(y, probs) == pytest.approx(0.0, abs=1e-9)


def test_ece_of_an_overconfident_toy():
    # Always 100% sure, right half the time: ECE = |0.5 - 1.0|.
    probs = np.tile([1.0, 0.0], (10, 1))
    y = np.array([0, 1] * 5)
    assert expected_calibration_error(y, probs) == pytest.approx(0.5)


def test_reliability_bins_cover_all_predictions():
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(200, 4)))
    y = rng.integers(0, 4, 200)
    bins = reliability_bins(y, probs, n_bins=10)
    assert len(bins) == 10
    assert sum(b["count"] for b in bins) == 200
    assert bins[0]["lower"] == 0.0 and bins[-1]["upper"] == 1.0
    for b in bins:
        if b["count"] == 0:
            assert b["confidence"] is None and b["accuracy"] is None
        else:
            assert b["lower"] <= b["confidence"] <= b["upper"]


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(20000, 5))
    # Sample labels from the true probabilities (inverse CDF, vectorised).
    cdf = np.cumsum(_softmax(logits), axis=1)
    y = np.minimum((rng.random((len(cdf), 1)) > cdf).sum(axis=1), 4)
    overconfident = _softmax(logits * 2.0)  # a model twice as sharp as the truth: T should be 2
    temperature = fit_temperature(overconfident, y)
    assert temperature == pytest.approx(2.0, rel=0.05)
    assert fit_temperature(_softmax(logits), y) == pytest.approx(1.0, rel=0.05)


def test_apply_temperature_rows_sum_to_one_and_survive_zeros():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    for t in (0.5, 1.0, 3.0):
        out = apply_temperature(probs, t)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-9)
    # A higher temperature flattens, but never changes the ranking.
    assert apply_temperature(probs, 3.0)[2].max() < 0.5
    assert apply_temperature(probs, 3.0)[2].argmax() == 2
    with pytest.raises(ValueError):
        apply_temperature(probs, 0.0)


def test_malignant_score_sums_by_label_name_under_a_shuffled_order():
    rng = np.random.default_rng(2)
    probs = _softmax(rng.normal(size=(50, 7)))
    expected = malignant_scores(probs, HAM_LABELS, MALIGNANT)
    np.testing.assert_allclose(expected, probs[:, [0, 1, 4]].sum(axis=1))
    order = rng.permutation(7)
    shuffled_labels = [HAM_LABELS[i] for i in order]
    np.testing.assert_allclose(malignant_scores(probs[:, order], shuffled_labels, MALIGNANT), expected)
    with pytest.raises(ValueError, match="melanoma"):
        malignant_scores(probs, HAM_LABELS, ["melanoma"])


def test_thresholds_for_sensitivity():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.95, 0.01])
    is_mal = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)  # 10 positives
    assert thresholds_for_sensitivity(scores, is_mal, 1.0) == pytest.approx(0.05)
    assert thresholds_for_sensitivity(scores, is_mal, 0.9) == pytest.approx(0.1)
    assert thresholds_for_sensitivity(scores, is_mal, 0.85) == pytest.approx(0.1)  # needs 9 of 10
    assert thresholds_for_sensitivity(scores, is_mal, 0.5) == pytest.approx(0.5)
    for s in (0.5, 0.85, 0.95, 0.99):  # the contract: sensitivity at the threshold is at least s
        t = thresholds_for_sensitivity(scores, is_mal, s)
        assert (scores[is_mal] >= t).mean() >= s
    assert thresholds_for_sensitivity(scores, np.zeros(12, dtype=bool), 0.95) == 1.0


def _one_hot_probs(y_idx: list[int], n: int = 7, confidence: float = 0.9) -> np.ndarray:
    probs = np.full((len(y_idx), n), (1 - confidence) / (n - 1))
    probs[np.arange(len(y_idx)), y_idx] = confidence
    return probs


def test_classification_report_with_absent_classes_is_json_ready():
    y_true = ["nv", "nv", "mel", "bkl", "nv", "mel"]  # akiec, bcc, df, vasc absent
    probs = _one_hot_probs([HAM_LABELS.index(y) for y in y_true])
    probs[0] = _one_hot_probs([HAM_LABELS.index("mel")])[0]  # one nevus called melanoma
    report = classification_report(y_true, probs, HAM_LABELS, MALIGNANT, {"medium": 0.2, "high": 0.5})
    json.dumps(report, allow_nan=False)  # no NaN anywhere
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(5 / 6)
    # Balanced accuracy over present classes: nv 2/3, mel 1, bkl 1.
    assert report["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert report["per_class"]["df"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert report["per_class"]["mel"]["precision"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"]["labels"] == HAM_LABELS
    assert report["confusion_matrix"]["matrix"][HAM_LABELS.index("nv")][HAM_LABELS.index("mel")] == 1
    assert report["melanoma_auc"] is not None and report["macro_auc"] is not None
    high = report["malignant"]["at_thresholds"]["high"]
    assert high["threshold"] == 0.5 and high["sensitivity"] == 1.0 and high["specificity"] == pytest.approx(3 / 4)
    assert report["mel_sensitivity_high"] == 1.0
    assert sum(b["count"] for b in report["reliability"]) == 6


def test_classification_report_single_class_has_no_aucs():
    y_true = ["nv", "nv", "nv"]
    report = classification_report(y_true, _one_hot_probs([5, 5, 5]), HAM_LABELS, MALIGNANT,
                                   {"medium": 0.2, "high": 0.5})
    json.dumps(report, allow_nan=False)
    assert report["melanoma_auc"] is None
    assert report["macro_auc"] is None
    assert report["malignant"]["auc"] is None
    assert report["malignant"]["at_thresholds"]["high"]["sensitivity"] is None
    assert report["mel_sensitivity_high"] is None
    assert report["balanced_accuracy"] == 1.0


def test_classification_report_rejects_unknown_labels():
    with pytest.raises(ValueError, match="melanoma"):
        classification_report(["melanoma"], _one_hot_probs([4]), HAM_LABELS, MALIGNANT, {"medium": 0.2, "high": 0.5})
    with pytest.raises(ValueError, match="columns"):
        classification_report(["nv"], np.ones((1, 3)) / 3, HAM_LABELS, MALIGNANT, {"medium": 0.2, "high": 0.5})
