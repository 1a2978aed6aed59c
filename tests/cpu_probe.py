"""CPU time of the calling thread, for tests that bound work (never wall-clock time).

"Refused before any work is done" is shown by the CPU seconds the refusing thread spent: unlike wall-clock time,
they do not grow when a busy machine runs other jobs beside the test (CI, or a training run on the same cores).
"""

from __future__ import annotations

import time


class ThreadCpuTime:
    """Context manager: ``seconds`` is the CPU time (user + system) this thread spent inside the block."""

    def __enter__(self) -> ThreadCpuTime:
        self.seconds = 0.0
        self._start = time.thread_time()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = time.thread_time() - self._start
