"""Shared fixtures: real HAM10000 images from ../shared and synthetic RGB images.

Plain helpers live in ``shared_data.py`` and ``tiny_models.py``: test modules import them
from there, because every ``conftest`` of the suite shares that module name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from shared_data import HAM, ham_sample

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def ham_paths() -> list[Path]:
    """Eight real HAM10000 images, one per class first."""
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    return ham_sample(8, per_class=True)


@pytest.fixture
def rgb_images() -> list[np.ndarray]:
    """Four deterministic synthetic RGB images of different sizes."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=s, dtype=np.uint8) for s in [(40, 40, 3), (64, 48, 3), (30, 90, 3), (32, 32, 3)]]
