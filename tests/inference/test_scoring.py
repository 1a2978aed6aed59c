"""Malignancy score by label name, triage bands."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import HAM_LABELS
from tiny_models import keras_lib, save_model, tiny_cnn

import dermascan
from dermascan.inference.scoring import malignant_score, malignant_scores, triage_band


def test_score_sums_malignant_classes_by_name():
    probs = np.array([0.05, 0.10, 0.20, 0.05, 0.30, 0.25, 0.05])
    assert malignant_score(probs, HAM_LABELS, ["mel", "bcc", "akiec"]) == pytest.approx(0.45)


def test_score_follows_the_labels_not_the_ranking():
    # The original backend summed the top positions of the sorted list; by name is invariant to ranking.
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7), size=50)
    scores = malignant_scores(probs, HAM_LABELS, ["mel", "bcc", "akiec"])
    np.testing.assert_allclose(scores, probs[:, [4, 1, 0]].sum(axis=1))


def test_score_is_invariant_to_a_shuffled_output_order(tmp_path, rgb_images):
    """Same network with its outputs permuted and its labels permuted alike: same score, same per-label probs."""
    keras = keras_lib("keras")
    original = tiny_cnn(keras, "functional", seed=11)
    perm = np.random.default_rng(4).permutation(7)
    shuffled = tiny_cnn(keras, "functional", seed=11)
    shuffled.set_weights(original.get_weights())
    kernel, bias = original.get_layer("probs").get_weights()
    shuffled.get_layer("probs").set_weights([kernel[:, perm], bias[perm]])
    a_path = save_model(original, tmp_path / "a.keras")
    b_path = save_model(shuffled, tmp_path / "b.keras")
    shuffled_labels = [HAM_LABELS[i] for i in perm]
    a_model = dermascan.load_model(a_path, preprocessing="unit")
    b_model = dermascan.load_model(b_path, preprocessing="unit", labels=shuffled_labels)
    for image in rgb_images:
        a, b = a_model.analyze(image), b_model.analyze(image)
        assert b.malignant_score == pytest.approx(a.malignant_score, abs=1e-6)
        assert {p["label"]: round(p["probability"], 5) for p in a.predictions} == {
            p["label"]: round(p["probability"], 5) for p in b.predictions
        }
        by_name = dict(zip(b.labels, b.probabilities))
        assert b.malignant_score == pytest.approx(by_name["mel"] + by_name["bcc"] + by_name["akiec"])


@pytest.mark.parametrize(("score", "band"), [(0.0, "low"), (0.19, "low"), (0.2, "medium"), (0.49, "medium"),
                                             (0.5, "high"), (1.0, "high")])
def test_triage_bands(score, band):
    assert triage_band(score, {"medium": 0.2, "high": 0.5}) == band
