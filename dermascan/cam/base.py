"""The compiled pass shared by every CAM method: probabilities and a heatmap together.

One ``tf.function`` runs the forward pass under a gradient tape, reads the class score
(pre-softmax logit, or log-probability when the model only exposes probabilities),
takes its gradient at the target layer and reduces it to a heatmap. The input signature
has a free batch dimension and the temperature and class choice are tensors, so it is
traced once per model, whatever the batch size or options. Most subclasses only say how
gradients become per-channel weights (``channel_weights``), as in pytorch-grad-cam;
methods whose map is not a weighted sum of channels override ``raw_map`` instead, and
gradient-free ones set ``needs_gradients = False``.
"""

from __future__ import annotations

import numpy as np

from .._tf import tf
from ..inference.aligned import can_share

# Probabilities are floored before the log so that a hard 0 gives a finite score.
_PROB_FLOOR = 1e-12


def _as_float_tensor(x: np.ndarray):
    """``x`` as a float32 tensor: sharing its memory when ``can_share(x)`` (no copy), else a copy.

    The engine hands over only batches it made for the call and never writes them again.
    """
    if can_share(x):
        return tf.experimental.dlpack.from_dlpack(x.__dlpack__())
    return tf.constant(x, tf.float32)


def _features(extra, x):
    """The forward's third output (penultimate features) as float32, or an empty (N, 0) when it has none."""
    if extra and extra[0] is not None:
        return tf.cast(extra[0], tf.float32)
    return tf.zeros((tf.shape(x)[0], 0))


def _finite_per_image(t):
    """(N, 1, 1) True where every value of image n's tensor is finite."""
    axes = list(range(1, len(t.shape)))
    finite = tf.reduce_all(tf.math.is_finite(t), axis=axes)
    return tf.reshape(finite, (-1, 1, 1))


class BaseCAM:
    """Probabilities + class-activation maps for a batch, in one compiled call."""

    #: False for gradient-free methods: the backward pass is then not built at all.
    needs_gradients = True

    def __init__(self, forward, input_size: tuple[int, int], outputs_are_logits: bool, has_target: bool):
        self._forward = forward
        self._logits = outputs_are_logits
        self.has_target = has_target
        h, w = input_size
        images = tf.TensorSpec((None, h, w, 3), tf.float32)
        scalar = tf.TensorSpec((), tf.float32)
        classes = tf.TensorSpec((None,), tf.int32)
        self._explain = tf.function(self._explain_graph, input_signature=[images, classes, scalar])
        self._predict = tf.function(self._predict_graph, input_signature=[images, scalar])
        # Calling the one concrete function directly skips tf.function's per-call argument binding,
        # which hashes every captured variable (hundreds for a MobileNet): about 1 ms a call.
        self._explain_call = self._explain.get_concrete_function()
        self._predict_call = self._predict.get_concrete_function()

    def channel_weights(self, fmap, grads):
        """Per-image, per-channel weights (N, K) from the feature map (N, h, w, K) and its gradients."""
        raise NotImplementedError(f"{type(self).__name__} must define channel_weights or raw_map.")

    def raw_map(self, x, fmap, grads, chosen):
        """The map (N, h, w) before the ReLU and normalisation; by default channels weighted and summed.

        ``x`` is the input batch, ``grads`` None when ``needs_gradients`` is False, ``chosen``
        the explained class per image.
        """
        return tf.einsum("nhwk,nk->nhw", fmap, self.channel_weights(fmap, grads))

    def class_scores(self, outputs):
        """The score a map explains: logits, or log-probabilities when the model only gives those."""
        outputs = tf.cast(outputs, tf.float32)
        return outputs if self._logits else tf.math.log(tf.maximum(outputs, _PROB_FLOOR))

    def _predict_graph(self, x, temperature):
        _, outputs, *extra = self._forward(x, training=False)
        return tf.nn.softmax(self.class_scores(outputs) / temperature), _features(extra, x)

    def _explain_graph(self, x, class_index, temperature):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            # Watch the input, not the variables: frozen (non-trainable) layers must
            # still be recorded, and no variable gradient is needed.
            tape.watch(x)
            fmap, outputs, *extra = self._forward(x, training=False)
            scores = self.class_scores(outputs)
            top = tf.argmax(scores, axis=-1, output_type=tf.int32)
            chosen = tf.where(class_index >= 0, class_index, top)
            target = tf.reduce_sum(scores * tf.one_hot(chosen, tf.shape(scores)[-1]), axis=-1)
        probs = tf.nn.softmax(scores / temperature)
        features = _features(extra, x)
        if fmap is None:
            return probs, tf.zeros((tf.shape(x)[0], 1, 1)), chosen, features
        fmap = tf.cast(fmap, tf.float32)
        grads = None
        if self.needs_gradients:
            grads = tape.gradient(target, fmap)
            if grads is None:  # the class score does not depend on the layer at all
                grads = tf.zeros_like(fmap)
        cam = tf.nn.relu(self.raw_map(x, fmap, grads, chosen))
        # A map with any NaN or infinity (in it or in what it was made from: a ReLU or a top-k
        # choice can hide a broken input) is returned as all NaN, so the engine refuses it
        # instead of showing a silently zeroed (or peak-distorted) map as evidence.
        finite = _finite_per_image(cam) & _finite_per_image(fmap)
        if grads is not None:
            finite = finite & _finite_per_image(grads)
        broken = tf.logical_not(finite)
        cam = tf.where(broken, 0.0, cam)
        peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
        # All-zero evidence gives an all-zero map rather than 0/0.
        cam = tf.math.divide_no_nan(cam, peak)
        return probs, tf.where(broken, tf.constant(np.nan, tf.float32), cam), chosen, features

    def predict(self, x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """Probabilities (N, C) for a preprocessed batch, no gradients."""
        return self.predict_with_features(x, temperature)[0]

    def predict_with_features(self, x: np.ndarray, temperature: float = 1.0):
        """``(probs (N, C), penultimate features (N, D))`` from one call; D is 0 when the forward has none."""
        probs, features = self._predict_call(_as_float_tensor(x), tf.constant(temperature, tf.float32))
        return probs.numpy(), features.numpy()

    def explain(self, x: np.ndarray, class_index: np.ndarray, temperature: float = 1.0):
        """``(probs (N, C), heatmaps (N, h, w) in [0, 1], explained class (N,))``; -1 picks the top class."""
        return self.explain_with_features(x, class_index, temperature)[:3]

    def explain_with_features(self, x: np.ndarray, class_index: np.ndarray, temperature: float = 1.0):
        """``explain``'s three results plus the penultimate features (N, D) of the same call."""
        probs, cams, chosen, features = self._explain_call(
            _as_float_tensor(x), tf.constant(class_index, tf.int32), tf.constant(temperature, tf.float32)
        )
        return probs.numpy(), cams.numpy(), chosen.numpy(), features.numpy()
