"""A plain-text training log: timestamped lines to stdout and to a file (no image data)."""

from __future__ import annotations

import time
from pathlib import Path


class RunLog:
    """Append-only log; ``elapsed`` is minutes since the run started (for the per-phase timing)."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.start = time.perf_counter()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    @property
    def elapsed_min(self) -> float:
        """Minutes since the log was opened."""
        return (time.perf_counter() - self.start) / 60.0

    def __call__(self, message: str) -> None:
        """Write one line, prefixed with the elapsed minutes."""
        line = f"[{self.elapsed_min:6.2f} min] {message}"
        print(line, flush=True)
        if self.path:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
