"""Where the gate's features are: the input of a model's final ``Dense`` layer, and earlier layers' activations.

The compiled pass stops the forward at the final Dense layer's input and applies the layer itself (its kernel
and bias, or the layer), so the penultimate features come out of the same call as the probabilities and the
heatmap, for a flat functional model, a Sequential and a nested base model alike (``cam.target`` does the
splitting). The same call also hands out the spatially averaged activations of a few earlier layers (the gate's
*taps*): a fine-tuned network's last features can map a page of text close to the lesions (the logit-adjusted
MobileNetV2 of TRAINING_LOG run 7 did), while its mid-level activations still tell them apart (Lee et al. 2018
score several layers for this reason). The features the pass returns are the penultimate ones followed by each
tap's, in order; ``FeatureLayout`` says which columns belong to which.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_FEATURES = ("the model does not end in a Dense layer, so its penultimate features could not be found")
PENULTIMATE = "penultimate"
# Layers whose output is a trivial copy of their input's (padding, dropout, a normalisation before the
# activation, a resampling such as ``train.ensemble``'s): never chosen as a tap.
_NOT_TAPS = ("ZeroPadding2D", "Cropping2D", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
             "AlphaDropout", "BatchNormalization", "LayerNormalization", "GroupNormalization", "Normalization",
             "Rescaling", "Resizing", "UpSampling2D", "InputLayer")


def _is_dense(layer) -> bool:
    return type(layer).__name__ == "Dense"


@dataclass(frozen=True)
class FeatureLayout:
    """The gate features' columns: ``(name, width)`` per segment, the penultimate features first."""

    segments: tuple[tuple[str, int], ...]

    @property
    def widths(self) -> tuple[int, ...]:
        """Each segment's number of columns."""
        return tuple(width for _, width in self.segments)

    @property
    def width(self) -> int:
        """Total number of columns."""
        return sum(self.widths)

    @property
    def taps(self) -> tuple[str, ...]:
        """The earlier layers' names, in column order (the penultimate segment left out)."""
        return tuple(name for name, _ in self.segments[1:])

    def split(self, features):
        """The (N, width) features cut into one array per segment."""
        out, start = [], 0
        for width in self.widths:
            out.append(features[:, start : start + width])
            start += width
        return out


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


def _spatial_area(layer) -> int:
    shape = tuple(layer.output.shape)
    return int(shape[1] or 0) * int(shape[2] or 0)


def _producers(layer) -> list:
    """The layers whose outputs ``layer`` takes in its (last) call: one for most layers, several for a merge."""
    from ..cam.target import last_call

    node = last_call(layer)
    if node is None:
        return []
    tensors = node.input_tensors
    tensors = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    return [t._keras_history[0] for t in tensors if getattr(t, "_keras_history", None) is not None]


def _ancestors(layer) -> set[int]:
    """``id``s of ``layer`` and every layer upstream of it in its own graph."""
    seen, stack = {id(layer)}, [layer]
    while stack:
        for producer in _producers(stack.pop()):
            if id(producer) not in seen:
                seen.add(id(producer))
                stack.append(producer)
    return seen


def default_taps(model, target) -> list:
    """The gate's default earlier layers for a model whose CAM layer is ``target`` (a ``cam.Target``).

    The last layer upstream of the CAM layer, in the same (sub)model, whose map is larger than the CAM layer's
    (the previous resolution stage of the network: MobileNetV2's 14x14 expansion before its last 7x7 stage, a
    small CNN's block before its last pooling), skipping padding, dropout and normalisation layers. When the CAM
    layer merges several branches (``train.ensemble``'s concatenated members), one such layer per branch, so
    every branch's mid-level activations are read. Empty for a model without a CAM layer or without a larger
    earlier map.
    """
    if target is None:
        return []
    from ..cam.target import spatial_candidates

    candidates, _ = spatial_candidates(model)
    area = _spatial_area(target.layer)
    index = next(i for i, c in enumerate(candidates) if c.layer is target.layer and c.path == target.path)
    earlier = [c for c in candidates[:index] if c.path == target.path and type(c.layer).__name__ not in _NOT_TAPS
               and _spatial_area(c.layer) > area]
    branches = _producers(target.layer)
    heads = branches if len(branches) > 1 else [target.layer]
    taps = []
    for head in heads:
        upstream = _ancestors(head)
        tap = next((c for c in reversed(earlier) if id(c.layer) in upstream), None)
        if tap is not None and all(t.layer is not tap.layer for t in taps):
            taps.append(tap)
    return taps


def named_taps(model, target, names) -> list:
    """The ``cam.Target`` of each layer a gate sidecar names (``CardError`` when one is missing or misplaced)."""
    from ..cam.target import find_target
    from ..errors import CardError

    taps = []
    for name in names:
        tap = find_target(model, name)
        if target is None or tap.path != target.path:
            raise CardError(f"The gate statistics name the layer '{name}', which is not beside the heatmap layer; "
                            "fit them again for this model (python -m dermascan fit-gate).")
        taps.append(tap)
    return taps


def forward_with_features(forward, head, has_features: bool):
    """A forward ``f(x) -> (fmap, scores, features)`` from ``build_explain_model``'s ``(fmap, out, taps)``:
    ``features`` are the penultimate features followed by each tap's spatial mean (None without
    ``has_features``)."""
    from .._tf import tf

    def run(x, training=False):
        fmap, out, taps = forward(x, training=training)
        scores = out if head is None else head(out)
        if not has_features:
            return fmap, scores, None
        pooled = [tf.reduce_mean(tf.cast(t, tf.float32), axis=[1, 2]) for t in taps]
        features = tf.cast(out, tf.float32)
        return fmap, scores, tf.concat([features, *pooled], axis=1) if pooled else features

    return run
