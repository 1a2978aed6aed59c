"""Arrays TensorFlow can use without copying them.

``tf.constant`` copies its input: 600 kB per 224 x 224 image, about 0.2 ms right after a model
pass (the pass has just evicted the CPU caches) and 19 MB per batch chunk of 32. A NumPy array
can be wrapped instead, through DLPack, when its memory is aligned as TensorFlow's kernels
require. TensorFlow *aborts the process* (a failed CHECK, not an exception) when a kernel meets a
misaligned wrapped buffer, so only arrays that pass :func:`can_share` may be wrapped; the engine
allocates its batches with :func:`empty_aligned`. This module stays free of TensorFlow so that
preprocessing can use it without the import; the wrapping itself is in ``cam/base.py``.
"""

from __future__ import annotations

import numpy as np

# EIGEN_MAX_ALIGN_BYTES of AVX-512 builds; every smaller requirement (16, 32) divides it.
TF_ALIGNMENT = 64


def empty_aligned(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a ``TF_ALIGNMENT`` boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + TF_ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % TF_ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def can_share(x: np.ndarray) -> bool:
    """True when TensorFlow can use ``x``'s memory as a float32 tensor safely (no copy needed)."""
    return (
        isinstance(x, np.ndarray)
        and x.dtype == np.float32
        and x.size > 0
        and x.flags.c_contiguous
        and x.flags.writeable  # NumPy refuses to export read-only memory through DLPack
        and x.ctypes.data % TF_ALIGNMENT == 0
    )
