"""The shipped default model: it loads with its card, and the card's metrics are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import HAM, HAM_LABELS, REPO

import dermascan
from dermascan.config import BUNDLED_MODEL
from dermascan.evaluation.evaluate import metrics_for
from dermascan.train.split import model_split_file, split_part

pytestmark = pytest.mark.skipif(not BUNDLED_MODEL.is_file(), reason="the bundled model is not in model/")


@pytest.fixture(scope="module")
def bundled():
    return dermascan.load_model()  # no path: the bundled model is the default


def test_loads_with_its_card_and_no_assumptions(bundled):
    assert bundled.path == BUNDLED_MODEL
    assert bundled.labels == HAM_LABELS
    assert bundled.card.preprocessing == "raw" and bundled.card.resize == "squash"  # it normalises inside
    # Two networks as one model (TRAINING_LOG runs 19-21), each normalising its own input.
    assert sorted(bundled.rescaling_layers) == ["m0_imagenet_normalization", "m1_lite_input_scaling"]
    assert bundled.version == "2.2.0" and bundled.cam_layer == "out_relu" and bundled.input_size == (224, 224)
    # The input gate reads the penultimate features and each network's stage before its last one.
    assert bundled.describe()["ood_layers"] == ["penultimate", "m0_features_14_conv_0_2", "m1_blocks_15_bn0_relu"]
    assert bundled.warnings == []  # nothing assumed, nothing double-scaled
    assert 0 < bundled.card.thresholds["medium"] <= bundled.card.thresholds["high"] < 1
    for key in ("intended_use", "limitations", "training_data", "backbone", "provenance"):
        assert getattr(bundled.card, key)
    assert "CC BY-NC 4.0" in str(bundled.card.training_data)
    assert BUNDLED_MODEL.stat().st_size <= 25 * 1024 * 1024


def test_env_variable_overrides_the_default(monkeypatch, tmp_path):
    from tiny_models import save_tiny_lesion_model

    path = save_tiny_lesion_model(tmp_path)
    monkeypatch.setenv("DERMASCAN_MODEL", str(path))
    assert dermascan.load_model().path == path


@pytest.mark.slow
@pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data (HAM10000 images) is not present")
def test_card_metrics_match_a_fresh_evaluation_on_the_saved_test_split(bundled):
    split = model_split_file(bundled.card, BUNDLED_MODEL, REPO)
    assert split.is_file() and split.parent == BUNDLED_MODEL.parent  # the split is committed beside the model
    paths, rows = split_part(split, "test", HAM)
    images = [dermascan.read_image_file(p) for p in paths]
    probs = bundled.predict(images)
    fresh = metrics_for(bundled, list(rows["dx"]), probs)
    recorded = bundled.card.metrics["test"]
    assert fresh["n"] == recorded["n"] == len(rows)
    for key in ("accuracy", "balanced_accuracy", "macro_auc", "melanoma_auc", "ece"):
        assert fresh[key] == pytest.approx(recorded[key], abs=1e-6), key
    assert fresh["confusion_matrix"]["matrix"] == recorded["confusion_matrix"]["matrix"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
