"""Score-CAM (Wang et al., 2020): channels weighted by the class score of the image they mask.

Each channel's activation map is upsampled to the input, normalised to [0, 1] and multiplied
into the image; the class scores of those masked images, softmaxed over the channels, weight
the channels. Gradient-free. The masks of one image go through the compiled forward pass as
one batch, and only the ``MAX_MASKS`` most active channels are used, so the cost is bounded
(a MobileNet's last layer has 1280 channels).
"""

from .._tf import tf
from .base import BaseCAM

MAX_MASKS = 32


class ScoreCAM(BaseCAM):
    """Map = the top ``MAX_MASKS`` channels by mean activation, weighted by softmax(masked scores)."""

    needs_gradients = False

    def raw_map(self, x, fmap, grads, chosen):
        """One batch of masked images per input image, through the same forward pass (N, h, w)."""
        k = min(MAX_MASKS, int(fmap.shape[-1]))
        size = tf.shape(x)[1:3]

        def one_image(args):
            image, maps, target = args
            top = tf.math.top_k(tf.reduce_mean(maps, axis=[0, 1]), k=k).indices
            maps = tf.gather(maps, top, axis=-1)  # (h, w, k)
            up = tf.image.resize(maps[None], size, method="bilinear")[0]  # (H, W, k)
            low = tf.reduce_min(up, axis=[0, 1])
            high = tf.reduce_max(up, axis=[0, 1])
            masks = tf.math.divide_no_nan(up - low, high - low)  # a flat channel masks everything out
            masked = image[None] * tf.transpose(masks, [2, 0, 1])[..., None]  # (k, H, W, 3)
            outputs = self._forward(masked, training=False)[1]
            weights = tf.nn.softmax(self.class_scores(outputs)[:, target])
            return tf.einsum("hwk,k->hw", maps, weights)

        return tf.map_fn(one_image, (x, fmap, chosen), fn_output_signature=tf.float32)
