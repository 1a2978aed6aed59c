"""Facts read off a Keras model's structure: internal rescaling, final softmax, output size."""

from __future__ import annotations


def walk_layers(model):
    """Every layer, depth first, including those inside nested models."""
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from walk_layers(layer)


def rescaling_layers(model) -> list[str]:
    """Names of Rescaling / Normalization layers: the model scales pixels itself."""
    return [
        layer.name
        for layer in walk_layers(model)
        if type(layer).__name__ in ("Rescaling", "Normalization")
    ]


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def strip_final_softmax(model, output_tensor):
    """Return ``(tensor, head, stripped)`` so that ``head(tensor)`` gives the logits when the model ends in softmax.

    Grad-CAM needs the pre-softmax class score: the gradient of a saturated probability
    vanishes exactly where the model is most confident. A final ``Softmax`` /
    ``Activation('softmax')`` layer is bypassed by reading its input (``head`` is None);
    a softmax fused into a final ``Dense`` is bypassed by re-applying that layer's kernel
    and bias without the activation, so the user's model object is never modified.
    """
    last = model.layers[-1]
    kind = type(last).__name__
    if kind == "Softmax" or (kind == "Activation" and _activation_name(last) == "softmax"):
        return last.input, None, True
    if kind == "Dense" and _activation_name(last) == "softmax":
        from .._tf import tf

        kernel, bias = last.kernel, getattr(last, "bias", None)

        def dense_logits(h):
            logits = tf.matmul(tf.cast(h, kernel.dtype), kernel)
            return logits if bias is None else logits + bias

        return last.input, dense_logits, True
    return output_tensor, None, False
