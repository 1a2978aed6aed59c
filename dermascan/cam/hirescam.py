"""HiResCAM (Draelos & Carin, 2020): gradient times activation at each position, no pooling.

Pooling the gradients per channel (Grad-CAM) can highlight positions the model did not use;
summing the element-wise product over channels keeps the map faithful to the class score.
"""

from .._tf import tf
from .base import BaseCAM


class HiResCAM(BaseCAM):
    """Map = sum over channels of gradient * activation."""

    def raw_map(self, x, fmap, grads, chosen):
        """Element-wise product summed over channels (N, h, w)."""
        return tf.reduce_sum(grads * fmap, axis=-1)
