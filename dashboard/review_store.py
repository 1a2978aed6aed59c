"""One ``ReviewStore`` per database file, shared by every session of the process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.reviews import ReviewStore, default_db_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreSlot:
    """The review store, or the one-line reason it could not be opened."""

    store: ReviewStore | None
    error: str | None = None


def review_db_path() -> Path:
    """``$DERMASCAN_REVIEW_DB`` or ``.dermascan/reviews.sqlite3``, absolute (the cache key)."""
    return default_db_path().absolute()


@st.cache_resource(show_spinner=False, max_entries=8)
def _open(path: str) -> ReviewStore:
    # One store (one serialised SQLite connection) per file for the whole process.
    return ReviewStore(path)


def get_store() -> StoreSlot:
    """The shared store for the configured database (an error slot when it cannot be opened).

    Failures are not cached, so a database that comes back (a fixed path, a freed lock) is
    picked up on the next rerun.
    """
    try:
        return StoreSlot(_open(str(review_db_path())))
    except DermascanError as exc:
        return StoreSlot(None, str(exc))
    except Exception as exc:  # an unusable path must not crash the page
        log.warning("Review store failed to open: %s", type(exc).__name__)
        return StoreSlot(None, "The review database could not be opened.")
