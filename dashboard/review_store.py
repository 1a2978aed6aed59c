"""One ``ReviewStore`` per database (SQLite file or PostgreSQL URL), shared by every session of the process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.reviews import ReviewStore, default_db_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreSlot:
    """The review store, or the one-line reason it could not be opened."""

    store: ReviewStore | None
    error: str | None = None


def review_db_url() -> str:
    """``$DERMASCAN_REVIEW_DB`` as given when it is a URL, else the database file's absolute path (the cache key)."""
    url = default_db_url()
    return url if "://" in url else str(Path(url).absolute())


@st.cache_resource(show_spinner=False, max_entries=8)
def _open(url: str) -> ReviewStore:
    # One store (one writer connection, a reader pool) per database for the whole process.
    return ReviewStore(url)


def get_store() -> StoreSlot:
    """The shared store for the configured database (an error slot when it cannot be opened).

    Failures are not cached, so a database that comes back (a fixed path, a freed lock, a restarted server) is
    picked up on the next rerun.
    """
    try:
        return StoreSlot(_open(review_db_url()))
    except DermascanError as exc:
        return StoreSlot(None, str(exc))
    except Exception as exc:  # an unusable path must not crash the page
        log.warning("Review store failed to open: %s", type(exc).__name__)
        return StoreSlot(None, "The review database could not be opened.")
