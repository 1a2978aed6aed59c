"""Validation-only probes of TTA view sets and per-class logit offsets (real numpy, one real tiny model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_models import save_tiny_lesion_model

from dermascan.evaluation.metrics import balanced_accuracy
from dermascan.inference.views import ALL_VIEWS
from dermascan.train import posthoc


def noisy_logits(seed: int, n: int, c: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, logits)`` of a noisy classifier: the true class gets ``signal`` nats more."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += signal
    return y, logits


def test_offsets_recover_a_known_bias():
    c = 4
    y, biased = noisy_logits(0, 600, c, 2.0)
    biased[:, 0] += 1.5  # class 0 over-called by 1.5 nats
    offsets = posthoc.fit_offsets(biased, y)
    before = balanced_accuracy(y, biased.argmax(1))
    after = balanced_accuracy(y, (biased + offsets).argmax(1))
    assert after > before + 0.05
    # Only differences between offsets matter: class 0 must end up about 1.5 below the others.
    assert np.mean(offsets[1:]) - offsets[0] == pytest.approx(1.5, abs=0.5)


def test_lesion_folds_keep_every_image_of_a_lesion_together():
    lesions = pd.Series(["a", "a", "b", "c", "c", "c", "d", "e"])
    folds = posthoc.lesion_folds(lesions)
    for lesion in lesions.unique():
        assert len(set(folds[lesions == lesion])) == 1
    assert set(folds) == {0, 1}


def test_cross_validation_scores_offsets_on_the_fold_they_were_not_fitted_on():
    n, c = 400, 3
    y, logits = noisy_logits(1, n, c, 1.0)
    logits[:, 2] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    folds = np.arange(n) % 2
    result = posthoc.offsets_cross_validated(probs, y, folds)
    scores = []
    for fold in (0, 1):
        fitted = posthoc.fit_offsets(np.log(probs[folds != fold]), y[folds != fold])
        assert result["offsets_per_fold"][fold] == pytest.approx(fitted.tolist())
        held = folds == fold
        scores.append(balanced_accuracy(y[held], (np.log(probs[held]) + fitted).argmax(1)))
    assert result["bal_acc_offsets"] == pytest.approx(np.mean(scores))
    assert result["bal_acc_offsets"] > result["bal_acc_plain"]  # the bias on class 2 is real in both folds


def test_the_probe_averages_views_as_the_engine_tta_does(tmp_path):
    from dermascan import load_model

    model = load_model(save_tiny_lesion_model(tmp_path))
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, 64, 64, 3), dtype=np.uint8)
    per_view = posthoc.view_probabilities(model, images)
    assert per_view.shape == (6, len(ALL_VIEWS), 7)
    x = model.preprocess(list(images))
    for views in posthoc.VIEW_SETS.values():
        averaged = per_view[:, [ALL_VIEWS.index(v) for v in views]].mean(axis=1)
        np.testing.assert_allclose(averaged, model.predict_prepared(x, views=views), atol=1e-6)
    truth = ["mel", "nv", "bkl", "nv", "mel", "df"]
    rows = posthoc.probe(model, images, truth, pd.Series(["l1", "l1", "l2", "l3", "l4", "l5"]))
    assert [r["views"] for r in rows] == list(posthoc.VIEW_SETS)
    table = posthoc.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "| all8 | 8 |" in table
