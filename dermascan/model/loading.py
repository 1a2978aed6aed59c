"""Read a Keras model file, whichever Keras wrote it.

``.keras`` files go through Keras 3. Legacy HDF5 (``.h5``) files go through Keras 3 when
it can read them and through ``tf_keras`` (the Keras 2 API) otherwise: Keras 3 cannot
deserialize Keras 2 EfficientNet files (``DepthwiseConv2D ... groups``) nor nested base
models saved by Keras 2 (BatchNormalization ``axis`` lists), and ``tf_keras`` can.
The format is decided by the file's content, not its extension.

A model file is data, never code: unless the caller trusts it (``trust_code=True``), its
configuration is checked by ``model_safety`` before any loader builds a layer, Keras 3 runs in
safe mode, and a file Keras 3 refuses for safety never goes on to ``tf_keras`` (which would run
a Keras 2 ``Lambda``'s bytecode as it rebuilds the model).
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from pathlib import Path

from .._tf import keras
from ..errors import ModelLoadError
from .safety import OPT_IN, UnsafeModelError, check_model_file

log = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def sniff_format(path: Path) -> str:
    """``"keras"`` (zip archive), ``"h5"`` (HDF5) or ``"unknown"``, from the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == HDF5_SIGNATURE:
        return "h5"
    if zipfile.is_zipfile(path):
        return "keras"
    return "unknown"


def _load_keras3(path: Path, *, safe_mode: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about legacy input_shape kwargs in old files
        return keras.models.load_model(path, compile=False, safe_mode=safe_mode)


def _refused_by_safe_mode(exc: Exception) -> bool:
    # Keras 3 has no exception type of its own for this; its message always names the option.
    return isinstance(exc, ValueError) and "safe_mode" in str(exc)


def _safety_refusal(name: str) -> UnsafeModelError:
    return UnsafeModelError(f"{name} was refused: Keras found code in it (a Lambda layer or a Python function); "
                            f"{OPT_IN}.")


def _load_tf_keras(path: Path):
    import tf_keras  # imported lazily: only legacy files need it

    return tf_keras.models.load_model(path, compile=False)


def load_keras_file(path: str | Path, *, trust_code: bool = False) -> tuple[object, str]:
    """Load ``path`` without compiling; return ``(model, loader)`` with loader ``keras`` or ``tf_keras``.

    ``trust_code=True`` skips the content check and lets Keras 3 run a file's Lambda code
    (``safe_mode=False``): only for files whose origin you trust, never from the web page.
    """
    path = Path(path)
    name = path.name
    if path.is_dir():
        raise ModelLoadError(f"{name} is a folder; pass a .keras or .h5 model file.")
    if not path.is_file():
        raise ModelLoadError(f"Model file {name} was not found.")
    try:
        kind = sniff_format(path)
    except OSError:
        raise ModelLoadError(f"Model file {name} could not be read.") from None
    if kind == "unknown":
        raise ModelLoadError(f"{name} is not a Keras model file (expected a .keras archive or an HDF5 .h5 file).")
    if not trust_code:
        check_model_file(path, kind)
    if kind == "keras":
        try:
            return _load_keras3(path, safe_mode=not trust_code), "keras"
        except Exception as exc:  # Keras raises many types for damaged archives
            log.info("Keras 3 could not load %s: %s", name, type(exc).__name__)
            if _refused_by_safe_mode(exc):
                raise _safety_refusal(name) from None
            raise ModelLoadError(f"{name} could not be loaded as a Keras 3 model; the file may be damaged.") from None
    try:
        return _load_keras3(path, safe_mode=not trust_code), "keras"
    except Exception as exc:
        log.info("Keras 3 could not load %s (%s); trying tf_keras", name, type(exc).__name__)
        if _refused_by_safe_mode(exc):
            raise _safety_refusal(name) from None  # never hand a file Keras 3 found code in to tf_keras
    try:
        return _load_tf_keras(path), "tf_keras"
    except Exception as exc:
        log.info("tf_keras could not load %s: %s", name, type(exc).__name__)
        raise ModelLoadError(
            f"{name} could not be loaded by Keras 3 nor Keras 2 (tf_keras); it may be weights only or damaged."
        ) from None
