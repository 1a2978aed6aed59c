"""Helpers for the Streamlit app tests (imported by name; the fixtures stay in this folder's conftest)."""

from __future__ import annotations

import re
from pathlib import Path

from shared_data import HAM, HAM_LABELS, REPO, SHARED  # noqa: F401 - re-exported for the app tests
from tiny_models import save_tiny_lesion_model

from dermascan.render.text import WORD_JOINER

APP = REPO / "streamlit_app.py"
APP_TIMEOUT = 120  # TensorFlow's first import and the model's warm-up are slow on a busy 2-core machine


def build_tiny_model(folder: Path) -> Path:
    """Save the shared tiny CNN (64x64 -> 7 softmax) with a card the Model page can show; return its path."""
    return save_tiny_lesion_model(folder, card={
        "name": "Tiny test CNN", "description": "A tiny untrained CNN for the app tests.",
        "limitations": ["Untrained: random outputs."],
        "metrics": {"test": {"balanced_accuracy": 0.25, "per_class": {"mel": {"recall": 0.5, "support": 4}}}}})


def new_app():
    """A fresh AppTest session on the real app (not yet run)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT)


def assert_no_exception(at) -> None:
    """The script ran to the end without an uncaught exception."""
    assert not at.exception, [e.value for e in at.exception]


def as_shown(markdown: str) -> str:
    """What a reader sees of a Markdown body whose user text went through ``plain`` (escapes and joiners gone)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def proto_text(proto) -> str:
    """An element's protobuf as text, then once more as a reader sees it (escapes and word joiners gone), so that a
    check that something is *not* on the page also sees through ``plain``'s escaping."""
    from google.protobuf import text_format

    readable = text_format.MessageToString(proto, as_utf8=True).replace("\\", "").replace(WORD_JOINER, "")
    return f"{proto}\n{readable}"


def downloaded(media: dict, button) -> bytes:
    """The bytes a download button serves."""
    file_id = Path(button.proto.url).stem
    return media[file_id].content


def record_media(monkeypatch) -> dict:
    """Record every media file (images, downloads) the app hands to the browser, by URL file name.

    AppTest keeps them in an in-memory store it creates per run; recording them lets a test read
    what a download button would give the user.
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
