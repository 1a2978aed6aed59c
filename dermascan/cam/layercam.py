"""LayerCAM (Jiang et al., 2021): positive gradient times activation at each position."""

from .._tf import tf
from .base import BaseCAM


class LayerCAM(BaseCAM):
    """Map = sum over channels of ReLU(gradient) * activation."""

    def raw_map(self, x, fmap, grads, chosen):
        """Element-wise positive-gradient product summed over channels (N, h, w)."""
        return tf.reduce_sum(tf.nn.relu(grads) * fmap, axis=-1)
