"""A process-wide count of real engine calls made by the pages, so tests can prove a cache hit."""

from __future__ import annotations

import threading

_calls = 0
_lock = threading.Lock()


def engine_calls() -> int:
    """How many times the pages called the engine for an analysis in this process."""
    return _calls


def count_engine_call() -> None:
    """Record one engine call (thread-safe: sessions run on several threads)."""
    global _calls
    with _lock:
        _calls += 1
