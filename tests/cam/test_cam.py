"""The compiled pass: agreement with Keras and an eager reference, localisation, tracing."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import evidence_model, keras_lib, save_model, tiny_cnn

import dermascan
from dermascan._tf import tf


def eager_gradcam_reference(keras_model, layer_name: str, x: np.ndarray, class_index: int) -> np.ndarray:
    """The textbook recipe, run eagerly: a linear-output clone, a gradient model, a GradientTape."""
    keras = keras_lib("keras")
    linear = keras.models.clone_model(keras_model)
    linear.set_weights(keras_model.get_weights())
    linear.layers[-1].activation = keras.activations.linear
    grad_model = keras.Model(linear.inputs[0], [linear.get_layer(layer_name).output, linear.outputs[0]])
    with tf.GradientTape() as tape:
        fmap, logits = grad_model(x, training=False)
        score = logits[:, class_index]
    grads = tape.gradient(score, fmap)
    weights = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.reduce_sum(fmap * weights[:, None, None, :], axis=-1)).numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    keras_model = tiny_cnn(keras_lib("keras"), "functional", seed=3)
    path = save_model(keras_model, tmp_path_factory.mktemp("cam") / "tiny.keras")
    return keras_model, dermascan.load_model(path, preprocessing="unit")


def test_probabilities_match_model_predict(tiny, rgb_images):
    keras_model, model = tiny
    x = model.preprocess(rgb_images)
    expected = keras_model.predict(x, verbose=0)
    probs, _, _ = model.explain_prepared(x, calibrated=False)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(model.predict(rgb_images, calibrated=False), expected, atol=1e-5)


@pytest.mark.parametrize("class_index", [None, 2])
def test_heatmap_matches_eager_gradient_tape(tiny, rgb_images, class_index):
    keras_model, model = tiny
    x = model.preprocess(rgb_images)
    probs, cams, chosen = model.explain_prepared(x, None if class_index is None else [class_index] * len(x))
    for i in range(len(x)):
        expected_class = int(np.argmax(probs[i])) if class_index is None else class_index
        assert chosen[i] == expected_class
        reference = eager_gradcam_reference(keras_model, "conv_b", x[i : i + 1], expected_class)[0]
        np.testing.assert_allclose(cams[i], reference, atol=1e-4)


def assert_traced_once(model, images, class_label: str) -> None:
    """Batches of several sizes, a chosen class and plain predictions: one trace of each function."""
    for n in (1, 3, 4, 2):
        model.analyze_many(images[:n])
        model.predict(images[:n])
    model.analyze(images[0], class_label=class_label)
    assert model._cam._explain.experimental_get_tracing_count() == 1
    assert model._cam._predict.experimental_get_tracing_count() == 1


def test_traced_once_for_any_batch_size_and_option(tiny, rgb_images):
    _, model = tiny
    assert_traced_once(model, rgb_images, "mel")


def test_temperature_softens_probabilities_without_changing_ranking(tmp_path, rgb_images):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", seed=5), tmp_path / "t.keras")
    sharp = dermascan.load_model(path, preprocessing="unit")
    soft = dermascan.load_model(path, preprocessing="unit", temperature=3.0)
    p1, p3 = sharp.predict(rgb_images, calibrated=True), soft.predict(rgb_images, calibrated=True)
    assert (np.argmax(p1, axis=1) == np.argmax(p3, axis=1)).all()
    assert (p3.max(axis=1) <= p1.max(axis=1) + 1e-7).all()
    np.testing.assert_allclose(soft.predict(rgb_images, calibrated=False), p1, atol=1e-6)


@pytest.mark.parametrize(("y0", "x0"), [(0, 0), (20, 4), (8, 22)])
def test_heatmap_peaks_where_the_class_evidence_is(tmp_path, y0, x0):
    path = save_model(evidence_model(), tmp_path / "evidence.keras")
    model = dermascan.load_model(path, labels=["red", "other"], malignant_labels=["red"], preprocessing="unit")
    assert model.cam_layer == "evidence"
    image = np.full((32, 32, 3), 40, np.uint8)
    image[..., 0] = 0
    image[y0 : y0 + 8, x0 : x0 + 8, 0] = 255
    a = model.analyze(image)
    assert a.top_label == "red"
    peak_y, peak_x = np.unravel_index(np.argmax(a.heatmap), a.heatmap.shape)
    assert y0 // 2 <= peak_y < (y0 + 8) // 2 and x0 // 2 <= peak_x < (x0 + 8) // 2
    outside = np.ones_like(a.heatmap, bool)
    outside[y0 // 2 : (y0 + 8) // 2, x0 // 2 : (x0 + 8) // 2] = False
    assert a.heatmap[outside].max() == 0.0


def test_no_positive_evidence_gives_an_all_zero_map(tmp_path):
    path = save_model(evidence_model(), tmp_path / "evidence.keras")
    model = dermascan.load_model(path, labels=["red", "other"], malignant_labels=["red"], preprocessing="unit")
    image = np.zeros((32, 32, 3), np.uint8)
    image[4:12, 4:12, 0] = 255
    a = model.analyze(image, class_label="other")
    assert a.explained_label == "other"
    assert np.isfinite(a.heatmap).all() and a.heatmap.max() == 0.0
    assert "no positive evidence" in a.explanation
    blank = model.analyze(np.zeros((32, 32, 3), np.uint8))  # all-zero gradients and activations
    assert np.isfinite(blank.heatmap).all() and blank.heatmap.max() == 0.0


def test_shared_and_copied_inputs_give_the_same_results_and_the_input_is_left_intact(tiny, rgb_images):
    from dermascan.inference.aligned import can_share, empty_aligned

    _, model = tiny
    shared = model.preprocess(rgb_images)
    assert can_share(shared)
    before = shared.copy()
    raw = empty_aligned((shared.size + 1,))  # the same pixels 4 bytes off the boundary: copied, never shared
    copied = raw[1:].reshape(shared.shape)
    copied[...] = shared
    assert not can_share(copied)
    for a, b in zip(model.explain_prepared(shared, calibrated=False), model.explain_prepared(copied, calibrated=False)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict_prepared(shared), model.predict_prepared(copied))
    np.testing.assert_array_equal(shared, before)  # TensorFlow never wrote into the caller's memory


def test_a_shareable_batch_is_handed_over_without_a_copy():
    from dermascan.cam.base import _as_float_tensor
    from dermascan.inference.aligned import empty_aligned

    x = empty_aligned((2, 4, 4, 3))
    x[...] = 1.0
    tensor = _as_float_tensor(x)
    x[0, 0, 0, 0] = 5.0  # visible through the tensor only if the memory is shared
    assert float(tensor[0, 0, 0, 0]) == 5.0
    y = np.ones((2, 4, 4, 3), np.float64)
    copied = _as_float_tensor(y)
    y[0, 0, 0, 0] = 5.0
    assert copied.dtype == tf.float32 and float(copied[0, 0, 0, 0]) == 1.0
