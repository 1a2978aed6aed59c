"""Half-precision kernels in a model file: about half the bytes, and the network stored is the one evaluated.

Keras writes every weight as float32, and loads whatever floating dtype a weights dataset holds into its float32
variables (``tests/train/test_weight_storage.py`` checks both, through the engine's loader). So a file can hold its
kernels as float16 and still give a float32 network that computes in float32 on any machine. Two steps:

* ``round_kernels_to_float16(model)`` rounds the kernels (weights of two or more dimensions: convolutions and
  Dense) to their nearest float16 value in memory, *before* calibration and evaluation, so every number measured
  is the shipped network's. Vectors (biases, BatchNorm statistics) stay float32: they are few, and a variance's
  precision matters more than a kernel's.
* ``store_exact_float16(path)`` rewrites a saved ``.keras`` archive so that every kernel whose values are all
  float16 values is stored as float16. It is lossless by construction (an ordinary float32 model's kernels are
  not float16 values, and its file is left as it is), so it runs on every export.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np

WEIGHTS_ENTRY = "model.weights.h5"  # where Keras 3 puts the weights inside a .keras archive


def _is_kernel(array) -> bool:
    return array.dtype == np.float32 and array.ndim >= 2


def _float16_values(array: np.ndarray) -> np.ndarray:
    """``array``'s values rounded to the nearest float16, kept as float32 (what the network computes with)."""
    return array.astype(np.float16).astype(np.float32)


def _exact_in_float16(array: np.ndarray) -> bool:
    return bool(np.array_equal(_float16_values(array), array))


def round_kernels_to_float16(model) -> int:
    """Round ``model``'s float32 kernels to their nearest float16 values in place; return how many values changed
    storage (a ``ValueError`` when a kernel holds a value float16 cannot hold)."""
    weights = model.get_weights()
    rounded, count = [], 0
    for array in weights:
        if _is_kernel(array):
            if not np.all(np.abs(array) <= np.finfo(np.float16).max):
                raise ValueError("a kernel holds a value beyond float16's range; it cannot be stored in half precision")
            array = _float16_values(array)
            count += array.size
        rounded.append(array)
    model.set_weights(rounded)
    return count


def _copy_with_float16_kernels(source: h5py.File, target: h5py.File) -> int:
    converted = 0

    def copy(name: str, item) -> None:
        nonlocal converted
        if isinstance(item, h5py.Group):
            made = target.require_group(name)
        else:
            data = item[()]
            if isinstance(data, np.ndarray) and _is_kernel(data) and _exact_in_float16(data):
                data = data.astype(np.float16)
                converted += 1
            made = target.create_dataset(name, data=data)
        made.attrs.update(item.attrs)

    target.attrs.update(source.attrs)
    source.visititems(copy)
    return converted


def store_exact_float16(path: str | Path) -> int:
    """Store every kernel of the ``.keras`` archive ``path`` whose values are float16 values as float16 (lossless);
    return how many arrays were converted (0: the file is left untouched)."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    weights = next((data for info, data in entries if info.filename == WEIGHTS_ENTRY), None)
    if weights is None:
        return 0
    rewritten = io.BytesIO()
    with h5py.File(io.BytesIO(weights), "r") as source, h5py.File(rewritten, "w") as target:
        converted = _copy_with_float16_kernels(source, target)
    if not converted:
        return 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".keras.tmp")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as archive:
            for info, data in entries:
                archive.writestr(info, rewritten.getvalue() if info.filename == WEIGHTS_ENTRY else data)
        os.chmod(tmp, path.stat().st_mode & 0o777)  # mkstemp's file is private; keep the saved file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return converted
