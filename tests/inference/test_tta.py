"""Test-time augmentation on a tiny real Keras model: identity TTA is plain prediction, symmetric images
are unchanged by flips, and all views go through the model in one call."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import ham_sample, needs_shared
from tiny_models import load_tiny_lesion_model

from dermascan.inference.tta import (
    DEFAULT_TTA,
    TRANSFORMS,
    analyze_with_tta,
    augment,
    available_transforms,
    tta_probabilities,
)
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


def test_identity_only_equals_plain_prediction(model, images):
    x = model.preprocess(images)
    assert np.allclose(tta_probabilities(model, x, ["identity"]), model.predict(images), atol=1e-6)
    [plain], [tta] = model.analyze_many(images[:1]), analyze_with_tta(model, images[:1], ["identity"])
    assert np.allclose(tta.probabilities, plain.probabilities, atol=1e-6)
    assert tta.top_label == plain.top_label and tta.explained_label == plain.explained_label
    assert np.allclose(tta.heatmap, plain.heatmap, atol=1e-5)


def test_flips_of_a_symmetric_image_change_nothing(model, images):
    image = symmetric(images[0][:64, :64])
    x = model.preprocess([image])
    plain = model.predict_prepared(x)
    assert np.allclose(tta_probabilities(model, x, ["identity", "hflip", "vflip", "rot180"]), plain, atol=1e-6)


@needs_shared
def test_tta_on_real_images_is_one_call_and_a_proper_average(model, monkeypatch):
    real = [read_image_file(p) for p in ham_sample(3)]
    x = model.preprocess(real)
    per_view = [model.predict_prepared(augment(x[i : i + 1], DEFAULT_TTA)) for i in range(len(real))]
    calls = []
    original = model.predict_prepared
    monkeypatch.setattr(model, "predict_prepared",
                        lambda batch, **kw: calls.append(len(batch)) or original(batch, **kw))
    probs = tta_probabilities(model, x, DEFAULT_TTA)
    assert calls == [len(real) * len(DEFAULT_TTA)]  # every view of every image in one compiled call
    assert np.allclose(probs, [v.mean(axis=0) for v in per_view], atol=1e-6)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@needs_shared
def test_analyze_with_tta_gives_a_heatmap_in_the_original_orientation(model):
    image = read_image_file(ham_sample(1)[0])
    [a] = analyze_with_tta(model, [image], ["identity", "hflip", "rot90"], names=["x.jpg"], hashes=["0" * 64])
    assert a.heatmap.shape == (64, 64) and a.heatmap.min() >= 0.0 and a.heatmap.max() <= 1.0
    assert a.sha256 == "0" * 64 and a.name == "x.jpg" and a.overlay(0.5).shape == image.shape


def test_views_and_their_inverses_round_trip():
    a = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    views = augment(a, list(TRANSFORMS))
    assert views.shape == (2 * len(TRANSFORMS), 4, 4, 3)
    for j, t in enumerate(TRANSFORMS.values()):
        assert np.array_equal(t.inverse(views[j]), a[0])


def test_quarter_turns_are_only_offered_for_square_inputs():
    assert "rot90" in available_transforms((64, 64)) and "rot90" not in available_transforms((64, 48))
    with pytest.raises(ValueError, match="not usable"):
        augment(np.zeros((1, 64, 48, 3), np.float32), ["rot90"])
    with pytest.raises(ValueError, match="at least one"):
        augment(np.zeros((1, 8, 8, 3), np.float32), [])
