"""The compiled pass shared by every CAM method: probabilities and a heatmap together.

One ``tf.function`` runs the forward pass under a gradient tape, reads the class score
(pre-softmax logit, or log-probability when the model only exposes probabilities),
takes its gradient at the target layer and reduces it to a heatmap. The input signature
has a free batch dimension and the temperature and class choice are tensors, so it is
traced once per model, whatever the batch size or options. Subclasses only say how
gradients become per-channel weights (``channel_weights``), as in pytorch-grad-cam.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

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


class BaseCAM(ABC):
    """Probabilities + class-activation maps for a batch, in one compiled call."""

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

    @abstractmethod
    def channel_weights(self, fmap, grads):
        """Per-image, per-channel weights (N, K) from the feature map and its gradients."""

    def _scores(self, outputs):
        outputs = tf.cast(outputs, tf.float32)
        return outputs if self._logits else tf.math.log(tf.maximum(outputs, _PROB_FLOOR))

    def _predict_graph(self, x, temperature):
        _, outputs = self._forward(x, training=False)
        return tf.nn.softmax(self._scores(outputs) / temperature)

    def _explain_graph(self, x, class_index, temperature):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            # Watch the input, not the variables: frozen (non-trainable) layers must
            # still be recorded, and no variable gradient is needed.
            tape.watch(x)
            fmap, outputs = self._forward(x, training=False)
            scores = self._scores(outputs)
            top = tf.argmax(scores, axis=-1, output_type=tf.int32)
            chosen = tf.where(class_index >= 0, class_index, top)
            target = tf.reduce_sum(scores * tf.one_hot(chosen, tf.shape(scores)[-1]), axis=-1)
        probs = tf.nn.softmax(scores / temperature)
        if fmap is None:
            return probs, tf.zeros((tf.shape(x)[0], 1, 1)), chosen
        fmap = tf.cast(fmap, tf.float32)
        grads = tape.gradient(target, fmap)
        if grads is None:  # the class score does not depend on the layer at all
            grads = tf.zeros_like(fmap)
        cam = tf.nn.relu(tf.einsum("nhwk,nk->nhw", fmap, self.channel_weights(fmap, grads)))
        # A map with any NaN or infinity is returned as all NaN, so the engine refuses it
        # instead of showing a silently zeroed (or peak-distorted) map as evidence.
        broken = tf.reduce_any(tf.logical_not(tf.math.is_finite(cam)), axis=[1, 2], keepdims=True)
        cam = tf.where(broken, 0.0, cam)
        peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
        # All-zero evidence gives an all-zero map rather than 0/0.
        cam = tf.math.divide_no_nan(cam, peak)
        return probs, tf.where(broken, tf.constant(np.nan, tf.float32), cam), chosen

    def predict(self, x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """Probabilities (N, C) for a preprocessed batch, no gradients."""
        return self._predict_call(_as_float_tensor(x), tf.constant(temperature, tf.float32)).numpy()

    def explain(self, x: np.ndarray, class_index: np.ndarray, temperature: float = 1.0):
        """``(probs (N, C), heatmaps (N, h, w) in [0, 1], explained class (N,))``; -1 picks the top class."""
        probs, cams, chosen = self._explain_call(
            _as_float_tensor(x), tf.constant(class_index, tf.int32), tf.constant(temperature, tf.float32)
        )
        return probs.numpy(), cams.numpy(), chosen.numpy()
