"""Grad-CAM (Selvaraju et al., 2017): channels weighted by their mean gradient."""

from .._tf import tf
from .base import BaseCAM


class GradCAM(BaseCAM):
    """Weights = global-average-pooled gradients of the class score."""

    def channel_weights(self, fmap, grads):
        """Mean gradient over the spatial positions, per image and channel."""
        return tf.reduce_mean(grads, axis=[1, 2])
