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


def spatial_candidates(model, path=(), seen_weights=False):
    """4-D layers in order, skipping those before the first layer with weights.

    An input or a Rescaling of it is 4-D too, but a "map" there is only input saliency.
    Returns ``(targets, seen_weights)``.
    """
    targets = []
    for layer in model.layers:
        if _is_model(layer):
            inner, seen_weights = spatial_candidates(layer, path + (layer,), seen_weights)
            targets.extend(inner)
            continue
        seen_weights = seen_weights or bool(layer.weights)
        if seen_weights and _is_spatial(layer):
            targets.append(Target(layer, path))
    return targets, seen_weights


def find_target(model, name: str | None = None) -> Target | None:
    """The last 4-D layer (or the one called ``name``; dotted or plain); None if there is none."""
    candidates, _ = spatial_candidates(model)
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


def last_call(layer):
    """The node of ``layer``'s last call in a graph (its inputs and outputs), or None if it was never called."""
    nodes = [n for n in getattr(layer, "_inbound_nodes", []) if getattr(n, "input_tensors", None) is not None]
    return nodes[-1] if nodes else None


def _call_node(layer, container):
    """The node where ``layer`` is called inside ``container``'s graph (the last call wins)."""
    node = last_call(layer)
    if node is None:
        raise ModelLoadError(f"Could not trace how {container.name} uses {layer.name}.")
    return node


def _as_single(tensors):
    if isinstance(tensors, (list, tuple)):
        if len(tensors) != 1:
            raise ModelLoadError("Nested base models with several inputs or outputs are not supported.")
        return tensors[0]
    return tensors


def build_explain_model(model, target: Target | None, output_tensor, head=None, taps: tuple = ()):
    """A callable ``f(x, training=False) -> (feature_map | None, output, tap outputs)`` over the model.

    ``output_tensor`` is the model's output, or the input of its final layer when that
    layer's softmax is being bypassed; ``head``, when given, is applied to it. ``taps`` are
    more layers (``Target``s in the CAM layer's own model, e.g. for the input gate) whose
    outputs the same forward hands out, in order.
    """
    skip_last = output_tensor is not single_io(model)[1]
    path = target.path if target else ()
    for tap in taps:
        if target is None or tap.path != path:
            raise ModelLoadError(f"The layer {tap.name} is not in the same model as the heatmap layer.")
    layers = ((target.layer,) if target else ()) + tuple(tap.layer for tap in taps)
    forward = _forward(model, path, layers, skip_last)

    def split(x, training=False):
        maps, out = forward(x, training=training)
        out = out if head is None else head(out)
        if target is None:
            return None, out, ()
        return maps[0], out, tuple(maps[1:])

    return split


def _is_sequential(model) -> bool:
    return type(model).__name__ == "Sequential"


def _forward(model, path: tuple, layers: tuple, skip_last: bool = False):
    """``forward(x) -> (outputs of layers, out)`` for ``model``, where ``layers`` sit inside the models in ``path``."""
    if _is_sequential(model):
        return _sequential_forward(model, path, layers, skip_last)
    return _functional_forward(model, path, layers, skip_last)


def _sequential_forward(model, path: tuple, layers: tuple, skip_last: bool):
    # Call the layers one by one. Asking Keras 3 for Model(seq.inputs, [layer.output, ...])
    # on a Sequential can silently build two separate graphs from the same input, and the
    # class score then does not depend on the feature map that is returned.
    steps = model.layers[:-1] if skip_last else list(model.layers)
    nested = path[0] if path else None
    sub = _forward(nested, path[1:], layers) if nested is not None else None
    wanted = {id(layer): i for i, layer in enumerate(layers)} if nested is None else {}

    def forward(x, training=False):
        h, maps = x, [None] * len(layers)
        for current in steps:
            if current is nested:
                maps, h = sub(h, training=training)
                maps = list(maps)
            else:
                h = current(h, training=training)
                if id(current) in wanted:
                    maps[wanted[id(current)]] = h
        return tuple(maps), h

    return forward


def _functional_forward(model, path: tuple, layers: tuple, skip_last: bool):
    Model = _model_class(model)
    inp, out = single_io(model)
    output_tensor = model.layers[-1].input if skip_last else out
    if not layers:
        plain = Model(inp, output_tensor)
        return lambda x, training=False: ((), plain(x, training=training))
    if not path:
        every = Model(inp, [*(layer.output for layer in layers), output_tensor])

        def flat(x, training=False):
            *maps, result = every(x, training=training)
            return tuple(maps), result

        return flat
    base = path[0]
    sub = _forward(base, path[1:], layers)
    node = _call_node(base, model)
    outer_base_in = _as_single(node.input_tensors)
    pre = None if outer_base_in is inp else Model(inp, outer_base_in)
    post = Model(_as_single(node.output_tensors), output_tensor)

    def forward(x, training=False):
        h = x if pre is None else pre(x, training=training)
        maps, features = sub(h, training=training)
        return maps, post(features, training=training)

    return forward
