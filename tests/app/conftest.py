"""Fixtures for the Streamlit app tests: a tiny real Keras model, a fresh review DB, real images.

The model is built and saved once per test session (a few seconds) and loaded through the
engine like any user's model, so the tests never depend on the bundled model being trained.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
HAM = SHARED / "ham10000_224"
APP = REPO / "streamlit_app.py"
HAM_LABELS = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
APP_TIMEOUT = 120  # TensorFlow's first import and the model's warm-up are slow on a busy 2-core machine


def build_tiny_model(folder: Path) -> Path:
    """Save a small real CNN (64x64 -> 7 softmax) with its card; return the .keras path."""
    from dermascan._tf import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(7, activation="softmax", name="probs")(x)
    path = folder / "tiny.keras"
    keras.Model(inp, out, name="tiny").save(path)
    card = {"labels": HAM_LABELS, "preprocessing": "unit", "version": "test-1", "name": "Tiny test CNN",
            "description": "A tiny untrained CNN for the app tests.", "limitations": ["Untrained: random outputs."],
            "metrics": {"test": {"balanced_accuracy": 0.25, "per_class": {"mel": {"recall": 0.5, "support": 4}}}}}
    path.with_name("tiny.card.json").write_text(json.dumps(card), encoding="utf-8")
    return path


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


def new_app():
    """A fresh AppTest session on the real app (not yet run)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT)


def assert_no_exception(at) -> None:
    """The script ran to the end without an uncaught exception."""
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def media(monkeypatch) -> dict:
    """Every media file (images, downloads) the app hands to the browser, by URL file name.

    AppTest keeps them in an in-memory store it creates per run; recording them lets a
    test read what a download button would give the user.
    """
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    files: dict = {}

    class RecordingStorage(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            files[file_id] = self.get_file(file_id)
            return file_id

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordingStorage)
    return files


def downloaded(media: dict, button) -> bytes:
    """The bytes a download button serves."""
    file_id = Path(button.proto.url).stem
    return media[file_id].content
