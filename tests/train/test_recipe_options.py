"""Recipe options of dermascan.train: logit-adjusted loss, augmentation, and a tiny v2 run on the ported backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dermascan.train.data import Augmentation, augment, shades_of_gray
from dermascan.train.fitting import LogitAdjustedLoss

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def test_logit_adjusted_loss_is_cross_entropy_on_shifted_logits():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    y = np.array([1, 2])
    prior = np.array([8.0, 1.0, 1.0])
    plain = -np.log(probs[np.arange(2), y]).mean()
    assert float(LogitAdjustedLoss(prior, 0.0)(y, probs)) == pytest.approx(plain, rel=1e-5)
    shifted = np.log(probs) + np.log(prior / prior.sum())
    expected = -(shifted[np.arange(2), y] - np.log(np.exp(shifted).sum(axis=1))).mean()
    adjusted = float(LogitAdjustedLoss(prior, 1.0)(y, probs))
    assert adjusted == pytest.approx(expected, rel=1e-5)
    assert adjusted > plain  # a rare true class costs more once the frequent class gets its prior
    with pytest.raises(ValueError):
        LogitAdjustedLoss(np.array([1.0, 0.0, 2.0]), 1.0)
    with pytest.raises(ValueError):
        LogitAdjustedLoss(prior, float("nan"))


def test_shades_of_gray_removes_a_colour_cast():
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.2, 0.8, (32, 32, 1)).astype(np.float32)
    cast = np.concatenate([grey * 1.0, grey * 0.7, grey * 0.5], axis=-1)  # a warm illuminant
    out = shades_of_gray(tf.constant(cast)).numpy()
    norms = (out**6).mean(axis=(0, 1)) ** (1 / 6)
    assert norms.max() - norms.min() < 1e-3 < np.ptp((cast**6).mean(axis=(0, 1)) ** (1 / 6))


def test_augmentation_options_are_seeded_and_scaled():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    seed = tf.constant([3, 9], tf.int64)
    aug = Augmentation((160, 160), "raw", rrc_min_area=0.3, sog_prob=0.5)
    a, b = augment(image, seed, aug).numpy(), augment(image, seed, aug).numpy()
    assert a.shape == (160, 160, 3) and np.array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 255.0 and a.max() > 1.5  # "raw": 0-255, the model normalises
    assert not np.array_equal(a, augment(image, tf.constant([3, 10], tf.int64), aug).numpy())
    tf_scaled = augment(image, seed, Augmentation()).numpy()
    assert tf_scaled.shape == (224, 224, 3) and tf_scaled.min() >= -1.0 and tf_scaled.max() <= 1.0


@pytest.mark.parametrize("batch_norm", [False, True])
def test_batch_norm_is_fine_tuned_only_when_asked(batch_norm):
    import keras

    from dermascan.train.architecture import build_model, set_trainable

    model = build_model(7, None, backbone_name="mnv2-1.0-torch", input_size=(64, 64))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    set_trainable(model, backbone=False, batch_norm=batch_norm)
    assert not any(layer.trainable for layer in norms)  # the head phase never moves the backbone
    set_trainable(model, backbone=True, batch_norm=batch_norm)
    assert all(layer.trainable == batch_norm for layer in norms)
    before = [layer.moving_mean.numpy().copy() for layer in norms]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(2).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    model.train_on_batch(x, np.arange(8) % 7)
    moved = [not np.array_equal(b, layer.moving_mean.numpy()) for b, layer in zip(before, norms)]
    assert all(moved) if batch_norm else not any(moved)


@pytest.mark.skipif(not (SHARED / "ham10000_full_200x150" / "labels.csv").is_file(),
                    reason="needs ../shared/data (both HAM10000 folders)")
def test_v2_run_on_the_ported_backbone_end_to_end(tmp_path):
    import pandas as pd

    import dermascan
    from dermascan.model.card import read_card
    from dermascan.train.__main__ import main

    out = tmp_path / "model"
    code = main(["--data", str(SHARED / "ham10000_224"), "--out", str(out), "--data-v2", "--limit", "48",
                 "--backbone", "mnv2-1.0-torch", "--weights", "none", "--input-size", "160",
                 "--logit-adjust", "1.0", "--class-weight-power", "0", "--ema", "0.9", "--rrc-min-area", "0.3",
                 "--sog-prob", "0.5", "--train-bn", "--epochs-head", "1", "--epochs-finetune", "1", "--seed", "5",
                 "--time-budget-min", "5"])
    assert code == 0
    card = read_card(out / "dermascan-mnv2-ham10000.card.json")
    assert card.preprocessing == "raw" and card.input_size == [160, 160] and card.cam_layer == "out_relu"
    assert card.provenance["recipe"]["backbone"] == "mnv2-1.0-torch"
    assert card.version == "2.0.0"  # a new recipe is a new version: earlier reviews never attach to it
    assert "Medium starts at a score of" in card.thresholds_note and "validation" in card.thresholds_note
    assert card.provenance["recipe"]["ema"] == 0.9 and card.provenance["recipe"]["logit_adjust"] == 1.0
    assert card.provenance["recipe"]["train_bn"] is True
    log = (out / "train_log.txt").read_text()
    assert "v2 lesion-grouped split" in log and "logit-adjusted loss, tau 1.0" in log
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert set(evaluation["subgroups"]) == {"sex", "age_band", "localization"}
    assert sum(r["n"] for r in evaluation["subgroups"]["sex"]) == evaluation["after"]["n"]
    assert evaluation["confidence_intervals"]["n_resamples"] == 1000
    assert "subgroups" in card.metrics and "confidence_intervals" in card.metrics
    report = (out / "EVALUATION.md").read_text()
    assert "## Subgroups" in report and "## 95% confidence intervals" in report and "lesion-grouped" in report
    split = pd.read_csv(out / "split_v2.csv", dtype=str)
    assert set(split["split"]) == {"train", "val", "test"}
    assert (split.groupby("lesion_id")["split"].nunique() == 1).all()

    lesion_model = dermascan.load_model(out / "dermascan-mnv2-ham10000.keras")
    image = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    keras_probs = lesion_model.keras_model.predict(image[None].astype("float32"), verbose=0)
    np.testing.assert_allclose(lesion_model.predict([image], calibrated=False), keras_probs, atol=1e-4)


@pytest.mark.parametrize("flag,value", [("--ema", "0"), ("--ema", "nan"), ("--logit-adjust", "inf"),
                                        ("--rrc-min-area", "2"), ("--model-version", "2.1.0; rm"),
                                        ("--model-version", "latest")])
def test_bad_recipe_values_are_refused_with_one_line(flag, value, capsys):
    from dermascan.train.__main__ import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args([flag, value])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err


def test_a_release_version_is_taken_as_given():
    from dermascan.train.__main__ import parse_args

    assert parse_args(["--model-version", "2.1.0"]).model_version == "2.1.0"
    assert parse_args([]).model_version is None  # the recipe's default (1.0.0 / 2.0.0)


@pytest.mark.skipif(not (SHARED / "ham10000_full_200x150" / "labels.csv").is_file(),
                    reason="needs ../shared/data (both HAM10000 folders)")
def test_train_sources_leave_out_train_images_only(tmp_path):
    """The data probe trains on one folder's images; validation and test keep both, so runs stay comparable."""
    from dermascan.model.card import HAM10000_LABELS
    from dermascan.train.fitting import FitConfig
    from dermascan.train.pipeline import RunOptions, _load_data_v2
    from dermascan.train.runlog import RunLog
    from dermascan.train.split import SOURCE_224, SOURCE_FULL

    def load(sources):
        options = RunOptions(data=SHARED / "ham10000_224", out=tmp_path / str(sources), weights=None, limit=300,
                             data_v2=True, train_sources=sources)
        log = RunLog(tmp_path / f"{sources}.txt")
        return _load_data_v2(options, FitConfig(input_size=64), list(HAM10000_LABELS), log), log

    every, _ = load(None)
    only_224, log = load((SOURCE_224,))
    assert set(every.parts["train"]["source"]) == {SOURCE_224, SOURCE_FULL}
    assert set(only_224.parts["train"]["source"]) == {SOURCE_224}
    assert len(only_224.images["train"]) == (every.parts["train"]["source"] == SOURCE_224).sum()
    for part in ("val", "test"):
        assert list(only_224.parts[part]["image_id"]) == list(every.parts[part]["image_id"])
    assert "train images left out" in log.path.read_text()


def test_train_sources_need_the_v2_data(capsys):
    from dermascan.train.__main__ import main

    assert main(["--train-sources", "ham10000_224"]) == 2
    assert "--data-v2" in capsys.readouterr().err


def test_the_cards_limitations_say_how_the_recipe_handled_class_imbalance():
    from dermascan.train.export import CLASS_WEIGHTS_LIMITATION, LOGIT_ADJUSTED_LIMITATION, limitations_for

    weighted = limitations_for({"split_file": "model/split_v2.csv", "recipe": {"logit_adjust": 0.0}})
    adjusted = limitations_for({"split_file": "model/split_v2.csv", "recipe": {"logit_adjust": 1.0}})
    assert CLASS_WEIGHTS_LIMITATION in weighted and LOGIT_ADJUSTED_LIMITATION not in weighted
    assert LOGIT_ADJUSTED_LIMITATION in adjusted and CLASS_WEIGHTS_LIMITATION not in adjusted
    assert any("200x150" in line for line in adjusted)  # the v2 data's own limitations stay
    assert not any("200x150" in line for line in limitations_for({"split_file": "model/split.csv"}))
