"""Peak resident memory of this process, from /proc (Linux), for tests that bound memory (never time).

``reset_peak()`` sets the kernel's high-water mark (VmHWM) back to the current RSS through
``/proc/self/clear_refs``, so ``peak_growth()`` measures what happened since, not since start.
"""

from __future__ import annotations

import re

import pytest


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return int(re.search(rf"^{field}:\s+(\d+)", fh.read(), re.M).group(1))


def reset_peak() -> int:
    """Reset the peak RSS to the current RSS; returns the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # pragma: no cover - no clear_refs: the peak since start is still an upper bound
        pytest.skip("/proc/self/clear_refs is not writable; the peak cannot be reset")
    return _status_kib("VmRSS") * 1024


def peak_bytes() -> int:
    """The process's peak RSS in bytes since the last ``reset_peak``."""
    return _status_kib("VmHWM") * 1024


needs_proc = pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"),
                                reason="needs Linux /proc to read memory")
