"""Where a model's penultimate features are: the input of its final ``Dense`` layer.

The compiled pass stops the forward at that input and applies the layer itself (its kernel and bias, or
the layer), so the features come out of the same call as the probabilities and the heatmap, for a flat
functional model, a Sequential and a nested base model alike (``cam.target`` does the splitting).
"""

from __future__ import annotations

NO_FEATURES = ("the model does not end in a Dense layer, so its penultimate features could not be found")


def _is_dense(layer) -> bool:
    return type(layer).__name__ == "Dense"


def feature_split(model, tensor, head, stripped: bool):
    """``(tensor, head, has_features)`` for ``cam.build_explain_model``: when ``has_features``, the forward's
    output before ``head`` is the features (the final Dense layer's input) and ``head`` gives the scores.

    ``tensor, head, stripped`` are ``introspect.strip_final_softmax``'s answer, which already splits at a
    final Dense with a fused softmax; a final Dense with any other activation is split here.
    """
    last = model.layers[-1]
    if not _is_dense(last):
        return tensor, head, False
    if stripped:
        return tensor, head, tensor is last.input
    return last.input, last, True


def forward_with_features(forward, head, has_features: bool):
    """A forward ``f(x) -> (fmap, scores, features)`` (features None without ``has_features``)."""
    if not has_features:
        if head is None:
            return lambda x, training=False: (*forward(x, training=training), None)

        def plain(x, training=False):
            fmap, out = forward(x, training=training)
            return fmap, head(out), None

        return plain

    def split(x, training=False):
        fmap, features = forward(x, training=training)
        return fmap, head(features), features

    return split
