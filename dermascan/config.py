"""Where the default model lives and how a user overrides it."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = REPO_ROOT / "model" / "dermascan-mnv2-ham10000.keras"
MODEL_ENV = "DERMASCAN_MODEL"


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

# The other environment variables and default paths: all in this one file.
MODEL_DIR = BUNDLED_MODEL.parent
TRAINING_DATA = REPO_ROOT.parent / "shared" / "data" / "ham10000_224"
REVIEW_DB_ENV = "DERMASCAN_REVIEW_DB"
DEFAULT_REVIEW_DB = Path(".dermascan") / "reviews.sqlite3"  # under the directory the app runs in
TF_LOG_LEVEL_ENV, TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL", "2"  # TensorFlow's C++ logging: errors only
