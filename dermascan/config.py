"""Every environment variable the engine and the app read, and every default path.

One place so that a deployment guide, a test or a new module finds them without grepping.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO_ROOT / "model"  # the bundled model, its card, split, evaluation; the training recipe's output
BUNDLED_MODEL = MODEL_DIR / "dermascan-mnv2-ham10000.keras"
TRAINING_DATA = REPO_ROOT.parent / "shared" / "data" / "ham10000_224"  # labels.csv + images/, beside the repo
MODEL_ENV = "DERMASCAN_MODEL"  # a model file used instead of the bundled one

REVIEW_DB_ENV = "DERMASCAN_REVIEW_DB"  # the review database file
DEFAULT_REVIEW_DB = Path(".dermascan") / "reviews.sqlite3"  # relative: under the directory the app runs in

# TensorFlow's own C++ log level, set (unless the user set it) before TensorFlow is imported: errors only.
TF_LOG_LEVEL_ENV, TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL", "2"


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
