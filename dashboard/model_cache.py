"""Load the classifier once per process and share it with every session.

Loading compiles and warms up the TensorFlow graph (seconds), so it happens in
``st.cache_resource`` keyed by the resolved path and the file's modification time:
every session reuses one ``LesionModel``, and a retrained file on the same path loads
fresh instead of serving stale weights.

A session uses the administrator's default (``$DERMASCAN_MODEL``, else the bundled model) or a
file it picked by name from the models folder (``$DERMASCAN_MODELS_DIR``); the page never names
a server path, and a model whose layers carry code is refused (never ``trust_code``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import dermascan
from dermascan.config import MODEL_ENV, MODELS_DIR_ENV, models_dir, resolve_model_path
from dermascan.errors import DermascanError
from dermascan.model.folder import model_in_folder

from . import session
from .presentation import plain

log = logging.getLogger(__name__)

HOW_TO_FIX = (
    "To fix it, choose another model under **Model** in the sidebar, or ask the administrator to put a "
    f".keras or .h5 file in the models folder (`{MODELS_DIR_ENV}`) or to set `{MODEL_ENV}` and restart the app."
)


@dataclass(frozen=True)
class ModelSlot:
    """The model this session uses, or why there is none."""

    model: dermascan.LesionModel | None
    key: str  # identity of the loaded file (path, mtime, version) for result caches
    path: str
    error: str | None = None

    @property
    def loaded(self) -> bool:
        """True when a model is ready to analyse images."""
        return self.model is not None


@st.cache_resource(show_spinner="Loading the model (first time only)…", max_entries=4)
def _load(path: str, mtime_ns: int) -> dermascan.LesionModel:
    # mtime_ns is only part of the cache key: a rewritten file gets a new entry.
    return dermascan.load_model(path)


def current_model(choice: str | None = None) -> ModelSlot:
    """The session's model (picked in the sidebar from the models folder, else the default one).

    ``choice`` overrides the session's pick ("": the default model; needed where there is no session).
    """
    choice = session.model_choice() if choice is None else choice
    try:
        # Resolved again on every run: a file swapped for a symlink after it was listed is still refused.
        path = model_in_folder(models_dir(), choice) if choice else resolve_model_path(None)
        mtime = path.stat().st_mtime_ns if path.is_file() else 0
        model = _load(str(path), mtime)
    except DermascanError as exc:
        return ModelSlot(None, "", choice, str(exc))
    except Exception as exc:  # never let an unexpected loader failure take the whole app down
        log.warning("Model load failed unexpectedly: %s", type(exc).__name__)
        return ModelSlot(None, "", choice, "The model could not be loaded (unexpected error).")
    return ModelSlot(model, f"{path}|{mtime}|{model.version}", str(path))


def preload_default_model() -> ModelSlot:
    """Load (and warm up) the administrator's default model into the shared cache, outside any session.

    Called at server start (``server_start``); the first session that asks for the same file gets this
    very ``LesionModel`` from ``st.cache_resource``.
    """
    return current_model(choice="")


def model_file_name(slot: ModelSlot) -> str:
    """Just the file name of the slot's model, for captions (full paths can leak home folders)."""
    return Path(slot.path).name if slot.path else "default model"


def require_model() -> ModelSlot:
    """The session's loaded model; otherwise say why and how to fix it, and stop this page's run."""
    slot = current_model()
    if not slot.loaded:
        st.error(f"No model is loaded: {plain(slot.error)} {HOW_TO_FIX}", icon=":material/error:")
        st.stop()
    return slot
