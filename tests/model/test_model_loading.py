"""Loading: tiny models in every format and layout, the real user files, cards and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shared_data import HAM_LABELS, USER_MODELS
from tiny_models import keras_lib, save_model, tiny_cnn

import dermascan
from dermascan.errors import CardError, ModelLoadError
from dermascan.intake.images import read_image_file
from dermascan.model.card import ModelCard, write_card

LAYOUTS = [
    ("keras", "functional", ".keras"),
    ("keras", "sequential", ".keras"),
    ("keras", "nested-seq", ".keras"),
    ("keras", "nested-func", ".keras"),
    ("keras", "functional", ".h5"),
    ("keras", "sequential", ".h5"),
    ("tf_keras", "functional", ".h5"),
    ("tf_keras", "sequential", ".h5"),
    ("tf_keras", "nested-seq", ".h5"),
    ("tf_keras", "nested-func", ".h5"),
]


@pytest.mark.parametrize(("lib", "kind", "suffix"), LAYOUTS, ids=["-".join(p) for p in LAYOUTS])
def test_tiny_models_load_predict_and_explain(tmp_path, rgb_images, lib, kind, suffix):
    keras_model = tiny_cnn(keras_lib(lib), kind)
    path = save_model(keras_model, tmp_path / f"tiny{suffix}")
    expected = keras_model.predict(np.stack([np.resize(im, (32, 32, 3)) for im in rgb_images[:1]]) / 255.0, verbose=0)
    model = dermascan.load_model(path, preprocessing="unit")
    assert model.labels == HAM_LABELS
    assert any("Labels assumed" in w for w in model.warnings)
    assert model.cam_layer.endswith("conv_b")
    assert model.cam_layer == ("base.conv_b" if kind.startswith("nested") else "conv_b")
    analyses = model.analyze_many(rgb_images)
    for a, image in zip(analyses, rgb_images):
        assert a.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert a.heatmap.shape == (16, 16)
        assert a.heatmap.min() >= 0.0 and a.heatmap.max() <= 1.0
        assert a.overlay(0.5).shape == image.shape
    # Same weights through our loader as through the library that saved them.
    ours = model.predict([np.resize(rgb_images[0], (32, 32, 3))], calibrated=False)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_keras2_files_fall_back_to_tf_keras(tmp_path):
    path = save_model(tiny_cnn(keras_lib("tf_keras"), "nested-seq"), tmp_path / "legacy.h5")
    model = dermascan.load_model(path, preprocessing="unit")
    assert model.loader in ("keras", "tf_keras")
    assert model.describe()["loader"] == model.loader


USER_FILES = {
    # folder: (labels in output order, preprocessing, expected loader)
    "cnn32_keras2.9": (HAM_LABELS, "unit", "keras"),
    "cnn28_keras2.12": (["akiec", "bcc", "bkl", "df", "nv", "vasc", "mel"], "raw", "keras"),
    "keras2.15_mobilenetv2_nested": (HAM_LABELS, "tf", "tf_keras"),
    "keras2.15_efficientnetb0": (HAM_LABELS, "raw", "tf_keras"),
}


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/data/user-models is not present")
@pytest.mark.parametrize("folder", sorted(USER_FILES))
def test_user_models_load_predict_and_explain(folder, ham_paths):
    labels, preprocessing, loader = USER_FILES[folder]
    path = next((USER_MODELS / folder).glob("*.h5"))
    model = dermascan.load_model(path, labels=labels, preprocessing=preprocessing)
    assert model.loader == loader
    assert model.labels == labels
    images = [read_image_file(p) for p in ham_paths[:4]]
    probs = model.predict(images)
    assert probs.shape == (4, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for a in model.analyze_many(images):
        assert a.heatmap is not None and a.heatmap.ndim == 2 and min(a.heatmap.shape) >= 2
        assert np.isfinite(a.heatmap).all() and a.heatmap.max() <= 1.0
    if folder == "keras2.15_efficientnetb0":
        assert model.describe()["rescales_internally"]
        assert not any("Double scaling" in w for w in model.warnings)
        doubled = dermascan.load_model(path, preprocessing="unit")
        assert any("Double scaling" in w for w in doubled.warnings)
    if folder == "keras2.15_mobilenetv2_nested":
        assert model.cam_layer.endswith(".out_relu")


def test_card_sidecar_is_read_and_overrides_win(tmp_path):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", n_classes=3), tmp_path / "three.keras")
    write_card(ModelCard(labels=["a", "b", "c"], malignant_labels=["c"], preprocessing="tf", version="2.1",
                         thresholds={"medium": 0.1, "high": 0.9}), tmp_path / "three.card.json")
    model = dermascan.load_model(path)
    assert model.labels == ["a", "b", "c"] and model.version == "2.1" and model.card.preprocessing == "tf"
    assert not any("assumed" in w for w in model.warnings)
    overridden = dermascan.load_model(path, preprocessing="unit", malignant_labels=["a"])
    assert overridden.card.preprocessing == "unit" and overridden.card.malignant_labels == ["a"]


def test_non_seven_outputs_without_labels_is_a_clear_error(tmp_path):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", n_classes=3), tmp_path / "three.keras")
    with pytest.raises(CardError, match="3 outputs.*labels"):
        dermascan.load_model(path)


def test_label_count_must_match_outputs(tmp_path):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional"), tmp_path / "m.keras")
    with pytest.raises(CardError, match="7 outputs but 3 labels"):
        dermascan.load_model(path, labels=["a", "b", "c"])


def test_logit_outputs_get_softmax_and_a_warning(tmp_path, rgb_images):
    keras = keras_lib("keras")
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(7)(x)  # no softmax: logits
    keras_model = keras.Model(inp, out)
    path = save_model(keras_model, tmp_path / "logits.keras")
    model = dermascan.load_model(path, preprocessing="unit")
    assert model.output_kind == "logits"
    assert any("softmax was applied" in w for w in model.warnings)
    x = model.preprocess(rgb_images[:2])
    expected = keras.ops.softmax(keras_model.predict(x, verbose=0)).numpy()
    np.testing.assert_allclose(model.predict(rgb_images[:2]), expected, atol=1e-5)


def test_model_without_spatial_layer_predicts_without_heatmap(tmp_path, rgb_images):
    keras = keras_lib("keras")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(7, activation="softmax")(x)
    path = save_model(keras.Model(inp, out), tmp_path / "mlp.keras")
    model = dermascan.load_model(path, preprocessing="unit")
    a = model.analyze(rgb_images[0])
    assert a.heatmap is None and model.cam_layer is None
    assert "No heatmap" in a.explanation
    assert any("no layer with a spatial" in w for w in model.warnings)
    assert a.overlay(0.7) is a.image


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), (b"", "not a Keras model"), (b"hello, not a model", "not a Keras model"),
     (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "could not be loaded"), (b"PK\x03\x04 broken zip", "not a Keras model")],
)
def test_bad_model_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "broken.h5"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as info:
        dermascan.load_model(path)
    assert "\n" not in str(info.value) and str(tmp_path) not in str(info.value)


def test_truncated_keras_archive_is_a_load_error(tmp_path):
    good = save_model(tiny_cnn(keras_lib("keras"), "functional"), tmp_path / "good.keras")
    cut = tmp_path / "cut.keras"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelLoadError):
        dermascan.load_model(cut)


def test_bad_card_is_a_card_error(tmp_path):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional"), tmp_path / "m.keras")
    (tmp_path / "m.card.json").write_text(json.dumps({"labels": HAM_LABELS, "preprocessing": "magic"}))
    with pytest.raises(CardError, match="Unknown preprocessing 'magic'"):
        dermascan.load_model(path)
    (tmp_path / "m.card.json").write_text("{not json")
    with pytest.raises(CardError, match="could not be read"):
        dermascan.load_model(path)


def test_default_model_missing_says_how_to_pass_one(monkeypatch, tmp_path):
    from dermascan import config as defaults

    monkeypatch.delenv("DERMASCAN_MODEL", raising=False)
    monkeypatch.setattr(defaults, "BUNDLED_MODEL", tmp_path / "absent.keras")
    with pytest.raises(ModelLoadError, match="No default model is installed.*--model"):
        defaults.resolve_model_path(None)
