"""Faults: a broken model, an unusable review database, a failure inside one image of a batch.

For each fault the app (AppTest, the real pages) shows a clear message, raises nothing, keeps serving
(other pages render, other widgets work, the app recovers once the fault is gone), reveals no
file-system path or stack trace, and loses nothing already saved.

Model faults: missing, empty, truncated .keras and .h5, not a model, a folder, outputs that do not match
the card's labels, 5 outputs without a card, a broken card, a grayscale-input model.
Database faults: locked by another writer, read-only (file and folder, enforced by the kernel: as root
the test drops CAP_DAC_OVERRIDE for its own thread), not a database, damaged pages inside a real one, a
newer release's file and another application's SQLite file (refused, byte-for-byte untouched).
The database faults that exist on both backends (a held lock, an import, a restart, concurrent writers) run on
SQLite and PostgreSQL (the ``backend`` fixture); PostgreSQL adds a server that goes away mid-session (stopped
with ``pg_ctl stop -m immediate``) and comes back, a table locked against readers (busy, not a hang), and a role
that may only read. File modes, damaged pages and refused files are SQLite's and stay SQLite-only.
Batch faults: the model raising on one image of a chunk, a file reader raising, in the engine and on
the Batch page. Durability: the review log survives a restart (fresh store + new session here; a real
``streamlit run`` killed with SIGKILL and restarted in ``test_load_browser.py``), and a CSV import never
removes or overwrites what is stored (the Review log page has no replace path).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from robust_helpers import HAM, app, page_text
from shared_data import HAM_LABELS

import dermascan
from dermascan.inference.batch import bytes_sources, run_batch
from dermascan.reviews import CaseRecord, Decision, ReviewStore

SECRET_DIR = "secret-share-Zq81-dr.house"  # a folder name that must never reach the page
LOG = "pages/review_log.py"
MODEL_PAGE = "pages/model_card.py"


# -- fixtures ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """The good tiny model (with card) plus the raw material of the broken ones."""
    from dermascan._tf import keras

    folder = tmp_path_factory.mktemp("fault-models")
    good = app.build_tiny_model(folder)
    keras.utils.set_random_seed(0)

    def cnn(n_out: int, channels: int = 3):
        inp = keras.Input((32, 32, channels))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
        out = keras.layers.Dense(n_out, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
        return keras.Model(inp, out)

    cnn(5).save(folder / "five.keras")
    cnn(7, channels=1).save(folder / "gray.keras")
    cnn(7).save(folder / "legacy.h5")
    return {"good": good, "five": folder / "five.keras", "gray": folder / "gray.keras", "h5": folder / "legacy.h5"}


@pytest.fixture
def secret(tmp_path) -> Path:
    folder = tmp_path / SECRET_DIR
    folder.mkdir()
    return folder


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "reviews.sqlite3"
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(path))
    return path


@pytest.fixture
def any_db(new_db, backend, monkeypatch) -> Path | str:
    """A fresh review database on each backend (SQLite file, PostgreSQL schema), configured for the app."""
    location = new_db()
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(location))
    return location


def hidden(location: Path | str) -> list[str]:
    """What a page must never show of a database: an SQLite file's folder; a PostgreSQL URL and socket folder."""
    if isinstance(location, Path):
        return [str(location.parent)]
    import sqlalchemy as sa

    url = sa.make_url(location)
    return [str(location), url.render_as_string(hide_password=False), str(url.query.get("host", "")) or str(url)]


@pytest.fixture
def image() -> bytes:
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[0].read_bytes()


def assert_safe(at, *secrets: str) -> None:
    """No exception, no traceback, no secret (a folder) anywhere on the page."""
    app.assert_no_exception(at)
    text = page_text(at)
    assert "Traceback" not in text and 'File "/' not in text
    for secret in secrets:
        assert secret not in text, f"{secret!r} is shown on the page"


def upload(at, data: bytes, name: str = "lesion.jpg"):
    at.file_uploader(key="analyze_upload").set_value((name, data, "image/jpeg"))
    return at.run()


def submit_decision(at, management: str = "monitor"):
    key = next(r.key for r in at.radio if r.key and r.key.startswith("decision_") and r.key.endswith("_management"))
    at.radio(key=key).set_value(management)
    next(b for b in at.button if b.label == "Save to review log").click().run()
    return at


# -- model faults ------------------------------------------------------------------------------------------

def _make_fault(kind: str, folder: Path, models: dict) -> Path:
    good = models["good"]
    if kind == "missing":
        return folder / "model.keras"
    if kind == "empty":
        (folder / "model.h5").write_bytes(b"")
        return folder / "model.h5"
    if kind == "truncated-keras":
        data = good.read_bytes()
        (folder / "model.keras").write_bytes(data[: len(data) // 3])
        return folder / "model.keras"
    if kind == "truncated-h5":
        data = models["h5"].read_bytes()
        (folder / "model.h5").write_bytes(data[: len(data) // 2])
        shutil.copy(good.with_name("tiny.card.json"), folder / "model.card.json")
        return folder / "model.h5"
    if kind == "not-a-model":
        (folder / "model.keras").write_text("this is a clinic's spreadsheet, not a model\n" * 50)
        return folder / "model.keras"
    if kind == "folder":
        (folder / "model.keras").mkdir()
        return folder / "model.keras"
    if kind == "outputs-do-not-match-labels":
        shutil.copy(models["five"], folder / "model.keras")
        (folder / "model.card.json").write_text(json.dumps({"labels": HAM_LABELS}))
        return folder / "model.keras"
    if kind == "five-outputs-no-card":
        shutil.copy(models["five"], folder / "model.keras")
        return folder / "model.keras"
    if kind == "broken-card":
        shutil.copy(good, folder / "model.keras")
        (folder / "model.card.json").write_text('{"labels": ["akiec", "bcc"')
        return folder / "model.keras"
    if kind == "grayscale-input":
        shutil.copy(models["gray"], folder / "model.keras")
        return folder / "model.keras"
    raise AssertionError(kind)


MODEL_FAULTS = ["missing", "empty", "truncated-keras", "truncated-h5", "not-a-model", "folder",
                "outputs-do-not-match-labels", "five-outputs-no-card", "broken-card", "grayscale-input"]


@pytest.mark.parametrize("kind", MODEL_FAULTS)
def test_a_broken_model_is_a_clear_message_and_the_app_recovers(kind, models, secret, db, monkeypatch, image):
    bad = _make_fault(kind, secret, models)
    monkeypatch.setenv("DERMASCAN_MODEL", str(bad))
    monkeypatch.setenv("DERMASCAN_MODELS_DIR", str(models["good"].parent))
    at = app.new_app().run()
    assert_safe(at, SECRET_DIR, str(secret))
    [message] = [app.as_shown(e.value) for e in at.main.error]
    assert message.startswith("No model is loaded:") and "models folder" in message  # what happened, what to do
    assert at.sidebar.error  # the sidebar says so on every page
    # Other widgets still work: choosing a good model in the sidebar recovers without a restart.
    at.selectbox(key="ds_model_select").select(models["good"].name).run()
    assert_safe(at, SECRET_DIR)
    assert not at.main.error
    upload(at, image)
    assert_safe(at, SECRET_DIR)
    assert len(at.dataframe[0].value) == 7


@pytest.mark.parametrize("kind", ["truncated-keras", "outputs-do-not-match-labels"])
def test_every_other_page_keeps_serving_without_a_model(kind, models, secret, db, monkeypatch):
    monkeypatch.setenv("DERMASCAN_MODEL", str(_make_fault(kind, secret, models)))
    _seed(db)
    for page in (LOG, MODEL_PAGE, "pages/batch.py", "pages/compare.py"):
        at = app.new_app()
        at.switch_page(page).run()
        assert_safe(at, SECRET_DIR, str(secret))
        if page == LOG:  # the review log needs no model: it lists and exports what is stored
            assert len(at.dataframe[0].value) == 2 and at.get("download_button")
        else:  # says why there is nothing to show (an error, or the Model page's info)
            assert any("No model is loaded" in m.value for m in [*at.error, *at.info])


def test_a_model_that_appears_later_is_picked_up_without_a_restart(models, secret, db, monkeypatch):
    path = secret / "model.keras"
    monkeypatch.setenv("DERMASCAN_MODEL", str(path))
    at = app.new_app().run()
    assert_safe(at, SECRET_DIR)
    assert at.main.error  # missing: failures are not cached
    shutil.copy(models["good"], path)
    shutil.copy(models["good"].with_name("tiny.card.json"), secret / "model.card.json")
    at.run()
    assert_safe(at, SECRET_DIR)
    assert not at.main.error and at.file_uploader(key="analyze_upload")


# -- review database faults --------------------------------------------------------------------------------

def _seed(path: Path | str, n: int = 2) -> list[int]:
    ids = []
    with ReviewStore(path) as store:
        for i in range(n):
            ids.append(store.add_case(CaseRecord(
                image_sha256=f"{i:02x}" * 32, top_label="nv", file_name=f"earlier-{i}.jpg", session_id="other",
                created_at=f"2025-01-0{i + 1}T09:00:00Z", model_version="test-1", probabilities={"nv": 1.0},
                decision=Decision(management="monitor", note=f"kept-{i}", decided_at=f"2025-01-0{i + 1}T10:00:00Z"))))
    return ids


def _everything(path: Path | str) -> list:
    with ReviewStore(path) as store:
        return [(c.key, c.file_name, c.decision, store.decision_history(c.case_id)) for c in store.list_cases()]


@contextlib.contextmanager
def _write_lock(location: Path | str):
    """Another writer holding the database's write lock (as a second server process would while saving).

    SQLite: ``BEGIN IMMEDIATE`` on the file. PostgreSQL: the cases table locked against every write (``EXCLUSIVE``
    still lets readers in, as a long import's row locks would).
    """
    if isinstance(location, Path):
        conn = sqlite3.connect(location, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = _pg_admin(location)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("LOCK TABLE cases IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def _pg_admin(url: str):
    import sqlalchemy as sa

    return sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool)


def test_a_locked_database_keeps_the_result_and_the_decision_until_it_is_free(models, any_db, monkeypatch, image):
    db = any_db
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    # The app waits DEFAULT_BUSY_TIMEOUT (5 s) for another writer; 1 s keeps this test short.
    monkeypatch.setattr("dashboard.review_store.ReviewStore", functools.partial(ReviewStore, busy_timeout=1.0))
    saved = _seed(db)
    before = _everything(db)
    at = app.new_app().run()
    with _write_lock(db):
        upload(at, image)
        assert_safe(at, *hidden(db))
        assert len(at.dataframe[0].value) == 7  # the AI result is shown anyway
        assert any("busy" in w.value and "not in the review log yet" in w.value for w in at.warning)
        submit_decision(at, "excise")
        assert_safe(at, *hidden(db))
        assert any("kept in this session" in e.value for e in at.error)
        reader = app.new_app()  # another session reads meanwhile: WAL readers never wait for a writer
        reader.switch_page(LOG).run()
        assert_safe(reader, *hidden(db))
        assert len(reader.dataframe[0].value) == 2
    at.run()  # the lock is gone: the case is added on the next rerun, the typed decision waits for a click
    next(b for b in at.button if b.label == "Retry saving").click().run()
    assert_safe(at, *hidden(db))
    after = _everything(db)
    assert all(item in after for item in before)
    with ReviewStore(db) as store:
        new = [c for c in store.list_cases() if c.case_id not in saved]
    assert len(new) == 1 and new[0].decision.management == "excise"


class _Caps:
    """Drop CAP_DAC_OVERRIDE / CAP_FOWNER from this thread's effective set (threads it starts inherit it).

    As root the kernel otherwise ignores file modes, so a read-only database would not be read-only.
    """

    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    _V3, _MASK = 0x20080522, (1 << 1) | (1 << 3)

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)

    def _get(self):
        header, data = self._Header(self._V3, 0), (self._Data * 2)()
        if self.libc.capget(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capget")
        return header, data

    def _set(self, header, data):
        if self.libc.capset(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capset")

    @contextlib.contextmanager
    def files_modes_enforced(self):
        if os.geteuid() != 0:
            yield
            return
        try:
            header, data = self._get()
            saved = data[0].effective
            data[0].effective &= ~self._MASK
            self._set(header, data)
        except (OSError, AttributeError):  # no capget/capset here
            pytest.skip("cannot drop CAP_DAC_OVERRIDE, so root would ignore the read-only modes")
        try:
            yield
        finally:
            header, data = self._get()
            data[0].effective = saved
            self._set(header, data)


@pytest.mark.parametrize("what", ["file", "file-and-folder"])
def test_a_read_only_database_is_reported_and_left_untouched(models, db, monkeypatch, image, what):
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    _seed(db)
    before, raw = _everything(db), db.read_bytes()
    db.chmod(0o444)
    if what == "file-and-folder":
        db.parent.chmod(0o555)
    try:
        with _Caps().files_modes_enforced():
            with pytest.raises(PermissionError):  # the kernel really refuses writes now
                open(db, "r+b").close()  # noqa: SIM115
            at = app.new_app()
            at.switch_page(LOG).run()
            assert_safe(at, str(db.parent))
            if what == "file":
                # SQLite opens a read-only file read-only: the log is readable, every write is refused clearly.
                assert len(at.dataframe[0].value) == 2 and not at.error
                at.session_state["log_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
                at.run()
                case_id = int(at.dataframe[0].value["Case"].iloc[0])
                at.radio(key=f"log_decision_{case_id}_management").set_value("excise")
                next(b for b in at.button if b.label == "Save to review log").click().run()
                assert_safe(at, str(db.parent))
                assert any("read-only" in app.as_shown(e.value) and "kept in this session" in e.value for e in at.error)
            else:
                # A read-only folder: SQLite cannot even create the WAL index, so the log cannot be opened.
                [message] = [app.as_shown(e.value) for e in at.main.error]
                assert "read-only" in message and "reviews.sqlite3" in message and "DERMASCAN_REVIEW_DB" in message
            analyze = app.new_app().run()
            upload(analyze, image)
            assert_safe(analyze, str(db.parent))
            assert len(analyze.dataframe[0].value) == 7  # analysing still works
            assert any("not in the review log yet" in w.value and "read-only" in app.as_shown(w.value)
                       for w in analyze.warning)
            submit_decision(analyze)
            assert_safe(analyze, str(db.parent))
            assert any("kept in this session" in e.value for e in analyze.error)
    finally:
        db.parent.chmod(0o755)
        db.chmod(0o600)
    assert db.read_bytes() == raw and _everything(db) == before


def test_a_file_that_is_not_a_database_is_reported_and_never_overwritten(models, db, monkeypatch, image):
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    raw = b"clinic notes, not a database\n" * 200
    db.write_bytes(raw)
    at = app.new_app()
    at.switch_page(LOG).run()
    assert_safe(at, str(db.parent))
    [message] = [app.as_shown(e.value) for e in at.main.error]
    assert "not a readable review database" in message and "left untouched" in message
    at.switch_page("pages/analyze.py").run()
    upload(at, image)
    assert_safe(at, str(db.parent))
    assert len(at.dataframe[0].value) == 7
    assert db.read_bytes() == raw


@pytest.mark.parametrize("kind", ["newer-release", "another-application"])
def test_a_refused_database_is_reported_and_left_byte_for_byte_untouched(models, db, monkeypatch, kind):
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    raw = sqlite3.connect(db)
    if kind == "newer-release":  # what a newer DermaScan leaves behind: WAL mode, a higher schema version
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("CREATE TABLE cases (case_id INTEGER PRIMARY KEY, colour_profile TEXT)")
        raw.execute("PRAGMA user_version = 99")
    else:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT)")
        raw.execute("INSERT INTO invoices VALUES (1, 'ACME')")
    raw.commit()
    raw.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    at = app.new_app()
    at.switch_page(LOG).run()
    assert_safe(at, str(db.parent))
    [message] = [app.as_shown(e.value) for e in at.main.error]
    assert "\n" not in message and "reviews.sqlite3" in message
    assert ("newer version" if kind == "newer-release" else "another application") in message
    at.switch_page("pages/analyze.py").run()  # the app keeps serving
    assert_safe(at, str(db.parent))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in db.parent.iterdir()) == ["reviews.sqlite3"]  # no -wal, -shm or journal


def test_damaged_pages_inside_a_real_database_are_reported(models, db, monkeypatch):
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    with ReviewStore(db) as store:  # enough cases for the table to span several pages
        for i in range(60):
            store.add_case(CaseRecord(image_sha256=f"{i:064x}", top_label="nv", explanation="x" * 800,
                                      created_at=f"2025-01-01T00:00:{i:02d}Z", probabilities={"nv": 1.0}))
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    for offset in range(2 * page, len(data), 3 * page):  # page 1 (schema) intact, data pages scrambled
        data[offset : offset + page] = bytes((offset + i) * 7 % 256 for i in range(page))
    db.write_bytes(bytes(data))
    at = app.new_app()
    at.switch_page(LOG).run()
    assert_safe(at, str(db.parent))
    assert any("not a readable review database" in e.value or "could not be read" in e.value for e in at.error)
    assert db.read_bytes() == bytes(data)  # reported, never "repaired" by deleting


def test_a_silently_damaged_row_does_not_take_the_review_log_down(models, db, monkeypatch):
    # SQLite has no checksums: a flipped byte inside a row is read back as valid text. One bad row must not
    # make the whole log unreadable.
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    _seed(db, 3)
    raw = db.read_bytes()
    sha = ("01" * 32).encode()
    assert raw.count(sha) >= 1
    db.write_bytes(raw.replace(sha, b"Z" + sha[1:]))  # case 2's image hash is no longer hexadecimal
    at = app.new_app()
    at.switch_page(LOG).run()
    assert_safe(at, str(db.parent))
    assert any("not a readable review database" in e.value for e in at.error)


def test_the_review_log_survives_a_restart(models, any_db, monkeypatch, image):
    import streamlit as st

    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    at = upload(app.new_app().run(), image, "before-restart.jpg")
    submit_decision(at, "biopsy")
    assert_safe(at)
    st.cache_resource.clear()  # what a restart does: the shared model and store objects are gone
    fresh = app.new_app()
    fresh.switch_page(LOG).run()
    assert_safe(fresh)
    log = fresh.dataframe[0].value
    assert list(log["File"]) == ["before-restart.jpg"] and list(log["Management"]) == ["Biopsy"]


def test_an_import_adds_and_updates_only_and_the_page_offers_no_replace(models, any_db, monkeypatch, tmp_path):
    db = any_db
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    _seed(db)
    before = _everything(db)
    other = tmp_path / "other.sqlite3"
    with ReviewStore(other) as store:
        for i in range(3):
            store.add_case(CaseRecord(image_sha256=f"{i + 10:02x}" * 32, top_label="mel", file_name=f"imported-{i}.jpg",
                                      created_at=f"2025-02-0{i + 1}T09:00:00Z", probabilities={"mel": 1.0}))
        # The same case as one stored, with an *older* decision: it must not replace the stored one.
        store.add_case(CaseRecord(image_sha256="00" * 32, top_label="nv", file_name="earlier-0.jpg",
                                  created_at="2025-01-01T09:00:00Z", model_version="test-1",
                                  probabilities={"nv": 1.0},
                                  decision=Decision(management="excise", reviewer="[dr.x](http://evil.invalid)",
                                                    decided_at="2024-12-31T00:00:00Z")))
        data = store.export_csv()
    at = app.new_app()
    at.switch_page(LOG).run()
    labels = " ".join(str(getattr(w, "label", "")) for kind in ("button", "checkbox", "toggle", "radio")
                      for w in at.get(kind)).lower()
    assert not any(word in labels for word in ("replace", "wipe", "delete", "clear", "overwrite"))
    at.file_uploader(key="log_import").set_value(("other.csv", data, "text/csv")).run()
    next(b for b in at.button if b.label == "Import CSV").click().run()
    assert_safe(at, *hidden(db))
    assert any("3 new case(s) imported" in s.value for s in at.success)
    # The case whose decisions the import touched is listed, user strings as plain text (no link).
    [listed] = [m.value for m in at.markdown if "kept in the history only" in m.value]
    assert "earlier\\-0\\.jpg" in listed and "\\[dr\\.x\\]\\(http" in listed and "excise" in listed
    after = _everything(db)
    assert len(after) == len(before) + 3
    for key, name, decision, history in before:
        match = next(item for item in after if item[0] == key)
        assert match[1] == name and match[2] == decision  # the stored (newer) decision stays current
        assert all(h in match[3] for h in history)
    assert len(at.dataframe[0].value) == 5


# -- PostgreSQL only: a server that goes away, a role that may only read ------------------------------------

@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own (so it can be crashed), with durable commits; stopped afterwards."""
    import pg_server

    try:
        server = pg_server.start(durable=True)
    except pg_server.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _one_line_error(call) -> str:
    from dermascan.reviews import ReviewStoreError

    with pytest.raises(ReviewStoreError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_server_that_goes_away_mid_session_is_a_one_line_error_and_the_store_recovers(models, own_server,
                                                                                       monkeypatch):
    url = own_server.url.replace("postgresql://postgres@", "postgresql://postgres:pw-Zq81-secret@")
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", url)
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    store = ReviewStore(url, busy_timeout=1.0)
    [case_id] = _seed(url, 1)
    assert store.get_case(case_id) is not None  # the pool holds a live connection now
    page = app.new_app()
    page.switch_page(LOG).run()
    assert len(page.dataframe[0].value) == 1
    own_server.crash()
    new_case = CaseRecord(image_sha256="cd" * 32, top_label="mel", probabilities={"mel": 1.0})
    calls = [lambda: store.get_case(case_id), store.list_cases, store.count_cases, lambda: store.add_case(new_case),
             lambda: store.save_decision(case_id, Decision(management="excise")), store.export_csv]
    for call in calls:
        message = _one_line_error(call)
        assert "cannot be reached" in message and "pw-Zq81-secret" not in message
        assert str(own_server.folder) not in message
    page.run()  # the shared store of the app meets the same: a message, no traceback, the page keeps serving
    assert_safe(page, str(own_server.folder), "pw-Zq81-secret")
    assert any("cannot be reached" in app.as_shown(e.value) for e in page.error)
    own_server.restart()
    # The pool's dead connections are replaced on the next call: no restart of the app, nothing lost.
    assert store.get_case(case_id).decision.note == "kept-0"
    assert store.add_case(new_case) != case_id
    assert store.save_decision(case_id, Decision(management="excise")).management == "excise"
    page.run()
    assert_safe(page, str(own_server.folder), "pw-Zq81-secret")
    assert len(page.dataframe[0].value) == 2 and not page.error
    store.close()


def test_a_role_that_may_only_read_gets_a_one_line_message_and_nothing_is_lost(models, new_db, backend,
                                                                                 monkeypatch, image):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only (SQLite's read-only file: test_a_read_only_database_is_reported...)")
    import uuid

    import sqlalchemy as sa

    owner = new_db()
    ids = _seed(owner)
    before = _everything(owner)
    role, schema = f"reader_{uuid.uuid4().hex[:12]}", sa.make_url(owner).query["options"].split("=", 1)[1]
    admin = _pg_admin(owner)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    reader = sa.make_url(owner).set(username=role).render_as_string(hide_password=False)
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", reader)
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    try:
        with ReviewStore(reader) as store:  # it opens and reads; every write is one line naming what to do
            assert store.count_cases() == 2
            message = _one_line_error(lambda: store.save_decision(ids[0], Decision(note="x")))
            assert "may not use the review tables" in message and "grant it access" in message
        at = app.new_app()
        at.switch_page(LOG).run()
        assert_safe(at, *hidden(reader))
        assert len(at.dataframe[0].value) == 2 and not at.error
        at.session_state["log_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
        at.run()
        case_id = int(at.dataframe[0].value["Case"].iloc[0])
        at.radio(key=f"log_decision_{case_id}_management").set_value("excise")
        next(b for b in at.button if b.label == "Save to review log").click().run()
        assert_safe(at, *hidden(reader))
        assert any("may not use" in app.as_shown(e.value) and "kept in this session" in e.value for e in at.error)
        analyze = upload(app.new_app().run(), image)
        assert_safe(analyze, *hidden(reader))
        assert len(analyze.dataframe[0].value) == 7  # analysing still works
    finally:
        import streamlit as st

        st.cache_resource.clear()  # the app's store holds the role's connections
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()
    assert _everything(owner) == before


def test_a_table_locked_against_readers_is_a_busy_message_not_a_hang_on_postgresql(new_db, backend):
    # An administrator's ALTER TABLE or VACUUM FULL locks out readers too (SQLite's WAL readers never wait).
    if backend != "postgresql":
        pytest.skip("PostgreSQL only (SQLite readers never wait: test_a_locked_database_keeps_the_result...)")
    url = new_db()
    [case_id] = _seed(url, 1)
    admin = _pg_admin(url)
    with ReviewStore(url, busy_timeout=0.3) as store, admin.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
        for call in (lambda: store.get_case(case_id), store.list_cases, store.count_cases,
                     lambda: store.save_decision(case_id, Decision(management="excise"))):
            assert "busy" in _one_line_error(call)
        conn.rollback()
        assert store.save_decision(case_id, Decision(management="excise")).management == "excise"
    admin.dispose()


def test_a_read_only_store_on_postgresql_refuses_writes_in_one_line(new_db, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only (SQLite: tests/reviews/test_store.py)")
    url = new_db()
    [case_id] = _seed(url, 1)
    with ReviewStore(url, read_only=True) as store:
        assert store.get_case(case_id).decision.note == "kept-0"
        message = _one_line_error(lambda: store.save_decision(case_id, Decision(management="excise")))
        assert "read-only" in message
    assert _everything(url)[0][2].note == "kept-0"



# -- one image failing inside a batch ----------------------------------------------------------------------

def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 80), colour).save(buf, format="PNG")
    return buf.getvalue()


POISON = _png((13, 13, 13))  # the patched model raises on any chunk holding this (uniform) image


def _poisoned(original):
    def explain_prepared(self, x, *args, **kwargs):
        if any(float(np.ptp(xi)) == 0.0 for xi in np.asarray(x)):
            raise RuntimeError("simulated failure inside the model on one image")
        return original(self, x, *args, **kwargs)

    return explain_prepared


def test_one_failing_image_costs_that_image_only_in_the_engine(models, monkeypatch):
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    model = dermascan.load_model(models["good"])
    good = [(p.name, p.read_bytes()) for p in sorted((HAM / "images").glob("ISIC_*.jpg"))[:5]]
    alone = {name: model.analyze(data, name=name) for name, data in good}
    monkeypatch.setattr(dermascan.model.lesion.LesionModel, "explain_prepared",
                        _poisoned(dermascan.model.lesion.LesionModel.explain_prepared))

    def exploding_reader():
        raise MemoryError("simulated: the upload vanished")

    sources = bytes_sources(good[:2] + [("poison.png", POISON)] + good[2:])
    sources.insert(4, ("reader.jpg", exploding_reader))
    sources.append(("junk.jpg", lambda: b"\xff\xd8 not a jpeg"))
    items = list(run_batch(model, sources, chunk_size=4))
    assert [i.name for i in items] == [name for name, _ in sources]  # one row each, in order
    errors = {i.name: i.error for i in items if i.error}
    assert set(errors) == {"poison.png", "reader.jpg", "junk.jpg"}
    assert errors["poison.png"] == "The model could not analyse this image."
    assert all("\n" not in e and "Traceback" not in e and "simulated" not in e for e in errors.values())
    for item in items:
        if item.error is None:
            np.testing.assert_allclose(item.analysis.probabilities, alone[item.name].probabilities, atol=1e-5)


def test_one_failing_image_on_the_batch_page(models, db, monkeypatch):
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    monkeypatch.setenv("DERMASCAN_MODEL", str(models["good"]))
    monkeypatch.setattr(dermascan.model.lesion.LesionModel, "explain_prepared",
                        _poisoned(dermascan.model.lesion.LesionModel.explain_prepared))
    files = [(p.name, p.read_bytes()) for p in sorted((HAM / "images").glob("ISIC_*.jpg"))[:5]]
    files.insert(2, ("poison.png", POISON))
    at = app.new_app().run()
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value([(n, d, "application/octet-stream") for n, d in files]).run()
    at.button(key="batch_start").click().run()
    assert_safe(at, str(db.parent))
    errors = next(d.value for d in at.dataframe if list(d.value.columns) == ["File", "Problem"])
    assert list(errors["File"]) == ["poison.png"]
    assert len(at.dataframe(key="batch_table").value) == 5
    at.slider(key="batch_min_score").set_value(0.5).run()  # the page keeps working
    assert_safe(at, str(db.parent))
    assert ReviewStore(db).count_cases() == 5  # every good image reached the review log


def test_concurrent_writers_on_one_database_lose_nothing(new_db, backend):
    # Two server processes (or two stores) on one database: every write lands, none is lost.
    path = new_db()
    stores = [ReviewStore(path), ReviewStore(path)]
    errors: list = []

    def writer(w: int):
        try:
            for i in range(25):
                case_id = stores[w].add_case(CaseRecord(image_sha256=f"{w}{i:063x}", top_label="nv",
                                                        probabilities={"nv": 1.0}))
                stores[w].save_decision(case_id, Decision(management="monitor", note=f"{w}-{i}"))
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)  # a deadlock guard, not a speed bound
    assert not errors and not any(t.is_alive() for t in threads)
    with ReviewStore(path) as check:
        cases = check.list_cases()
        assert len(cases) == 50 and all(c.decision is not None for c in cases)
    for s in stores:
        s.close()
    if backend == "sqlite":  # SQLite only: the file keeps its private mode through concurrent opens
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
