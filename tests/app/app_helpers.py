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


def batch_page():
    """A fresh app session switched to the Batch page."""
    at = new_app().run()
    at.switch_page("pages/batch.py").run()
    assert_no_exception(at)
    return at


def upload_and_run(at, files, labels_csv: bytes | None = None, **toggles):
    """On the Batch page: set the ``toggles`` (widget key: value), upload ``files`` [(name, bytes)] (and a labels
    CSV), press Analyse and wait for the results."""
    for key, value in toggles.items():
        at.toggle(key=key).set_value(value)
    at.file_uploader(key="batch_upload").set_value([(n, data, "application/octet-stream") for n, data in files])
    if labels_csv is not None:
        at.file_uploader(key="batch_labels").set_value(("labels.csv", labels_csv, "text/csv"))
    at.run()
    assert_no_exception(at)
    at.button(key="batch_start").click().run()
    assert_no_exception(at)
    return at


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
    """The bytes a download button serves (a deferred one's callable runs now, as a click would run it)."""
    file_id = button.proto.deferred_file_id or Path(button.proto.url).stem
    return media[file_id].content


def record_media(monkeypatch) -> dict:
    """Record every media file (images, downloads) the app hands to the browser, by URL file name.

    AppTest keeps them in an in-memory store it creates per run; recording them lets a test read
    what a download button would give the user. A deferred download (``data=`` a callable) is recorded
    by its placeholder id as a ``Deferred``: its ``content`` calls the app's callable.
    """
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    files: dict = {}

    class RecordingManager(MediaFileManager):
        def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
            file_id = super().add_deferred(data_callable, mimetype, coordinates, file_name=file_name, **kwargs)
            files[file_id] = Deferred(data_callable, file_name)
            return file_id

    class RecordingStorage(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            files[file_id] = self.get_file(file_id)
            return file_id

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordingStorage)
    monkeypatch.setattr(app_test, "MediaFileManager", RecordingManager)
    return files


class Deferred:
    """A deferred download as recorded by ``record_media``: its file name, and its bytes when asked for."""

    def __init__(self, make, filename):
        self.make, self.filename, self.calls = make, filename, 0

    @property
    def content(self) -> bytes:
        """What the app's callable returns now (counted in ``calls``)."""
        self.calls += 1
        data = self.make()
        return data.encode("utf-8") if isinstance(data, str) else data
