"""A pixel budget: how many decoded pixels a batch may hold at once, shared by its decode threads.

Pixels, not bytes: a decode reserves what the image's header claims before any pixel is
allocated, keeps what it hands on (the reduced image and the model input) and gives the rest
back; the batch gives those back once the caller has taken the item. Reservations are tagged
with their chunk, and a decode waits only while an *earlier* chunk still holds pixels (those
are released without waiting on this chunk), so the budget can slow a batch but never
deadlock it; a chunk that alone needs more than the budget goes ahead, since waiting could
free nothing.
"""

from __future__ import annotations

import threading
from collections import Counter

# Decoded pixels in flight in one batch: two concurrent decodes of the largest zip entry (40 MP) plus two
# chunks of 32 screen-sized images (~70 MP each) fit; a handful of 100 MP PNGs queue instead of piling up.
PIXEL_BUDGET = 256_000_000


class BudgetClosed(Exception):
    """The batch ended while a decode was waiting for pixels."""


class PixelBudget:
    """A counting gate over pixels (thread-safe)."""

    def __init__(self, limit: int = PIXEL_BUDGET):
        if limit < 1:
            raise ValueError("the pixel budget must be positive")
        self.limit = limit
        self.peak = 0  # the most pixels held at once, for tests and benchmarks
        self._held: Counter[int] = Counter()  # chunk index -> pixels
        self._cond = threading.Condition()
        self._closed = False

    @property
    def used(self) -> int:
        """Pixels held now."""
        with self._cond:
            return sum(self._held.values())

    def acquire(self, pixels: int, chunk: int) -> int:
        """Reserve ``pixels`` (at most the whole budget) for ``chunk``; returns what was reserved."""
        pixels = max(0, min(int(pixels), self.limit))
        with self._cond:
            while not self._closed and self._must_wait(pixels, chunk):
                self._cond.wait()
            if self._closed:
                raise BudgetClosed
            self._held[chunk] += pixels
            self.peak = max(self.peak, sum(self._held.values()))
        return pixels

    def release(self, pixels: int, chunk: int) -> None:
        """Give back ``pixels`` reserved for ``chunk``."""
        if pixels <= 0:
            return
        with self._cond:
            self._held[chunk] -= pixels
            if self._held[chunk] <= 0:
                del self._held[chunk]
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiting decode with ``BudgetClosed`` (the batch is over)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _must_wait(self, pixels: int, chunk: int) -> bool:
        if sum(self._held.values()) + pixels <= self.limit:
            return False
        return any(c < chunk and n > 0 for c, n in self._held.items())
