"""Eigen-CAM (Muhammad & Yeasin, 2020): the first principal component of the activations.

Gradient-free, so the map does not depend on the explained class: it shows what the layer
responds to most, not why one class won.
"""

from .._tf import tf
from .base import BaseCAM


class EigenCAM(BaseCAM):
    """Map = centred activations projected on their first right singular vector, sign-corrected."""

    needs_gradients = False

    def raw_map(self, x, fmap, grads, chosen):
        """Projection per image (N, h, w), signed so that it agrees with the mean activation."""
        shape = tf.shape(fmap)
        flat = tf.reshape(fmap, (shape[0], shape[1] * shape[2], shape[3]))  # (N, positions, K)
        # Centring first, as pytorch-grad-cam does: otherwise the component is mostly the mean.
        centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
        _, _, v = tf.linalg.svd(centred, full_matrices=False)
        projection = tf.einsum("npk,nk->np", centred, v[:, :, 0])
        # A singular vector's sign is arbitrary; the map must point to where the layer is active.
        agreement = tf.reduce_sum(projection * tf.reduce_mean(flat, axis=-1), axis=1, keepdims=True)
        projection = tf.where(agreement < 0.0, -projection, projection)
        return tf.reshape(projection, shape[:3])
