"""Arrays TensorFlow may share: alignment, and every case that must fall back to a copy."""

from __future__ import annotations

import numpy as np
import pytest

from dermascan.inference.aligned import TF_ALIGNMENT, can_share, empty_aligned
from dermascan.inference.preprocessing import prepare_batch


@pytest.mark.parametrize("shape", [(1, 224, 224, 3), (32, 7, 5, 3), (3,), (1, 1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_empty_aligned_is_aligned_contiguous_and_writeable(shape, dtype):
    for _ in range(5):  # several allocations: NumPy's own alignment varies from one to the next
        x = empty_aligned(shape, dtype)
        assert x.shape == shape and x.dtype == dtype
        assert x.ctypes.data % TF_ALIGNMENT == 0 and x.flags.c_contiguous and x.flags.writeable
        x[...] = 1
        assert x.sum() == x.size


def test_a_prepared_batch_can_be_shared():
    images = [np.full((30, 40, 3), v, np.uint8) for v in (0, 128, 255)]
    assert can_share(prepare_batch(images, (16, 16), "unit", "squash"))


def _misaligned(shape) -> np.ndarray:
    raw = empty_aligned((int(np.prod(shape)) + 1,))
    return raw[1:].reshape(shape)  # 4 bytes past a 64-byte boundary


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: empty_aligned((2, 8, 8, 3)), True),
    (lambda: empty_aligned((2, 8, 8, 3))[1:], True),  # 768 bytes in: still on a boundary
    (lambda: _misaligned((2, 8, 8, 3)), False),
    (lambda: empty_aligned((2, 8, 8, 3), np.float64), False),
    (lambda: empty_aligned((2, 8, 8, 6))[..., :3], False),  # not contiguous
    (lambda: empty_aligned((0, 8, 8, 3)), False),
    (lambda: [[1.0]], False),  # not an array at all
])
def test_can_share_only_aligned_contiguous_float32_arrays(make, expected):
    assert can_share(make()) is expected


def test_read_only_memory_is_copied_not_shared():
    x = empty_aligned((2, 4, 4, 3))
    x.flags.writeable = False
    assert not can_share(x)
