"""Reading PyTorch ``.pth`` state dicts and copying their tensors into a Keras port, checked both ways.

Every ported backbone names its Keras layers so that one function maps a layer name to its torch module
path; ``copy_into`` then copies convolution and BatchNorm tensors and refuses a partial port (a missing
tensor, or a tensor no layer used), because a half-ported backbone still runs and looks like it works.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np

BATCHNORM_KEYS = ("weight", "bias", "running_mean", "running_var")  # -> gamma, beta, moving mean, moving variance


def load_state_dict(path: Path) -> dict:
    """Read a ``.pth`` file as tensors only (``weights_only=True``: a pickle that carries code is refused)."""
    import torch  # training extra (requirements-train.txt); the engine never needs it

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{Path(path).name} is not a state dict")
    return dict(state)


def to_numpy(tensor) -> np.ndarray:
    """A torch tensor (or array) as float32 NumPy; non-finite values are an error."""
    array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
    if not np.all(np.isfinite(array)):
        raise ValueError("state dict holds non-finite values")
    return array.astype(np.float32)


def copy_into(model: keras.Model, state_dict: Mapping[str, object], torch_prefix: Callable[[str], str],
              ported: Callable[[str], bool]) -> int:
    """Copy the ``ported`` tensors of ``state_dict`` into ``model``'s conv and BatchNorm layers; returns the count.

    ``torch_prefix`` maps a Keras layer name to its torch module path. Conv OIHW -> HWIO, depthwise
    (C,1,H,W) -> (H,W,C,1), BatchNorm per ``BATCHNORM_KEYS``. ``ValueError`` when a layer finds no tensor or
    a ported tensor (``num_batches_tracked`` aside) has no layer.
    """
    tensors = {k: to_numpy(v) for k, v in state_dict.items() if ported(k)}
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in tensors:
            raise ValueError(f"state dict has no tensor {key}")
        used.add(key)
        return tensors[key]

    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            layer.set_weights([take(f"{torch_prefix(layer.name)}.weight").transpose(2, 3, 0, 1)])
        elif isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([take(f"{torch_prefix(layer.name)}.weight").transpose(2, 3, 1, 0)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([take(f"{torch_prefix(layer.name)}.{k}") for k in BATCHNORM_KEYS])
    unused = {k for k in tensors if k not in used and not k.endswith("num_batches_tracked")}
    if unused:
        raise ValueError(f"{len(unused)} state-dict tensors have no Keras layer, e.g. {sorted(unused)[0]}")
    return len(used)
