"""Grad-CAM++ (Chattopadhay et al., 2018): positive gradients weighted per position."""

from .._tf import tf
from .base import BaseCAM

# Keeps the closed-form alpha finite where the gradients vanish (pytorch-grad-cam uses the same).
_EPS = 1e-6


class GradCAMPlusPlus(BaseCAM):
    """Weights = sum over positions of alpha * ReLU(gradient), alpha from the closed form of the paper."""

    def channel_weights(self, fmap, grads):
        """The paper's closed form with the exponential-score identity: higher derivatives as gradient powers."""
        g2 = tf.square(grads)
        g3 = g2 * grads
        sum_activations = tf.reduce_sum(fmap, axis=[1, 2], keepdims=True)
        alpha = g2 / (2.0 * g2 + sum_activations * g3 + _EPS)
        alpha = tf.where(grads != 0.0, alpha, 0.0)
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=[1, 2])
