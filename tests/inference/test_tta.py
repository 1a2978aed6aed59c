"""Test-time augmentation on a tiny real Keras model: identity TTA is plain prediction, symmetric images
are unchanged by flips, and all views go through the model in one compiled call."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import ham_sample, needs_shared
from tiny_models import keras_lib, load_tiny_lesion_model, png_bytes, save_model

import dermascan
from dermascan.errors import CardError
from dermascan.inference.batch import bytes_sources, run_batch
from dermascan.inference.views import DEFAULT_TTA, TRANSFORMS, augment
from dermascan.intake.images import read_image_file


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The shared tiny real CNN, loaded through the engine."""
    return load_tiny_lesion_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def images():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, size=(80, 96, 3), dtype=np.uint8) for _ in range(3)]


def symmetric(image: np.ndarray) -> np.ndarray:
    """An image equal to its own left-right and top-bottom mirror (and so to its 180° turn)."""
    h, w = image.shape[:2]
    top_left = image[: h // 2, : w // 2]
    top = np.concatenate([top_left, top_left[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([top, top[::-1]], axis=0))


def count_compiled_calls(model, monkeypatch) -> list[tuple[str, int]]:
    """Record (pass, batch size) of every compiled call of the model's card CAM pass from now on."""
    calls = []
    cam = model.cam()
    for name in ("predict_with_features", "explain_with_features"):
        original = getattr(cam, name)
        monkeypatch.setattr(cam, name, lambda x, *a, _o=original, _n=name: calls.append((_n, len(x))) or _o(x, *a))
    return calls


def test_identity_only_equals_plain_prediction(model, images):
    assert np.allclose(model.predict(images, tta=["identity"]), model.predict(images), atol=1e-6)
    [plain], [tta] = model.analyze_many(images[:1]), model.analyze_many(images[:1], tta=["identity"])
    assert np.allclose(tta.probabilities, plain.probabilities, atol=1e-6)
    assert tta.top_label == plain.top_label and tta.explained_label == plain.explained_label
    assert np.allclose(tta.heatmap, plain.heatmap, atol=1e-5)
    assert plain.tta == () and tta.tta == ("identity",) and tta.to_dict()["tta"] == ["identity"]


def test_flips_of_a_symmetric_image_change_nothing(model, images):
    image = symmetric(images[0][:64, :64])
    x = model.preprocess([image])
    plain = model.predict_prepared(x)
    assert np.allclose(model.predict_prepared(x, views=["identity", "hflip", "vflip", "rot180"]), plain, atol=1e-6)


@needs_shared
def test_tta_on_real_images_is_one_call_and_a_proper_average(model, monkeypatch):
    real = [read_image_file(p) for p in ham_sample(3)]
    x = model.preprocess(real)
    per_view = [model.predict_prepared(augment(x[i : i + 1], DEFAULT_TTA)) for i in range(len(real))]
    calls = count_compiled_calls(model, monkeypatch)
    probs = model.predict_prepared(x, views=DEFAULT_TTA)
    assert calls == [("predict_with_features", len(real) * len(DEFAULT_TTA))]  # every view of every image, once
    assert np.allclose(probs, [v.mean(axis=0) for v in per_view], atol=1e-6)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@needs_shared
def test_analyze_with_tta_gives_a_heatmap_in_the_original_orientation(model):
    image = read_image_file(ham_sample(1)[0])
    [a] = model.analyze_many([image], tta=["identity", "hflip", "rot90"], names=["x.jpg"], hashes=["0" * 64])
    assert a.heatmap.shape == (64, 64) and a.heatmap.min() >= 0.0 and a.heatmap.max() <= 1.0
    assert a.sha256 == "0" * 64 and a.name == "x.jpg" and a.overlay(0.5).shape == image.shape


def test_the_heatmap_of_a_mirrored_view_is_mirrored_back(model, images):
    image = images[0][:64, :64].copy()
    mirrored = np.ascontiguousarray(image[:, ::-1])
    # The mirrored view of the mirrored image is the image: its map, mirrored back, is the image's map mirrored.
    [direct] = model.analyze_many([image], tta=())
    [through] = model.analyze_many([mirrored], tta=["hflip"])
    assert np.allclose(through.probabilities, direct.probabilities, atol=1e-6)
    assert np.allclose(through.heatmap, direct.heatmap[:, ::-1], atol=1e-5)


# -- TTA declared by the model card: the engine applies it everywhere --------------------------------------------

CARD_VIEWS = ["identity", "hflip", "rot90"]


@pytest.fixture(scope="module")
def tta_model(tmp_path_factory):
    """The same tiny CNN with ``"tta": CARD_VIEWS`` in its card."""
    return load_tiny_lesion_model(tmp_path_factory.mktemp("tta-model"), card={"tta": CARD_VIEWS})


def test_a_card_tta_is_the_average_of_separate_passes_in_one_compiled_call(tta_model, images, monkeypatch):
    squares = [im[:64, :64] for im in images]
    x = tta_model.preprocess(squares)
    separate = np.mean([tta_model.predict_prepared(np.stack([TRANSFORMS[v].forward(xi) for xi in x]))
                        for v in CARD_VIEWS], axis=0)
    calls = count_compiled_calls(tta_model, monkeypatch)
    analyses = tta_model.analyze_many(squares)
    assert calls == [("explain_with_features", len(squares) * len(CARD_VIEWS))]
    assert np.allclose([a.probabilities for a in analyses], separate, atol=1e-6)
    assert not np.allclose(separate, tta_model.predict(squares, tta=()), atol=1e-4)  # the views do differ here
    assert np.allclose(tta_model.predict(squares), separate, atol=1e-6)
    for a in analyses:
        assert a.tta == tuple(CARD_VIEWS) and a.to_dict()["tta"] == CARD_VIEWS
        assert a.heatmap.shape == (64, 64) and a.top_label == a.labels[int(np.argmax(a.probabilities))]
    assert tta_model.describe()["tta"] == CARD_VIEWS


def test_a_card_tta_explains_a_chosen_class_in_every_view(tta_model, images):
    [a] = tta_model.analyze_many([images[0][:64, :64]], class_label="vasc")
    assert a.explained_label == "vasc" and a.tta == tuple(CARD_VIEWS)


def test_a_card_tta_reaches_the_batch_path(tta_model, model, images):
    blobs = [("a.png", png_bytes(images[0][:64, :64])), ("b.png", png_bytes(images[1][:64, :64]))]
    [a, b] = [item.analysis for item in run_batch(tta_model, bytes_sources(blobs))]
    expected = tta_model.analyze_many([images[0][:64, :64], images[1][:64, :64]])
    assert a.tta == b.tta == tuple(CARD_VIEWS)
    assert np.allclose([a.probabilities, b.probabilities], [e.probabilities for e in expected], atol=1e-6)
    [plain] = [item.analysis for item in run_batch(model, bytes_sources(blobs[:1]))]
    assert plain.tta == ()


def test_a_card_tta_that_the_input_cannot_take_is_refused_at_load(tmp_path):
    keras = keras_lib("keras")
    inp = keras.Input((32, 48, 3))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    path = save_model(keras.Model(inp, out), tmp_path / "wide.keras")
    with pytest.raises(CardError, match="tta cannot be used.*rot90") as info:
        dermascan.load_model(path, preprocessing="unit", tta=["identity", "rot90"])
    assert "\n" not in str(info.value)
    assert dermascan.load_model(path, preprocessing="unit", tta=["identity", "hflip"]).card.tta == ["identity", "hflip"]
