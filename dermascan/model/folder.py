"""The models an administrator offers to web users: model files directly inside one folder.

A web user picks a file *name*; it is resolved here and must land directly in the folder
(no ``..``, no absolute path, no symlink pointing out), so the page can never name, probe or
load anything else on the server. An administrator adds a model by dropping a file there.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def _inside(folder: Path, name: str) -> Path | None:
    """The resolved file ``folder/name`` when it is a model file directly inside ``folder``, else None."""
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "\\" in name \
            or "\0" in name or name.startswith(".") or not name.lower().endswith(MODEL_SUFFIXES):
        return None
    try:
        root = folder.resolve(strict=True)
        target = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        return None
    if target.parent != root or not target.is_file() or not target.name.lower().endswith(MODEL_SUFFIXES):
        return None
    return target


def list_models(folder: Path) -> list[str]:
    """File names of the model files directly inside ``folder`` (sorted; [] when it cannot be read)."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
    return sorted(name for name in names if _inside(folder, name) is not None)


def model_in_folder(folder: Path, name: str) -> Path:
    """The model file ``name`` inside ``folder``, resolved; a one-line ``ModelLoadError`` otherwise."""
    target = _inside(folder, name)
    if target is None:
        raise ModelLoadError("The chosen model is no longer in the models folder; choose another one.")
    return target


def in_folder(folder: Path, path: Path) -> str | None:
    """The file name under which ``folder`` offers ``path``, or None when ``path`` is not one of its models."""
    target = _inside(folder, path.name)
    try:
        same = target is not None and target == path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return path.name if same else None
