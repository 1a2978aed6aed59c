"""Where the default model lives, where the app finds the models it offers, and how to override both."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = REPO_ROOT / "model" / "dermascan-mnv2-ham10000.keras"
MODEL_ENV = "DERMASCAN_MODEL"
MODELS_DIR_ENV = "DERMASCAN_MODELS_DIR"  # the only folder the web page may load models from
DEFAULT_MODELS_DIR = REPO_ROOT / "model"


def resolve_model_path(path: str | Path | None = None) -> Path:
    """``path`` if given, else ``$DERMASCAN_MODEL``, else the bundled model (which must exist)."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env).expanduser()
    if not BUNDLED_MODEL.is_file():
        raise ModelLoadError(
            "No default model is installed (model/dermascan-mnv2-ham10000.keras); "
            f"pass --model PATH or set {MODEL_ENV}."
        )
    return BUNDLED_MODEL


def models_dir() -> Path:
    """``$DERMASCAN_MODELS_DIR`` if set, else the repository's ``model/`` folder."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_MODELS_DIR
