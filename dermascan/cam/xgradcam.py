"""XGradCAM (Fu et al., 2020): gradients weighted by the activations they multiply."""

from .._tf import tf
from .base import BaseCAM

# Keeps an all-zero channel's weight at zero instead of 0/0 (pytorch-grad-cam uses the same).
_EPS = 1e-7


class XGradCAM(BaseCAM):
    """Weights = sum over positions of gradient * activation / the channel's total activation."""

    def channel_weights(self, fmap, grads):
        """Activation-normalised gradient sum per image and channel."""
        sum_activations = tf.reduce_sum(fmap, axis=[1, 2])
        return tf.reduce_sum(grads * fmap, axis=[1, 2]) / (sum_activations + _EPS)
