"""Fixtures for the Streamlit app tests: a tiny real Keras model, a fresh review DB, real images.

The model is built and saved once per test session (a few seconds) and loaded through the
engine like any user's model, so the tests never depend on the bundled model being trained.
Plain helpers are in ``app_helpers.py`` (``build_tiny_model`` is re-exported here too).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from app_helpers import HAM, build_tiny_model, record_media

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["build_tiny_model"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Path of the tiny model (built once per test session)."""
    return build_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def review_db(tmp_path) -> Path:
    """A review database path of its own for each test."""
    return tmp_path / "reviews.sqlite3"


@pytest.fixture
def app_env(monkeypatch, tiny_model, review_db) -> None:
    """Point the app at the tiny model and the test's review DB."""
    monkeypatch.setenv("DERMASCAN_MODEL", str(tiny_model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))


@pytest.fixture
def ham_images() -> list[Path]:
    """Real HAM10000 images (the first two in name order); skips without ../shared."""
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[:2]


@pytest.fixture
def media(monkeypatch) -> dict:
    """Every media file (images, downloads) the app hands to the browser, by URL file name."""
    return record_media(monkeypatch)
