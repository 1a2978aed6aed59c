"""The paired, lesion-grouped bootstrap that decides whether a candidate model beats the shipped one."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import HAM_LABELS

from dermascan.evaluation.metrics import classification_report, paired_bootstrap

MALIGNANT = ["akiec", "bcc", "mel"]


def _classifier(y: np.ndarray, bonus: float, seed: int) -> np.ndarray:
    """Probabilities of a noisy classifier whose true class gets ``bonus`` on its logit."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), len(HAM_LABELS)))
    logits[np.arange(len(y)), y] += bonus
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _truth(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(len(HAM_LABELS), size=n, p=[0.05, 0.08, 0.12, 0.03, 0.12, 0.55, 0.05])


def test_a_model_against_itself_differs_by_nothing():
    y = _truth(300)
    probs = _classifier(y, 1.0, 1)
    result = paired_bootstrap([HAM_LABELS[i] for i in y], probs, probs, HAM_LABELS, MALIGNANT, {},
                              n_resamples=200, seed=3)
    assert set(result) >= {"balanced_accuracy", "melanoma_auc", "macro_auc", "malignant_auc"}
    for row in result.values():
        assert row["difference"] == row["low"] == row["high"] == 0.0 and row["b_ahead"] == 0.0


def test_a_clearly_better_model_is_ahead_with_an_interval_above_zero_and_the_reports_point_values():
    y = _truth(600)
    truth = [HAM_LABELS[i] for i in y]
    weak, strong = _classifier(y, 0.8, 1), _classifier(y, 2.5, 2)
    result = paired_bootstrap(truth, weak, strong, HAM_LABELS, MALIGNANT, {}, n_resamples=300, seed=0)
    bal = result["balanced_accuracy"]
    assert bal["low"] > 0 and bal["b_ahead"] > 0.99 and bal["low"] <= bal["difference"] <= bal["high"]
    for side, probs in (("a", weak), ("b", strong)):
        report = classification_report(truth, probs, HAM_LABELS, MALIGNANT, {})
        assert bal[side] == pytest.approx(report["balanced_accuracy"])
    assert result["melanoma_auc"]["difference"] > 0
    # Swapping the models mirrors the result; the same seed gives the same numbers.
    mirrored = paired_bootstrap(truth, strong, weak, HAM_LABELS, MALIGNANT, {}, n_resamples=300, seed=0)
    assert mirrored["balanced_accuracy"]["difference"] == pytest.approx(-bal["difference"])
    assert mirrored["balanced_accuracy"]["high"] == pytest.approx(-bal["low"])
    assert paired_bootstrap(truth, weak, strong, HAM_LABELS, MALIGNANT, {}, n_resamples=300, seed=0) == result


def test_lesion_grouping_keeps_copies_of_one_lesion_from_narrowing_the_interval():
    """Four images per lesion are not four times the evidence: drawn by lesion, the interval stays as wide."""
    y = _truth(250, seed=5)
    a, b = _classifier(y, 1.0, 1), _classifier(y, 1.3, 2)
    copies = 4
    y4, a4, b4 = np.repeat(y, copies), np.repeat(a, copies, axis=0), np.repeat(b, copies, axis=0)
    lesions = np.repeat(np.arange(len(y)), copies)
    truth4 = [HAM_LABELS[i] for i in y4]

    def width(**kwargs) -> float:
        row = paired_bootstrap(truth4, a4, b4, HAM_LABELS, MALIGNANT, {}, n_resamples=400, seed=1,
                               **kwargs)["macro_auc"]
        return row["high"] - row["low"]

    assert width(groups=lesions) > 1.5 * width()


def test_mismatched_inputs_are_refused():
    y = _truth(20)
    truth = [HAM_LABELS[i] for i in y]
    probs = _classifier(y, 1.0, 0)
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap(truth, probs, probs[:, :6], HAM_LABELS, MALIGNANT, {})
    with pytest.raises(ValueError, match="one group per image"):
        paired_bootstrap(truth, probs, probs, HAM_LABELS, MALIGNANT, {}, groups=[1, 2])
    with pytest.raises(ValueError):
        paired_bootstrap(truth, probs, probs, HAM_LABELS, MALIGNANT, {}, n_resamples=0)
