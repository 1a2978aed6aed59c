"""Decide from a model file's configuration, before any loader builds a layer, whether it carries code.

A Keras file is data until a loader deserializes it: a ``Lambda`` layer holds Python bytecode
(Keras 2: marshalled in ``config.function``; Keras 3: a ``__lambda__`` object) and a custom
class needs code from outside Keras. ``tf_keras`` runs a Keras 2 lambda as it rebuilds the
model, with no safe mode for ``.h5`` files, so the config is read here and judged first:

- every layer (the root model, each entry of a ``layers`` list, the ``layer`` / ``cell`` of a
  wrapper, at any depth) must be a class Keras itself defines: a name exported by
  ``keras.layers`` (and, for ``.h5``, ``tf_keras.layers``), a model class, or a Keras or
  tf_keras class already loaded in this process (``keras.ops`` nodes, application layers);
- layers that run a function named in the file are refused wherever they appear (``Lambda``,
  ``TFSMLayer``, ``TorchModuleWrapper``, ``JaxLayer``, ``FlaxLayer``); ``TFOpLambda`` and
  ``SlicingOpLambda`` (what ``tf_keras`` records for raw ``tf.`` calls in a functional model)
  name a TensorFlow API symbol by string, and are allowed only for pure tensor math, because
  the same mechanism reaches ``tf.io.write_file`` or ``tf.load_op_library``;
- any serialized object whose ``module`` is not Keras / TensorFlow, that is registered as a
  custom object (``package>Name``) or that is a ``__lambda__`` is refused.

The compile configuration is not read: models load uncompiled, so a custom loss never runs.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError

MAX_CONFIG_BYTES = 32 * 1024 * 1024  # EfficientNetB7's config is ~1 MB; anything far larger is hostile
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
CODE_CLASSES = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
TF_OP_CLASSES = frozenset({"TFOpLambda", "SlicingOpLambda"})
TRUSTED_MODULES = ("keras", "tf_keras", "tensorflow")
# Pure tensor math, by tf_keras's canonical symbol name: namespaces, then single ops.
TF_OP_NAMESPACES = ("math.", "nn.", "linalg.", "image.", "signal.", "__operators__.")
TF_OPS = frozenset({
    "reshape", "transpose", "concat", "stack", "unstack", "split", "squeeze", "expand_dims", "cast",
    "clip_by_value", "clip_by_norm", "identity", "gather", "gather_nd", "pad", "tile", "shape", "rank", "size",
    "where", "ones_like", "zeros_like", "fill", "range", "one_hot", "slice", "strided_slice", "broadcast_to",
    "einsum", "sort", "argsort", "boolean_mask", "reverse", "roll", "repeat", "meshgrid", "norm",
    "convert_to_tensor", "constant", "ones", "zeros", "linspace", "abs", "exp", "sqrt", "square", "maximum",
    "minimum", "add_n", "matmul", "tensordot", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min",
})
LAYER_KEYS = ("layer", "backward_layer", "forward_layer", "cell")
LAYER_LISTS = ("layers", "cells")
OPT_IN = "if you trust this file, load it with --trust-model-code (CLI) or trust_code=True (Python)"


class UnsafeModelError(ModelLoadError):
    """The model file asks to run code (or could not be checked), so it is not loaded."""


@dataclass(frozen=True)
class Finding:
    """Why a model config is refused: the layer (or object) and the reason."""

    layer: str
    class_name: str
    reason: str


def _plain(text: object, limit: int = 60) -> str:
    # File content reaches the UI and the terminal: printable, short, no markup characters.
    cleaned = re.sub(r"[^A-Za-z0-9_.:>/ -]", "?", str(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def read_model_config(path: Path, kind: str) -> dict:
    """The model config of a ``.keras`` archive (``config.json``) or an HDF5 file (``model_config``), unbuilt."""
    name = _plain(path.name)
    try:
        raw = _read_keras_config(path) if kind == "keras" else _read_h5_config(path)
    except UnsafeModelError:
        raise
    except Exception:  # zipfile, h5py and the OS raise many types for damaged files
        raw = None
    if raw is None:
        raise UnsafeModelError(
            f"{name} could not be loaded: its model configuration could not be read (damaged, or weights only)."
        )
    if len(raw) > MAX_CONFIG_BYTES:
        raise UnsafeModelError(f"{name} was refused: its model configuration is larger than "
                               f"{MAX_CONFIG_BYTES // 2**20} MB.")
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        config = None
    if not isinstance(config, dict):
        raise UnsafeModelError(f"{name} could not be loaded: its model configuration is not valid JSON.")
    return config


def _read_keras_config(path: Path) -> bytes | None:
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo("config.json")
        except KeyError:
            return None
        if info.file_size > MAX_CONFIG_BYTES:
            return b"x" * (MAX_CONFIG_BYTES + 1)  # refused as too large without inflating it
        with archive.open(info) as fh:
            return fh.read(MAX_CONFIG_BYTES + 1)  # the header's size can lie; never read past the limit


def _read_h5_config(path: Path) -> bytes | None:
    import h5py

    with h5py.File(path, "r") as fh:
        attr = fh.attrs.get("model_config")
    if attr is None:
        return None
    if isinstance(attr, str):
        return attr.encode("utf-8")
    if isinstance(attr, bytes):
        return attr
    return None


@functools.cache
def _builtin_layer_names(include_tf_keras: bool) -> frozenset[str]:
    # Taken from the installed Keras at run time, so a Keras upgrade updates the list by itself.
    from .._tf import keras

    libraries = [keras]
    if include_tf_keras:
        import tf_keras

        libraries.append(tf_keras)
    names = set(MODEL_CLASSES)
    for lib in libraries:
        for attr in dir(lib.layers):
            obj = getattr(lib.layers, attr)
            if inspect.isclass(obj) and issubclass(obj, lib.layers.Layer):
                names.add(attr)
    return frozenset(names - CODE_CLASSES)


def _trusted_module(module: object) -> bool:
    return module is None or (isinstance(module, str) and module.split(".", 1)[0] in TRUSTED_MODULES)


def _defined_by_keras(module: object, class_name: str) -> bool:
    # A class Keras defines outside keras.layers (keras.ops nodes such as ``Mean``, ConvNeXt's
    # ``LayerScale``): only already-imported Keras modules count, so nothing is imported on the file's say.
    if not (isinstance(module, str) and module.split(".", 1)[0] in ("keras", "tf_keras")):
        return False
    mod = sys.modules.get(module)
    cls = getattr(mod, class_name, None) if mod is not None else None
    if not inspect.isclass(cls):
        return False
    from .._tf import keras

    bases = [keras.Operation]
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None:
        bases.append(tf_keras.layers.Layer)
    return issubclass(cls, tuple(bases))


def tf_op_allowed(function: object) -> bool:
    """True when a ``TFOpLambda`` names pure tensor math (``math.multiply``, ``reshape``, ``nn.relu``...)."""
    if not isinstance(function, str):
        return False
    for prefix in ("compat.v1.", "compat.v2."):
        if function.startswith(prefix):
            function = function[len(prefix):]
    return function in TF_OPS or function.startswith(TF_OP_NAMESPACES)


def _layer_name(obj: dict) -> str:
    config = obj.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return _plain(name if name is not None else obj.get("name", "?"))


def _check_object(obj: dict, is_layer: bool, tf_keras_names: bool) -> Finding | None:
    class_name = obj.get("class_name")
    if not isinstance(class_name, str):
        return Finding(_layer_name(obj), "?", "has a class name that is not text")
    name, shown = _layer_name(obj), _plain(class_name)
    module, registered = obj.get("module"), obj.get("registered_name")
    if class_name == "__lambda__" or class_name in CODE_CLASSES:
        return Finding(name, shown, "carries Python code, which would run on this server")
    if isinstance(registered, str) and ">" in registered:
        return Finding(name, shown, "is a custom registered object, whose code is not part of Keras")
    if not _trusted_module(module):
        return Finding(name, shown, f"needs code from module '{_plain(module)}', outside Keras")
    if class_name in TF_OP_CLASSES:
        config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
        function = config.get("function")
        if class_name == "SlicingOpLambda" and function != "__operators__.getitem":
            return Finding(name, shown, f"calls '{_plain(function)}' instead of slicing")
        if not tf_keras_names or not tf_op_allowed(function):
            return Finding(name, shown, f"calls TensorFlow function '{_plain(function)}', not pure tensor math")
        return None
    if is_layer and class_name not in _builtin_layer_names(tf_keras_names) \
            and not _defined_by_keras(module, class_name):
        return Finding(name, shown, "is not a Keras built-in layer, so it needs custom code")
    return None


def find_code(config: dict, *, kind: str = "keras") -> Finding | None:
    """The first layer or object in ``config`` that would run code not shipped with Keras, or None."""
    tf_keras_names = kind == "h5"  # only legacy .h5 files may be rebuilt by tf_keras
    stack: list[tuple[object, bool]] = [(config, True)]
    while stack:
        node, is_layer = stack.pop()
        if isinstance(node, list):
            stack.extend((item, False) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            finding = _check_object(node, is_layer, tf_keras_names)
            if finding is not None:
                return finding
            inner = node.get("config")
            if is_layer and isinstance(inner, list):  # Keras 2.0-2.2 Sequential: config is the layer list
                stack.extend((item, True) for item in inner)
                inner = None
            if isinstance(inner, dict):
                for key, value in inner.items():
                    if key in LAYER_KEYS:
                        stack.append((value, True))
                    elif key in LAYER_LISTS and isinstance(value, list):
                        stack.extend((item, True) for item in value)
                    else:
                        stack.append((value, False))
            rest = (v for k, v in node.items() if k not in ("config", "compile_config"))
        else:
            rest = (v for k, v in node.items() if k != "compile_config")  # never compiled: never deserialized
        stack.extend((value, False) for value in rest)
    return None


def check_model_file(path: Path, kind: str) -> None:
    """Raise ``UnsafeModelError`` unless the file's config holds only Keras built-ins (see the module doc)."""
    finding = find_code(read_model_config(path, kind), kind=kind)
    if finding is not None:
        raise UnsafeModelError(
            f"{_plain(path.name)} was refused: layer '{finding.layer}' ({finding.class_name}) {finding.reason}; "
            f"{OPT_IN}."
        )
