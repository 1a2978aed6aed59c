"""What the dashboard does once, when its server starts: load and warm up the default model.

``streamlit run streamlit_app.py`` finds the ``st.App`` in the router and serves it; this is its lifespan.
The model loads in a background thread, so the server answers at once while TensorFlow is imported and
the graph traced; the first visitor's run then finds the model in ``st.cache_resource`` (or waits on its
lock for what is left of the load), instead of starting the load itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from streamlit.logger import get_logger

# Streamlit's logger: its handler and level (info by default), so an administrator sees how long the start took.
log = get_logger(__name__)

WARM_UP_THREAD = "dermascan-warm-up"
# Where Streamlit warns that a thread has no script run context: the warm-up thread has none by design.
SCRIPT_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _NotFromWarmUp(logging.Filter):
    """Drops the "missing ScriptRunContext" warning of the warm-up thread only (every other thread's stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != WARM_UP_THREAD


def warm_up() -> None:
    """Import the engine and the pages' heavy libraries, then load and warm up the default model."""
    # Imported here, not at the top: the router imports this module on every run, where TensorFlow is
    # already loaded by then; importing it once, in this thread, is the point.
    started = time.perf_counter()
    import dermascan._tf  # noqa: F401 - TensorFlow and Keras, timed on their own

    from . import model_cache

    imported = time.perf_counter()
    slot = model_cache.preload_default_model()
    loaded = time.perf_counter()
    if slot.error:
        log.warning("The default model did not load at start; the pages will say why.")
    from . import differential  # noqa: F401 - pandas and Altair, which Analyze's first run needs next

    log.info("Warm-up: TensorFlow and the engine imported in %.1f s, the default model loaded and traced in "
             "%.1f s, the pages' libraries in %.1f s.", imported - started, loaded - imported,
             time.perf_counter() - loaded)


def quiet_warm_up_context_warning() -> None:
    """Drop Streamlit's "missing ScriptRunContext" warning for the warm-up thread (once per process)."""
    context_log = logging.getLogger(SCRIPT_CONTEXT_LOGGER)
    if not any(isinstance(f, _NotFromWarmUp) for f in context_log.filters):
        context_log.addFilter(_NotFromWarmUp())


def start_warm_up() -> threading.Thread:
    """``warm_up`` in a daemon thread (a failure there is logged, never raised into the server)."""
    quiet_warm_up_context_warning()
    thread = threading.Thread(target=_warm_up_logged, name=WARM_UP_THREAD, daemon=True)
    thread.start()
    return thread


def _warm_up_logged() -> None:
    try:
        warm_up()
    except Exception as exc:  # the server must come up even when the model cannot; the page reports it
        log.warning("Warm-up failed: %s", type(exc).__name__)


@asynccontextmanager
async def lifespan(_app) -> AsyncIterator[None]:
    """The ``st.App`` lifespan: start the warm-up and serve at once."""
    start_warm_up()
    yield
