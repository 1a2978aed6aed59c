"""The multi-layer gate: which earlier layer is tapped, its features out of the same compiled pass, format 3
sidecars (round trip, hostile files, old formats), and a score that flags what only one layer sees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_models import keras_lib, save_model, tiny_cnn

import dermascan
from dermascan.errors import CardError
from dermascan.gate.features import PENULTIMATE, FeatureLayout
from dermascan.gate.fit import fit_gate, write_gate
from dermascan.gate.ood import GateStats, fit_stats, load_stats
from dermascan.model.card import read_card

KINDS = ["functional", "sequential", "nested-seq", "nested-func"]


def _engine_model(tmp_path, lib_name: str, kind: str):
    lib = keras_lib(lib_name)
    model = tiny_cnn(lib, kind)
    dense = model.layers[-1]
    dense.kernel.assign(dense.kernel * 40.0)  # not degenerate: the outputs depend on the image
    path = save_model(model, tmp_path / ("m.h5" if lib_name == "tf_keras" else "m.keras"))
    return dermascan.load_model(path, labels=[f"c{i}" for i in range(7)], preprocessing="unit"), model


@pytest.mark.parametrize("lib_name", ["keras", "tf_keras"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_layer_before_the_last_resolution_stage_is_tapped_in_the_same_pass(tmp_path, lib_name, kind):
    loaded, _ = _engine_model(tmp_path, lib_name, kind)
    prefix = "base." if kind.startswith("nested") else ""
    # conv_a (32x32) comes before pool and conv_b (both 16x16, the heatmap layer's size).
    assert loaded.cam_layer == f"{prefix}conv_b"
    assert loaded.feature_layout.segments == ((PENULTIMATE, 8), (f"{prefix}conv_a", 6))
    x = loaded.preprocess([np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)] * 2)
    probs, features = loaded.predict_prepared(x, with_features=True)
    keras_model = loaded.keras_model
    inner = keras_model.get_layer("base") if kind.startswith("nested") else keras_model
    conv_a = inner.get_layer("conv_a")(x).numpy()
    conv_b = inner.get_layer("conv_b")(inner.get_layer("pool")(conv_a)).numpy()
    np.testing.assert_allclose(features, np.concatenate([conv_b.mean(axis=(1, 2)), conv_a.mean(axis=(1, 2))], 1),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(probs, np.asarray(keras_model(x)), rtol=1e-4, atol=1e-6)
    _, _, _, explained = loaded.explain_prepared(x, with_features=True)
    np.testing.assert_allclose(explained, features, rtol=1e-4, atol=1e-6)


def test_a_model_without_a_larger_earlier_map_gets_no_tap(tmp_path):
    lib = keras_lib("keras")
    inp = lib.Input((16, 16, 3))
    x = lib.layers.Conv2D(4, 3, padding="same", activation="relu", name="only")(inp)
    x = lib.layers.GlobalAveragePooling2D()(x)
    out = lib.layers.Dense(3, activation="softmax")(x)
    loaded = dermascan.load_model(save_model(lib.Model(inp, out), tmp_path / "m.keras"), labels=["a", "b", "c"],
                                  preprocessing="unit")
    assert loaded.feature_layout.segments == ((PENULTIMATE, 4),)


def _fit_multilayer(tmp_path, loaded):
    rng = np.random.default_rng(0)
    images = [rng.integers(40, 220, (32, 32, 3), dtype=np.uint8) for _ in range(40)]
    features = loaded.predict_prepared(loaded.preprocess(images), with_features=True, calibrated=False)[1]
    stats, threshold, summary = fit_gate(features[:30], rng.integers(0, 3, 30), features[30:],
                                         layout=loaded.feature_layout, n_components=4)
    card_path = tmp_path / "m.card.json"
    card_path.write_text(json.dumps({"labels": [f"c{i}" for i in range(7)], "preprocessing": "unit"}))
    write_gate(stats, threshold, summary, read_card(card_path), loaded.path, card_path)
    return stats, threshold, features, card_path


def test_a_format_3_gate_round_trips_through_the_card_and_scores_the_same(tmp_path):
    loaded, _ = _engine_model(tmp_path, "keras", "functional")
    stats, threshold, features, card_path = _fit_multilayer(tmp_path, loaded)
    assert stats.taps == ("conv_a",) and len(stats.scales) == 2
    entry = json.loads(card_path.read_text())["gate"]
    assert entry["layers"] == [PENULTIMATE, "conv_a"] and entry["feature_dim"] == 14
    again = dermascan.load_model(loaded.path, card=card_path)
    assert again.ood_stats.taps == ("conv_a",) and again.ood_threshold == pytest.approx(threshold)
    np.testing.assert_allclose(again.ood_scores(features[:5]), stats.scores(features[:5]), rtol=1e-4)  # float32 file
    # Each layer's score is scaled by its median on the held-out rows, so both count about equally there.
    np.testing.assert_allclose(np.median(stats.segment_scores(features[30:]), axis=0), 1.0, rtol=1e-6)


def test_a_sidecar_naming_a_layer_the_model_lacks_is_refused_with_one_line(tmp_path):
    loaded, _ = _engine_model(tmp_path, "keras", "functional")
    stats, _, _, card_path = _fit_multilayer(tmp_path, loaded)
    GateStats(stats.segments, ("no_such_layer",), stats.scales).save(tmp_path / "m.gate.npz")
    with pytest.raises(CardError) as caught:
        dermascan.load_model(loaded.path, card=card_path)
    assert "no_such_layer" in str(caught.value) and "\n" not in str(caught.value)


def test_a_format_2_sidecar_keeps_scoring_the_penultimate_features_alone(tmp_path):
    loaded, _ = _engine_model(tmp_path, "keras", "functional")
    _, _, features, card_path = _fit_multilayer(tmp_path, loaded)
    one = fit_stats(features[:30, :8], np.zeros(30, int), 4)
    with open(tmp_path / "m.gate.npz", "wb") as fh:
        np.savez(fh, format=np.array("dermascan-gate-2"), feature_norm=np.array("l2"), mean=one.mean,
                 components=one.components, class_means=one.class_means, precision=one.precision,
                 residual_scale=np.array(one.residual_scale))
    old = dermascan.load_model(loaded.path, card=card_path)
    assert old.feature_layout.segments == ((PENULTIMATE, 8),) and old.ood_stats.taps == ()
    x = old.preprocess([np.full((32, 32, 3), 90, np.uint8)])
    got = old.predict_prepared(x, with_features=True)[1]
    assert got.shape == (1, 8)
    np.testing.assert_allclose(old.ood_scores(got), one.scores(got), rtol=1e-6)


def _format_3_arrays(stats: GateStats, path) -> dict:
    stats.save(path)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("damage", ["scales-count", "negative-scale", "nan-scale", "missing-segment",
                                    "extra-array", "empty-tap-name", "taps-not-text", "too-many-segments"])
def test_a_hostile_format_3_sidecar_is_refused_with_one_line(tmp_path, damage):
    rng = np.random.default_rng(1)
    seg = fit_stats(np.abs(rng.normal(size=(20, 5))), rng.integers(0, 2, 20), 2)
    arrays = _format_3_arrays(GateStats((seg, seg), ("conv_a",), (1.0, 2.0)), tmp_path / "good.npz")
    if damage == "scales-count":
        arrays["scales"] = np.array([1.0, 2.0, 3.0])
    elif damage == "negative-scale":
        arrays["scales"] = np.array([1.0, -2.0])
    elif damage == "nan-scale":
        arrays["scales"] = np.array([1.0, np.nan])
    elif damage == "missing-segment":
        del arrays["s1_precision"]
    elif damage == "extra-array":
        arrays["s2_mean"] = np.zeros(5)
    elif damage == "empty-tap-name":
        arrays["taps"] = np.array([""])
    elif damage == "taps-not-text":
        arrays["taps"] = np.array([3.0])
    else:
        arrays["taps"] = np.array([f"l{i}" for i in range(9)])
        arrays["scales"] = np.ones(10)
    with open(tmp_path / "bad.npz", "wb") as fh:
        np.savez(fh, **arrays)
    assert load_stats(tmp_path / "good.npz").feature_dim == 10
    with pytest.raises(CardError) as caught:
        load_stats(tmp_path / "bad.npz")
    assert "bad.npz was refused" in str(caught.value) and "\n" not in str(caught.value)


def test_an_image_far_from_training_in_one_layer_only_is_flagged():
    # Two layers of features: the OOD rows look typical in the first and not in the second, as a page of text did
    # in a fine-tuned model's last layer (TRAINING_LOG run 7).
    rng = np.random.default_rng(2)
    first, second = rng.normal(size=(400, 6)) + 3, rng.normal(size=(400, 4)) + 3
    train = np.concatenate([first, second], axis=1)
    layout = FeatureLayout(((PENULTIMATE, 6), ("early", 4)))
    stats, threshold, _ = fit_gate(train[:300], np.zeros(300, int), train[300:], layout=layout, n_components=3)
    ood = np.concatenate([rng.normal(size=(50, 6)) + 3, -np.abs(rng.normal(size=(50, 4))) * 3], axis=1)
    only_first, _, _ = fit_gate(train[:300, :6], np.zeros(300, int), train[300:, :6], n_components=3)
    first_threshold = np.percentile(only_first.scores(train[300:, :6]), 97)
    assert np.mean(only_first.scores(ood[:, :6]) > first_threshold) < 0.2  # the last layer alone misses them
    assert np.mean(stats.scores(ood) > threshold) > 0.9
    assert np.mean(stats.scores(train[300:]) > threshold) == pytest.approx(0.03, abs=0.011)
