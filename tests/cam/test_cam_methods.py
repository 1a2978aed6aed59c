"""Every CAM method: an eager reference, localisation, every model layout, the NaN rule, tracing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shared_data import HAM_LABELS, USER_MODELS
from test_cam import assert_traced_once
from tiny_models import evidence_model, keras_lib, overflow_on_white_model, save_model, tiny_cnn

import dermascan
from dermascan._tf import tf
from dermascan.cam import METHOD_NAMES, METHODS
from dermascan.cam.scorecam import MAX_MASKS
from dermascan.cli import main
from dermascan.errors import CardError
from dermascan.model.card import ModelCard
from dermascan.model.lesion import LesionModel
from dermascan.model.loading import load_keras_file

# More channels at the target layer than Score-CAM may use, so its top-k bound is exercised.
WIDE = MAX_MASKS + 8


def wide_cnn(seed: int = 11):
    """A tiny functional CNN whose last conv layer ``wide`` has ``WIDE`` channels (8x8)."""
    keras = keras_lib("keras")
    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D(4)(x)
    x = keras.layers.Conv2D(WIDE, 3, padding="same", activation="relu", name="wide")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(5, activation="softmax", name="probs")(x))


LABELS = ["a", "b", "c", "d", "e"]


# -- the eager reference: textbook recipes on a linear clone, one image at a time ------------------
def _linear_clone(keras_model):
    keras = keras_lib("keras")
    linear = keras.models.clone_model(keras_model)
    linear.set_weights(keras_model.get_weights())
    linear.layers[-1].activation = keras.activations.linear
    return linear


def _fmap_and_grads(linear, layer: str, x: np.ndarray, class_index: int):
    keras = keras_lib("keras")
    model = keras.Model(linear.inputs[0], [linear.get_layer(layer).output, linear.outputs[0]])
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        fmap, logits = model(x, training=False)
        score = logits[:, class_index]
    return fmap.numpy()[0].astype(np.float64), tape.gradient(score, fmap).numpy()[0].astype(np.float64)


def _channel_sum(a, w):
    return np.einsum("hwk,k->hw", a, w)


def ref_gradcam(a, g, **_):
    return _channel_sum(a, g.mean(axis=(0, 1)))


def ref_gradcam_pp(a, g, **_):
    g2, g3 = g**2, g**3
    alpha = g2 / (2 * g2 + a.sum(axis=(0, 1)) * g3 + 1e-6)
    alpha = np.where(g != 0, alpha, 0.0)
    return _channel_sum(a, (alpha * np.maximum(g, 0)).sum(axis=(0, 1)))


def ref_hirescam(a, g, **_):
    return (a * g).sum(axis=-1)


def ref_xgradcam(a, g, **_):
    return _channel_sum(a, (g * a).sum(axis=(0, 1)) / (a.sum(axis=(0, 1)) + 1e-7))


def ref_layercam(a, g, **_):
    return (np.maximum(g, 0) * a).sum(axis=-1)


def ref_eigencam(a, g, **_):
    flat = a.reshape(-1, a.shape[-1])
    centred = flat - flat.mean(axis=0)
    projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    if projection @ flat.mean(axis=1) < 0:
        projection = -projection
    return projection.reshape(a.shape[:2])


def ref_scorecam(a, g, *, linear, x, class_index):
    top = np.argsort(-a.mean(axis=(0, 1)), kind="stable")[: min(MAX_MASKS, a.shape[-1])]
    scores = []
    for k in top:  # one masked image at a time, eagerly
        up = tf.image.resize(a[None, :, :, k : k + 1].astype(np.float32), x.shape[1:3]).numpy()[0, :, :, 0]
        span = up.max() - up.min()
        mask = (up - up.min()) / span if span > 0 else np.zeros_like(up)
        scores.append(float(linear(x * mask[None, :, :, None], training=False)[0, class_index]))
    weights = np.exp(np.array(scores) - max(scores))
    return _channel_sum(a[..., top], weights / weights.sum())


REFERENCES = {"gradcam": ref_gradcam, "gradcam++": ref_gradcam_pp, "hirescam": ref_hirescam,
              "xgradcam": ref_xgradcam, "layercam": ref_layercam, "eigencam": ref_eigencam, "scorecam": ref_scorecam}


def normalised(cam: np.ndarray) -> np.ndarray:
    cam = np.maximum(cam, 0)
    return cam / cam.max() if cam.max() > 0 else cam


def test_every_registered_method_has_a_reference_and_a_class():
    assert set(REFERENCES) == set(METHOD_NAMES) == set(METHODS)
    assert all(isinstance(name, str) for name in METHOD_NAMES)


# -- one tiny model, every method ------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    keras_model = wide_cnn()
    path = save_model(keras_model, tmp_path_factory.mktemp("methods") / "wide.keras")
    return keras_model, path, {}


def _wide_model(wide, method: str) -> LesionModel:
    _, path, loaded = wide
    if method not in loaded:
        loaded[method] = dermascan.load_model(path, labels=LABELS, preprocessing="unit", cam_method=method)
    return loaded[method]


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("class_index", [None, 3])
def test_each_method_matches_its_eager_reference(wide, rgb_images, method, class_index):
    keras_model, _, _ = wide
    model = _wide_model(wide, method)
    assert model.card.cam_method == method and isinstance(model._cam, METHODS[method])
    linear = _linear_clone(keras_model)
    x = model.preprocess(rgb_images)
    _, cams, chosen = model.explain_prepared(x, None if class_index is None else [class_index] * len(x))
    assert cams.shape == (len(x), 8, 8)
    for i in range(len(x)):
        c = int(chosen[i])
        a, g = _fmap_and_grads(linear, "wide", x[i : i + 1], c)
        reference = normalised(REFERENCES[method](a, g, linear=linear, x=x[i : i + 1], class_index=c))
        assert reference.max() > 0  # a meaningful comparison, not two all-zero maps
        np.testing.assert_allclose(cams[i], reference, atol=1e-4)


def test_score_cam_uses_at_most_max_masks_channels(wide, rgb_images):
    model = _wide_model(wide, "scorecam")
    keras_model = wide[0]
    x = model.preprocess(rgb_images[:1])
    _, cams, chosen = model.explain_prepared(x)
    a, _ = _fmap_and_grads(_linear_clone(keras_model), "wide", x, int(chosen[0]))
    assert a.shape[-1] > MAX_MASKS
    # The channels outside the top MAX_MASKS by mean activation carry no weight: the map lies in the
    # span of the top ones, so least squares on them alone reproduces it.
    top = np.argsort(-a.mean(axis=(0, 1)), kind="stable")[:MAX_MASKS]
    basis = a[..., top].reshape(-1, MAX_MASKS)
    coef = np.linalg.lstsq(basis, cams[0].reshape(-1), rcond=None)[0]
    positive = cams[0].reshape(-1) > 0
    np.testing.assert_allclose((basis @ coef)[positive], cams[0].reshape(-1)[positive], atol=1e-3)


def test_eigen_cam_points_where_the_layer_is_active_whatever_the_singular_vector_sign(wide):
    cam = _wide_model(wide, "eigencam")._cam
    rng = np.random.default_rng(0)
    fmaps = rng.normal(size=(24, 6, 5, 4)).astype(np.float32) + rng.normal(size=(24, 1, 1, 4)).astype(np.float32)
    for fmap in (fmaps, -fmaps):  # the SVD's sign is arbitrary, so both orientations come up
        raw = cam.raw_map(None, tf.constant(fmap), None, None).numpy()
        agreement = np.einsum("nhw,nhw->n", raw, fmap.mean(axis=-1))
        assert (agreement >= 0).all()
        for i in range(3):  # and it is the first principal component
            reference = ref_eigencam(fmap[i].astype(np.float64), None)
            np.testing.assert_allclose(raw[i], reference, atol=1e-4)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_each_method_is_traced_once_for_any_batch_size_and_option(wide, rgb_images, method):
    assert_traced_once(_wide_model(wide, method), rgb_images, "c")


# -- localisation ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evidence_path(tmp_path_factory):
    return save_model(evidence_model(), tmp_path_factory.mktemp("evidence") / "evidence.keras")


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_each_method_peaks_where_the_class_evidence_is(evidence_path, method):
    model = dermascan.load_model(evidence_path, labels=["red", "other"], malignant_labels=["red"],
                                 preprocessing="unit", cam_method=method)
    for y0, x0 in [(0, 0), (20, 4), (8, 22)]:
        image = np.full((32, 32, 3), 40, np.uint8)
        image[..., 0] = 0
        image[y0 : y0 + 8, x0 : x0 + 8, 0] = 255
        a = model.analyze(image)
        assert a.top_label == "red"
        inside = np.zeros_like(a.heatmap, bool)
        inside[y0 // 2 : (y0 + 8) // 2, x0 // 2 : (x0 + 8) // 2] = True
        peak = np.unravel_index(np.argmax(a.heatmap), a.heatmap.shape)
        assert inside[peak], (method, y0, x0)
        assert a.heatmap.max() == 1.0 and a.heatmap[~inside].max() == 0.0


# -- every layout the engine loads -----------------------------------------------------------------
# On the 224 px shared models each method costs a build and trace of a full MobileNet / EfficientNet graph
# (5-12 s here), so there only the paths Grad-CAM does not share run: element-wise maps, the SVD, the masked
# forward passes. Grad-CAM itself runs on them in tests/model/test_model_loading.py; every method runs on
# the small shared models and on every layout above.
CODE_PATHS = ("hirescam", "eigencam", "scorecam")


def _methods_on(keras_model, loader: str, images, card: ModelCard, methods=METHOD_NAMES) -> dict[str, np.ndarray]:
    """Heatmaps of ``images`` per method, reusing one loaded Keras model."""
    maps = {}
    for method in methods:
        model = LesionModel(keras_model, card, loader=loader, path=None, card_file=None, cam_method=method)
        maps[method] = np.stack([a.heatmap for a in model.analyze_many(images)])
        assert model._cam._explain.experimental_get_tracing_count() == 1
    return maps


def _assert_usable(maps: dict[str, np.ndarray], shape: tuple[int, int]):
    for method, heatmaps in maps.items():
        assert heatmaps.shape[1:] == shape, method
        assert np.isfinite(heatmaps).all() and heatmaps.min() >= 0.0, method
        # Normalised to a peak of 1, or all zero where a method finds no positive evidence.
        assert set(heatmaps.max(axis=(1, 2)).tolist()) <= {0.0, 1.0}, method
    assert all(heatmaps.max() == 1.0 for method, heatmaps in maps.items() if method in ("gradcam", "eigencam"))


@pytest.mark.parametrize(("lib", "kind", "suffix"), [("keras", "sequential", ".keras"),
                                                     ("keras", "nested-seq", ".keras"),
                                                     ("tf_keras", "nested-func", ".h5")])
def test_every_method_on_sequential_nested_and_legacy_h5_models(tmp_path, rgb_images, lib, kind, suffix):
    path = save_model(tiny_cnn(keras_lib(lib), kind, seed=4), tmp_path / f"m{suffix}")
    keras_model, loader = load_keras_file(path)
    assert loader == ("tf_keras" if lib == "tf_keras" else "keras")
    maps = _methods_on(keras_model, loader, rgb_images, ModelCard(labels=HAM_LABELS, preprocessing="unit"))
    _assert_usable(maps, (16, 16))


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/data/user-models is not present")
@pytest.mark.parametrize("folder", sorted(p.name for p in USER_MODELS.glob("*") if list(p.glob("*.h5")))
                         if USER_MODELS.is_dir() else [])
def test_every_method_on_each_shared_user_model(folder, ham_paths):
    keras_model, loader = load_keras_file(next((USER_MODELS / folder).glob("*.h5")))
    images = [dermascan.read_image_file(p) for p in ham_paths[:2]]
    first = LesionModel(keras_model, ModelCard(), loader=loader, path=None, card_file=None)  # the card's defaults
    methods = CODE_PATHS if max(first.input_size) > 64 else METHOD_NAMES
    maps = _methods_on(keras_model, loader, images, first.card, methods)
    shape = maps[methods[0]].shape[1:]
    _assert_usable(maps, shape)
    assert min(shape) >= 2


# -- the NaN rule -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_each_method_returns_an_all_nan_map_for_non_finite_numbers(tmp_path, method):
    path = save_model(overflow_on_white_model(), tmp_path / "overflow.keras")
    model = dermascan.load_model(path, labels=HAM_LABELS, preprocessing="raw", cam_method=method)
    white, dark = np.full((32, 32, 3), 255, np.uint8), np.full((32, 32, 3), 90, np.uint8)
    _, cams, _ = model.explain_prepared(model.preprocess([white, dark]), calibrated=False)
    assert np.isnan(cams[0]).all()
    assert np.isfinite(cams[1]).all()


# -- the card field and the CLI flag -------------------------------------------------------------
def test_the_card_names_the_method_and_an_argument_overrides_it(tmp_path, rgb_images):
    assert ModelCard().cam_method == "gradcam"
    assert ModelCard.from_dict({"cam_method": "layercam"}).cam_method == "layercam"
    with pytest.raises(CardError, match="Unknown CAM method 'gradcam3'.*scorecam"):
        ModelCard.from_dict({"cam_method": "gradcam3"})
    with pytest.raises(CardError, match="cam_method"):
        ModelCard.from_dict({"cam_method": ["gradcam"]})
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", seed=2), tmp_path / "m.keras")
    (tmp_path / "m.card.json").write_text(json.dumps({"labels": HAM_LABELS, "cam_method": "eigencam"}))
    from_card = dermascan.load_model(path)
    assert isinstance(from_card._cam, METHODS["eigencam"]) and from_card.describe()["cam_method"] == "eigencam"
    overridden = dermascan.load_model(path, cam_method="hirescam")
    assert isinstance(overridden._cam, METHODS["hirescam"]) and overridden.card.cam_method == "hirescam"
    # Eigen-CAM does not depend on the class; HiResCAM does, so the two maps differ somewhere.
    x = from_card.preprocess(rgb_images)
    eigen_a, eigen_b = (from_card.explain_prepared(x, [c] * len(x))[1] for c in (0, 5))
    np.testing.assert_allclose(eigen_a, eigen_b, atol=1e-6)
    hires_a, hires_b = (overridden.explain_prepared(x, [c] * len(x))[1] for c in (0, 5))
    assert not np.allclose(hires_a, hires_b, atol=1e-3)


def test_cli_cam_flag_picks_the_method_and_refuses_unknown_names(tmp_path, capsys):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", seed=2), tmp_path / "m.keras")
    args = ["info", "--model", str(path), "--labels", ",".join(HAM_LABELS)]
    assert main([*args, "--cam", "scorecam"]) == 0
    assert json.loads(capsys.readouterr().out)["cam_method"] == "scorecam"
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["cam_method"] == "gradcam"
    with pytest.raises(SystemExit) as exc:
        main([*args, "--cam", "gradcam3"])
    assert exc.value.code == 2
    assert "invalid choice: 'gradcam3'" in capsys.readouterr().err
