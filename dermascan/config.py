"""Every environment variable and default path of the engine and the app, in one place.

The default model, the folder the web page may load models from, the review database,
the training data and TensorFlow's log level; each name is defined here once and imported
where it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS_DIR = REPO_ROOT / "model"  # the bundled model's folder, where training writes too
BUNDLED_MODEL = DEFAULT_MODELS_DIR / "dermascan-mnv2-ham10000.keras"
MODEL_ENV = "DERMASCAN_MODEL"
MODELS_DIR_ENV = "DERMASCAN_MODELS_DIR"  # the only folder the web page may load models from
TRAINING_DATA = REPO_ROOT.parent / "shared" / "data" / "ham10000_224"
REVIEW_DB_ENV = "DERMASCAN_REVIEW_DB"
DEFAULT_REVIEW_DB = Path(".dermascan") / "reviews.sqlite3"  # under the directory the app runs in
TF_LOG_LEVEL_ENV, TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL", "2"  # TensorFlow's C++ logging: errors only


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


# HTTP API (``python -m dermascan serve``): environment variable names and their defaults. Parsed and checked
# in ``dermascan/api/settings.py``.
API_KEYS_ENV = "DERMASCAN_API_KEYS"  # comma-separated; unset or empty: the review-log endpoints are disabled
CORS_ORIGINS_ENV = "DERMASCAN_CORS_ORIGINS"  # comma-separated origins a browser frontend may call from
DEFAULT_CORS_ORIGINS = ("http://localhost:8080", "http://localhost:5173")  # the original backend's frontends
API_MAX_BATCH_ENV = "DERMASCAN_API_MAX_BATCH"  # images per compiled call gathered from concurrent requests
DEFAULT_API_MAX_BATCH = 32
API_MAX_WAIT_MS_ENV = "DERMASCAN_API_MAX_WAIT_MS"  # how long a request may wait for others to join its batch
DEFAULT_API_MAX_WAIT_MS = 5.0
API_MAX_QUEUE_ENV = "DERMASCAN_API_MAX_QUEUE"  # requests waiting for the model before new ones get 503
DEFAULT_API_MAX_QUEUE = 64
API_MAX_FILES_ENV = "DERMASCAN_API_MAX_FILES"  # files in one POST /api/batch
DEFAULT_API_MAX_FILES = 32
API_RATE_LIMIT_ENV = "DERMASCAN_API_RATE_LIMIT"  # per client address, slowapi syntax; "off" disables it
DEFAULT_API_RATE_LIMIT = "600/minute"
