"""``ServerState``: the model (loaded and warmed up in the background at start), its batcher, the review store.

Until the model is ready every model endpoint answers 503 and ``/api/health`` says ``loading``, so a
load balancer can hold traffic back. A model that fails to load keeps the server up, answering 503
with the reason, as the dashboard keeps working when its model fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import DermascanError
from ..reviews import ReviewStore, new_session_id
from .batcher import DynamicBatcher
from .errors import ApiError
from .settings import ApiSettings

log = logging.getLogger(__name__)

LOADING = "The model is still loading; retry in a few seconds."
LOAD_FAILED = "The model could not be loaded."


class ServerState:
    """One per app: shared by every request."""

    def __init__(self, model_loader: Callable[[], object], settings: ApiSettings):
        self.settings = settings
        self._loader = model_loader
        self.started = time.monotonic()
        self.model = None
        self.batcher: DynamicBatcher | None = None
        self.load_error: str | None = None
        self.session_id = new_session_id()  # groups this server run's API cases in the review log
        self._store: ReviewStore | None = None
        self._store_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        """Load the model on a background thread (the server answers 503 meanwhile)."""
        self._thread = threading.Thread(target=self._load, name="dermascan-model-loader", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            model = self._loader()  # load_model also traces and warms up the compiled pass
            s = self.settings
            self.batcher = DynamicBatcher(model, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms,
                                          max_queue=s.max_queue)
            self.model = model
            log.info("model ready")
        except DermascanError as exc:
            self.load_error = f"{LOAD_FAILED} {exc}"
            log.error("model failed to load: %s", exc)
        except Exception as exc:
            self.load_error = LOAD_FAILED
            log.error("model failed to load (%s)", type(exc).__name__)
        finally:
            self.ready.set()

    def require_model(self):
        """The model and its batcher, or ``ApiError`` 503 while loading or after a failed load."""
        if self.model is None:
            raise ApiError(503, self.load_error or LOADING, {"Retry-After": "2"})
        return self.model, self.batcher

    def store(self) -> ReviewStore:
        """The review store, opened on first use (``ReviewStoreError`` if it cannot be)."""
        with self._store_lock:
            if self._store is None:
                self._store = ReviewStore(self.settings.review_db)
            return self._store

    def close(self) -> None:
        """Stop the batcher and close the store."""
        if self.batcher is not None:
            self.batcher.close()
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
