"""Find the Grad-CAM target layer and build a forward function exposing it.

The target is the last layer with a 4-D (batch, height, width, channels) output, also
when it sits inside a nested base model (``Sequential([MobileNetV2(...), ...])``). For
a nested base, naively asking Keras for ``Model(outer.inputs, inner_layer.output)``
raises "Graph disconnected": the inner layer's tensors belong to the base's own graph.
So we split the forward pass in three pieces and re-apply the head on the base's outputs:
``pre`` (outer input -> base input), ``inner`` (base input -> [feature map, base output])
and ``post`` (base output -> model output).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CardError, ModelLoadError


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs") and bool(getattr(layer, "inputs", None))


def _is_spatial(layer) -> bool:
    """A 4-D output with more than one spatial position (a 1x1 map cannot localise)."""
    try:
        shape = tuple(layer.output.shape)
    except Exception:  # layers never called in a graph have no output
        return False
    return len(shape) == 4 and not (shape[1] == 1 and shape[2] == 1)


@dataclass
class Target:
    """Where the CAM layer lives: ``path`` holds the nested models from the outside in."""

    layer: object
    path: tuple  # () when the layer is a direct layer of the model

    @property
    def name(self) -> str:
        """Dotted name: ``base.out_relu`` for a nested layer."""
        return ".".join([m.name for m in self.path] + [self.layer.name])


def _candidates(model, path=(), seen_weights=False):
    """4-D layers in order, skipping those before the first layer with weights.

    An input or a Rescaling of it is 4-D too, but a "map" there is only input saliency.
    Returns ``(targets, seen_weights)``.
    """
    targets = []
    for layer in model.layers:
        if _is_model(layer):
            inner, seen_weights = _candidates(layer, path + (layer,), seen_weights)
            targets.extend(inner)
            continue
        seen_weights = seen_weights or bool(layer.weights)
        if seen_weights and _is_spatial(layer):
            targets.append(Target(layer, path))
    return targets, seen_weights


def find_target(model, name: str | None = None) -> Target | None:
    """The last 4-D layer (or the one called ``name``; dotted or plain); None if there is none."""
    candidates, _ = _candidates(model)
    if name is None:
        return candidates[-1] if candidates else None
    for target in reversed(candidates):
        if name in (target.name, target.layer.name):
            return target
    raise CardError(f"The model has no layer named '{name}' with a spatial (4-D) output.")


def _model_class(model):
    # Build helper models with the same Keras that made the model: a tf_keras model
    # cannot be wrapped in a Keras 3 Model and vice versa.
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras.Model
    from .._tf import keras

    return keras.Model


def single_io(model) -> tuple:
    """``(input, output)`` symbolic tensors; a clear error for multi-input or multi-output models."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or not outputs:
        raise ModelLoadError("The model has no defined input; models must be built with an input shape.")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelLoadError("Only models with one image input and one output are supported.")
    return inputs[0], outputs[0]


def _call_node(layer, container):
    """The node where ``layer`` is called inside ``container``'s graph (the last call wins)."""
    nodes = [n for n in layer._inbound_nodes if n.input_tensors is not None]
    if not nodes:
        raise ModelLoadError(f"Could not trace how {container.name} uses {layer.name}.")
    return nodes[-1]


def _as_single(tensors):
    if isinstance(tensors, (list, tuple)):
        if len(tensors) != 1:
            raise ModelLoadError("Nested base models with several inputs or outputs are not supported.")
        return tensors[0]
    return tensors


def build_explain_model(model, target: Target | None, output_tensor, head=None):
    """A callable ``f(x, training=False) -> (feature_map | None, output)`` over the model.

    ``output_tensor`` is the model's output, or the input of its final layer when that
    layer's softmax is being bypassed; ``head``, when given, is applied to it.
    """
    skip_last = output_tensor is not single_io(model)[1]
    forward = _forward(model, target.path if target else (), target.layer if target else None, skip_last)
    if head is None:
        return forward

    def with_head(x, training=False):
        fmap, out = forward(x, training=training)
        return fmap, head(out)

    return with_head


def _is_sequential(model) -> bool:
    return type(model).__name__ == "Sequential"


def _forward(model, path: tuple, layer, skip_last: bool = False):
    """``forward(x) -> (fmap, out)`` for ``model``, where ``layer`` sits inside the models in ``path``."""
    if _is_sequential(model):
        return _sequential_forward(model, path, layer, skip_last)
    return _functional_forward(model, path, layer, skip_last)


def _sequential_forward(model, path: tuple, layer, skip_last: bool):
    # Call the layers one by one. Asking Keras 3 for Model(seq.inputs, [layer.output, ...])
    # on a Sequential can silently build two separate graphs from the same input, and the
    # class score then does not depend on the feature map that is returned.
    layers = model.layers[:-1] if skip_last else list(model.layers)
    nested = path[0] if path else None
    sub = _forward(nested, path[1:], layer) if nested is not None else None

    def forward(x, training=False):
        h, fmap = x, None
        for current in layers:
            if current is nested:
                fmap, h = sub(h, training=training)
            else:
                h = current(h, training=training)
                if current is layer:
                    fmap = h
        return fmap, h

    return forward


def _functional_forward(model, path: tuple, layer, skip_last: bool):
    Model = _model_class(model)
    inp, out = single_io(model)
    output_tensor = model.layers[-1].input if skip_last else out
    if layer is None:
        plain = Model(inp, output_tensor)
        return lambda x, training=False: (None, plain(x, training=training))
    if not path:
        both = Model(inp, [layer.output, output_tensor])
        return lambda x, training=False: tuple(both(x, training=training))
    base = path[0]
    sub = _forward(base, path[1:], layer)
    node = _call_node(base, model)
    outer_base_in = _as_single(node.input_tensors)
    pre = None if outer_base_in is inp else Model(inp, outer_base_in)
    post = Model(_as_single(node.output_tensors), output_tensor)

    def forward(x, training=False):
        h = x if pre is None else pre(x, training=training)
        fmap, features = sub(h, training=training)
        return fmap, post(features, training=training)

    return forward
