"""Security: upload limits, nothing sensitive in logs, no paths in messages, safe CSV, a private database, XSRF on.

- Uploads are limited by size and pixel count in the Streamlit config *and* in the engine (a client that
  bypasses the browser's check still meets the engine's; the live server's own 413/403 are checked in
  ``test_load_browser.py``).
- A full analysis (case fields, decision, review log, export) and a batch (PNG, TIFF, JPEG, a broken file)
  with every log record captured (root at DEBUG, Streamlit's own loggers at DEBUG, PIL / TensorFlow as the
  app leaves them) plus the process's stderr and warnings: no case field, file name, base64 image data,
  ``data:image`` or raw byte repr in any of it.
- Messages show no directory (model, database, CLI); the fault tests assert it on every page too.
- CSV exports (batch table, CLI batch, review log, its filtered view) neutralise = + - @ TAB CR.
- The review database, its WAL files and its folder are private (0600 / 0700), whatever the umask (SQLite only).
- The review store on both backends (the ``backend`` fixture): SQL injection through every text field, the
  search box and the CSV import is stored and found as plain text and leaves every table intact; a
  PostgreSQL password in the URL never reaches a message, a page or a log line.
- XSRF protection is on, in the file and as Streamlit itself reads it.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import os
import re
import stat
import subprocess
import sys
import tomllib
import traceback
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from robust_helpers import HAM, REPO, app, fuzz_examples, fuzz_settings, page_text
from shared_data import HAM_LABELS

from dermascan.csvsafe import FORMULA_PREFIXES
from dermascan.errors import InvalidImage
from dermascan.intake.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image
from dermascan.reviews import CaseRecord, Decision, ReviewStore
from dermascan.reviews.csvio import csv_header, to_csv_bytes

MB = 1024 * 1024
MARKERS = {  # distinctive values typed into every case field; none may reach a log
    "patient": "PATIENT-ZX81-marker", "lesion": "LESION-QW72-marker", "site": "SITE-LK33-marker",
    "note": "NOTE-PO55-marker", "reviewer": "REVIEWER-MN44-marker", "file": "FILENAME-JH66-marker",
}
DANGEROUS = tuple(FORMULA_PREFIXES)
assert set(DANGEROUS) == {"=", "+", "-", "@", "\t", "\r"}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return app.build_tiny_model(tmp_path_factory.mktemp("security-model"))


@pytest.fixture
def any_env(model, new_db, backend, monkeypatch) -> Path | str:
    """``env`` on each backend: an SQLite file or a PostgreSQL schema, configured for the app."""
    db = new_db()
    monkeypatch.setenv("DERMASCAN_MODEL", str(model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(db))
    return db


@pytest.fixture
def env(model, tmp_path, monkeypatch) -> Path:
    db = tmp_path / "reviews.sqlite3"
    monkeypatch.setenv("DERMASCAN_MODEL", str(model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(db))
    return db


def ham(n: int = 1) -> list[Path]:
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[:n]


def encode(path: Path, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    with Image.open(path) as img:
        img.convert("RGB").save(buf, format=fmt, **kwargs)
    return buf.getvalue()


# -- upload limits -----------------------------------------------------------------------------------------

def test_config_limits_uploads_and_keeps_xsrf_and_error_details_safe():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server, client = config["server"], config["client"]
    assert server["enableXsrfProtection"] is True
    assert server.get("enableCORS", True) is True  # never switched off (it would weaken the XSRF check)
    assert server["maxUploadSize"] * MB == DEFAULT_MAX_BYTES  # the browser refuses what the engine would
    assert client["showErrorDetails"] == "none"  # no tracebacks in the browser
    assert client["disableDataExport"] is True  # the grid's CSV download would not neutralise formulas
    analyze = (REPO / "pages" / "analyze.py").read_text()
    assert "max_upload_size=MAX_UPLOAD_MB" in analyze


def test_streamlit_itself_reads_these_settings():
    out = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    values = dict(re.findall(r"^(\w+) = (.+)$", out, re.M))
    assert values["enableXsrfProtection"] == "true"
    assert values["maxUploadSize"] == str(DEFAULT_MAX_BYTES // MB)
    assert values["showErrorDetails"] == '"none"'
    assert values["disableDataExport"] == "true"


def test_engine_refuses_oversized_and_overlarge_images_before_decoding():
    with pytest.raises(InvalidImage, match="larger than the 8 MB limit"):
        read_image(b"\xff\xd8\xff" + b"\x00" * DEFAULT_MAX_BYTES)
    side = int(DEFAULT_MAX_PIXELS**0.5) + 1
    with pytest.raises(InvalidImage, match="too large"):
        read_image(_png_header(side, side))


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", b"") + chunk(b"IEND", b""))


def test_the_pages_enforce_the_engine_limits_even_when_the_http_limit_is_bypassed(env):
    # AppTest hands the bytes straight to the page, as a client that skips the browser's check would.
    at = app.new_app().run()
    at.file_uploader(key="analyze_upload").set_value(("huge.jpg", b"\xff\xd8\xff" + b"\0" * (9 * MB), "image/jpeg"))
    at.run()
    app.assert_no_exception(at)
    assert any("larger than the 8 MB limit" in e.value for e in at.error) and not at.get("metric")
    side = int(DEFAULT_MAX_PIXELS**0.5) + 1
    at.file_uploader(key="analyze_upload").set_value(("bomb.png", _png_header(side, side), "image/png"))
    at.run()
    app.assert_no_exception(at)
    assert any("too large" in e.value and "megapixels" in e.value for e in at.error)
    batch = app.new_app()
    batch.switch_page("pages/batch.py").run()
    batch.file_uploader(key="batch_upload").set_value([("huge.jpg", b"\xff\xd8\xff" + b"\0" * (9 * MB), "image/jpeg")])
    batch.run()
    batch.button(key="batch_start").click().run()
    app.assert_no_exception(batch)
    errors = next(d.value for d in batch.dataframe if list(d.value.columns) == ["File", "Problem"])
    assert "larger than the 8 MB limit" in errors["Problem"].iloc[0]


# -- nothing sensitive in the logs -------------------------------------------------------------------------

class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string still shows its parts
            message = f"{record.msg!r} {record.args!r}"
        self.lines.append(f"{record.name}:{record.levelname}:{message}")
        if record.exc_info:
            self.lines.append("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            self.lines.append(record.stack_info)


@pytest.fixture
def all_logs():
    """Every log record at DEBUG: the root logger, and each logger that does not propagate (Streamlit's)."""
    import streamlit.logger

    capture = _Capture()
    root = logging.getLogger()
    saved_root = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(capture)
    streamlit.logger.set_log_level("debug")  # what `streamlit run --logger.level=debug` does
    isolated = [lg for lg in logging.root.manager.loggerDict.values()
                if isinstance(lg, logging.Logger) and not lg.propagate]
    for logger in isolated:
        logger.addHandler(capture)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield capture, caught
    finally:
        for logger in isolated:
            logger.removeHandler(capture)
        streamlit.logger.set_log_level("info")
        root.removeHandler(capture)
        root.setLevel(saved_root)


BYTES_REPR = re.compile(r"""\bb(['"]).{0,400}?\1|\\x[0-9a-fA-F]{2}""")


def assert_clean(text: str, uploads: list[bytes]) -> None:
    for name, marker in MARKERS.items():
        assert marker not in text, f"the {name} marker reached the logs"
    assert "data:image" not in text
    for data in uploads:
        head = base64.b64encode(data[:48]).decode()  # the first 64 characters of the file's base64
        assert head not in text, "an image's base64 reached the logs"
    leaked = BYTES_REPR.search(text)
    assert leaked is None, f"raw bytes in the logs: {text[max(0, leaked.start() - 80) : leaked.end() + 40]!r}"


def test_a_full_analysis_and_a_batch_log_no_case_data_and_no_image_data(env, all_logs, capfd):
    capture, caught = all_logs
    jpeg = ham(3)
    png = encode(jpeg[0], "PNG")
    tiff = encode(jpeg[1], "TIFF", compression="tiff_deflate", dpi=(300, 300))
    uploads = [png, tiff, jpeg[2].read_bytes()]

    at = app.new_app().run()
    at.text_input(key="case_patient_id").input(MARKERS["patient"])
    at.text_input(key="case_lesion_id").input(MARKERS["lesion"])
    at.text_input(key="case_body_site").input(MARKERS["site"])
    at.number_input(key="case_age").set_value(57)
    at.file_uploader(key="analyze_upload").set_value((f"{MARKERS['file']}.png", png, "image/png"))
    at.run()
    app.assert_no_exception(at)
    selector = next(s for s in at.selectbox if s.label == "Heatmap for class")
    selector.set_value(next(o for o in selector.options if o != selector.value)).run()
    at.slider(key="overlay_alpha").set_value(0.8).run()
    management = next(r.key for r in at.radio if r.key and r.key.endswith("_management"))
    at.radio(key=management).set_value("excise")
    at.text_area(key=management.replace("_management", "_note")).input(MARKERS["note"])
    at.text_input(key=management.replace("_management", "_reviewer")).input(MARKERS["reviewer"])
    next(b for b in at.button if b.label == "Save to review log").click().run()
    app.assert_no_exception(at)
    [case] = ReviewStore(env).list_cases()
    assert case.patient_id == MARKERS["patient"] and case.decision.note == MARKERS["note"]  # they were saved

    log = app.new_app()
    log.switch_page("pages/review_log.py").run()
    log.session_state["log_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    log.run()
    app.assert_no_exception(log)

    batch = app.new_app()
    batch.switch_page("pages/batch.py").run()
    batch.file_uploader(key="batch_upload").set_value([
        (f"{MARKERS['file']}-1.png", png, "image/png"), (f"{MARKERS['file']}-2.tif", tiff, "image/tiff"),
        (f"{MARKERS['file']}-3.jpg", uploads[2], "image/jpeg"), (f"{MARKERS['file']}-4.jpg", b"\xff\xd8junk", "x")])
    batch.run()
    batch.button(key="batch_start").click().run()
    app.assert_no_exception(batch)
    assert len(batch.dataframe(key="batch_table").value) == 3

    out, err = capfd.readouterr()
    text = "\n".join([*capture.lines, out, err, *(str(w.message) for w in caught)])
    assert capture.lines  # the capture works (the app does log, at INFO and DEBUG)
    assert_clean(text, uploads)


def test_pillow_debug_logging_is_kept_out_of_the_app_logs():
    # Pillow's PNG and TIFF plugins log chunk names and tag values as raw bytes at DEBUG; the engine raises
    # the "PIL" logger to INFO so a root logger at DEBUG (a common deployment setting) never shows them.
    import dermascan.intake.images  # noqa: F401 - the engine sets the level on import

    assert logging.getLogger("PIL").getEffectiveLevel() >= logging.INFO


# -- no paths in messages ----------------------------------------------------------------------------------

def test_cli_errors_name_files_not_folders(tmp_path, capsys, model):
    from dermascan.cli import main

    secret = tmp_path / "secret-folder-Kq3"
    secret.mkdir()
    assert main(["analyze", str(secret / "lesion.jpg"), "--model", str(secret / "model.keras")]) == 2
    assert main(["analyze", str(secret / "lesion.jpg"), "--model", str(model)]) == 2
    (secret / "corrupt.jpg").write_bytes(b"\xff\xd8 broken")
    assert main(["analyze", str(secret / "corrupt.jpg"), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "model.keras" in err and "lesion.jpg" in err and "corrupt.jpg" in err
    assert "secret-folder-Kq3" not in err and "Traceback" not in err


def test_database_messages_name_the_file_not_the_folder(tmp_path):
    from dermascan.reviews import ReviewStoreError

    secret = tmp_path / "secret-folder-Vb2"
    secret.mkdir()
    (secret / "reviews.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(ReviewStoreError) as corrupt:
        ReviewStore(secret / "reviews.sqlite3")
    (secret / "afile").write_text("x")
    with pytest.raises(ReviewStoreError) as cannot:
        ReviewStore(secret / "afile" / "reviews.sqlite3")  # the "folder" is a file
    for exc in (corrupt.value, cannot.value):
        assert "reviews.sqlite3" in str(exc) and "secret-folder-Vb2" not in str(exc) and str(tmp_path) not in str(exc)


# -- CSV formula injection ---------------------------------------------------------------------------------

def formula_text():
    return st.one_of(st.text(max_size=20), st.sampled_from(DANGEROUS).flatmap(
        lambda p: st.text(max_size=20).map(lambda t: p + t)), st.just("'=quoted"), st.just("-12"))


def cells_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_neutral(rows: list[dict[str, str]], text_columns) -> None:
    for row in rows:
        for column in text_columns:
            assert not row[column].startswith(DANGEROUS), (column, row[column])


@fuzz_settings(150)
@given(name=formula_text(), error=formula_text(), label=formula_text().filter(bool), top=formula_text())
def test_batch_csv_neutralises_every_text_cell(name, error, label, top):
    from dashboard.batch_export import table_csv

    name, error, label, top = (t.replace("\x00", "") for t in (name, error, label, top))  # records refuse NUL
    labels = [label or "x", "nv"] if label != "nv" else ["nv"]
    case = CaseRecord(image_sha256="ab" * 32, top_label=top or "nv", file_name=name or None, malignant_score=0.25,
                      triage="low", probabilities=dict.fromkeys(labels, 0.5))
    result = SimpleNamespace(name=name, case=case)
    card = SimpleNamespace(name=top, version=label, preprocessing="unit", resize="squash")
    parsed = cells_of(table_csv([result], [{"file": name, "error": error or "x"}], labels, card))
    assert_neutral(parsed, ["file_name", "top_label", "triage", "explanation", "model_name", "model_version"])
    assert float(parsed[0][f"p_{labels[0]}"]) == 0.5  # numbers stay numbers


def test_cli_batch_csv_neutralises_file_names(tmp_path, model):
    from dermascan.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    jpeg = ham(1)[0].read_bytes()
    names = ["=HYPERLINK(x).jpg", "+1.jpg", "-2.jpg", "@SUM(A1).jpg", "\tTAB.jpg", "\rCR.jpg", "plain.jpg"]
    for name in names:
        (folder / name).write_bytes(jpeg)
    (folder / "=broken.jpg").write_bytes(b"\xff\xd8 junk")
    out = tmp_path / "out.csv"
    assert main(["batch", str(folder), "--csv", str(out), "--model", str(model)]) == 0
    rows = cells_of(out.read_bytes())
    assert len(rows) == len(names) + 1 and list(rows[0]) == csv_header(HAM_LABELS)
    assert_neutral(rows, ["file_name", "top_label", "triage", "explanation"])
    assert {r["file_name"].removeprefix("'") for r in rows} == {*names, "=broken.jpg"}


def test_review_csv_neutralises_every_text_cell_and_round_trips(fresh_db, backend):
    @fuzz_settings(fuzz_examples(backend, 100))
    @given(st.lists(st.tuples(formula_text(), formula_text(), formula_text()), min_size=1, max_size=4))
    def check(fields):
        records = []
        for i, (patient, note, reviewer) in enumerate(fields):
            try:
                records.append(CaseRecord(
                    image_sha256=f"{i:064x}", top_label="nv", patient_id=patient or None, body_site=note or None,
                    file_name=reviewer or None, probabilities={"nv": 1.0},
                    decision=Decision(note=note, reviewer=reviewer or None, reviewer_diagnosis=patient or None)))
            except ValueError:  # e.g. a NUL character: refused before it could be stored
                continue
        if not records:
            return
        rows = cells_of(to_csv_bytes(records))
        assert_neutral(rows, ["patient_id", "body_site", "file_name", "note", "reviewer", "reviewer_diagnosis"])
        with ReviewStore(fresh_db()) as store:
            result = store.import_csv(to_csv_bytes(records))
            assert result.errors == []
            back = {c.image_sha256: c for c in store.list_cases()}
        for record in records:
            got = back[record.image_sha256]
            assert (got.patient_id, got.file_name, got.decision.note) == (record.patient_id, record.file_name,
                                                                         record.decision.note)

    check()


def test_review_log_downloads_are_neutralised(any_env, monkeypatch):
    files = app.record_media(monkeypatch)
    with ReviewStore(any_env) as store:
        for i, text in enumerate(["=1+1", "+cmd|' /C calc'!A0", "-2", "@A1", "\t=x", "\r=y"]):
            store.add_case(CaseRecord(image_sha256=f"{i:064x}", top_label="nv", file_name=f"{text}.jpg",
                                      patient_id=text, probabilities={"nv": 1.0},
                                      decision=Decision(note=text, management="monitor")))
    at = app.new_app()
    at.switch_page("pages/review_log.py").run()
    whole = next(b for b in at.get("download_button") if "CSV" in b.proto.label)
    at.text_input(key="log_search").input("jpg").run()  # a filtered view is exported by another path
    at.segmented_control(key="log_status").set_value("Decided").run()
    for button in [whole, *(b for b in at.get("download_button") if "CSV" in b.proto.label)]:
        rows = cells_of(app.downloaded(files, button))
        assert len(rows) == 6
        assert_neutral(rows, ["file_name", "patient_id", "note"])


# -- a private database (SQLite only: file and folder modes) ---------------------------------------------------

def test_the_review_database_and_its_folders_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        path = tmp_path / "new" / "deeper" / "reviews.sqlite3"
        with ReviewStore(path) as store:
            store.add_case(CaseRecord(image_sha256="ab" * 32, top_label="nv", probabilities={"nv": 1.0}))
            companions = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)
            for p in [path, *companions]:
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
            store.export_csv(tmp_path / "export.csv")
        assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "export.csv").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_the_app_creates_its_default_database_private(model, tmp_path, monkeypatch):
    monkeypatch.setenv("DERMASCAN_MODEL", str(model))
    monkeypatch.delenv("DERMASCAN_REVIEW_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    at = app.new_app()
    at.switch_page("pages/review_log.py").run()
    app.assert_no_exception(at)
    default = tmp_path / ".dermascan" / "reviews.sqlite3"
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert stat.S_IMODE(default.parent.stat().st_mode) == 0o700


def test_a_carriage_return_inside_a_cell_cannot_start_a_row_with_a_formula():
    # Spreadsheets end a row at a bare CR. The batch CSV once wrote "\r" unquoted (lineterminator "\n"),
    # so a file name "x\r=cmd|..." put an unneutralised formula at the start of a new row.
    from dashboard.batch_export import table_csv

    name = "lesion\r=cmd|' /C calc'!A0.jpg"
    card = SimpleNamespace(name="m", version="1", preprocessing="unit", resize="squash")
    data = table_csv([], [{"file": name, "error": "The file is damaged."}], HAM_LABELS, card)
    rows = cells_of(data)
    assert len(rows) == 1 and rows[0]["file_name"] == name
    for line in data.decode("utf-8").replace("\r\n", "\n").split("\n"):
        assert not line.startswith(DANGEROUS) or line.startswith('"')


# -- SQL injection and the database URL's password (both backends) ---------------------------------------------

INJECTIONS = ("'; DROP TABLE cases; --", "Robert'); DROP TABLE decisions;--", "' OR '1'='1", '" OR ""="',
              "1; DELETE FROM decision_history WHERE 1=1", "$$; DROP TABLE cases; $$", "') UNION SELECT version --",
              "x' || pg_sleep(5) || '", "\\'; --", "100%_done\\", "%", "_", "ß' /* ünïcode */")
REVIEW_TABLES = ("cases", "decisions", "decision_history", "case_details_history")


def _table_counts(store: ReviewStore) -> dict:
    """The rows of each review table, and the names of every table there is (none dropped, none added)."""
    import sqlalchemy as sa

    with store._reader.connect() as conn:  # noqa: SLF001 - the test counts the tables behind the store's back
        counts = {name: conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one() for name in REVIEW_TABLES}
        return {**counts, "tables": sorted(sa.inspect(conn).get_table_names())}


def test_sql_injection_through_every_text_field_is_stored_as_text_and_found_by_search(new_db, backend):
    from dermascan.reviews.columns import CASE, names
    from dermascan.reviews.query import CaseQuery, matches

    text_fields = names(CASE, kind="text")
    with ReviewStore(new_db()) as store:
        plain = store.add_case(CaseRecord(image_sha256="ff" * 32, top_label="nv", probabilities={"nv": 1.0},
                                          patient_id="plain patient", decision=Decision(note="plain note")))
        ids = {}
        for i, text in enumerate(INJECTIONS):
            record = CaseRecord(image_sha256=f"{i:064x}", top_label=text, probabilities={text: 1.0, "nv": 0.0},
                                model_version=text, **dict.fromkeys(text_fields, text),
                                decision=Decision(note=text, reviewer=text, reviewer_diagnosis=text))
            ids[text] = store.add_case(record)
            store.update_case_fields(ids[text], patient_id=text + " (edited)", body_site=text)
            store.save_decision(ids[text], Decision(note=text + " again", reviewer=text, management="refer"))
        counts = _table_counts(store)
        everything = store.list_cases()
        assert counts == {"cases": len(INJECTIONS) + 1, "decisions": len(INJECTIONS) + 1,
                          "decision_history": 2 * len(INJECTIONS) + 1, "case_details_history": len(INJECTIONS),
                          "tables": sorted([*REVIEW_TABLES, *(["schema_version"] if backend != "sqlite" else [])])}
        for text, case_id in ids.items():
            case = store.get_case(case_id)  # every field comes back exactly as it went in
            assert all(getattr(case, name) == text for name in text_fields if name != "patient_id")
            assert (case.patient_id, case.top_label, case.model_version) == (text + " (edited)", text, text)
            assert case.decision.note == text + " again" and case.probabilities == {text: 1.0, "nv": 0.0}
            assert [c.case_id for c in store.find_cases(case.image_sha256, text)] == [case_id]
            # The search: the text finds its own case, and others only where its words really occur (the
            # reference meaning, query.matches, over every stored case).
            query = CaseQuery(text=text)
            found = {c.case_id for c in store.page_cases(query, limit=100)}
            assert case_id in found and plain not in found
            assert found == {c.case_id for c in everything if matches(query, c)}
            assert store.count_matching(query) == len(found)
        assert store.page_cases(CaseQuery(text="' OR 1=1 --"), limit=100) == []
        # The CSV import is a third way in: the same strings arrive as text, never as SQL.
        result = store.import_csv(store.export_csv())
        assert (result.added, result.rejected, result.errors) == (0, 0, [])
        assert store.labels_matching(CaseQuery()) == sorted({*INJECTIONS, "nv"})
        assert _table_counts(store) == counts


def test_the_search_box_takes_injection_as_text(any_env):
    with ReviewStore(any_env) as store:
        for i, text in enumerate(INJECTIONS[:4]):
            store.add_case(CaseRecord(image_sha256=f"{i:064x}", top_label="nv", probabilities={"nv": 1.0},
                                      file_name=f"case-{i}.jpg", patient_id=text))
        counts = _table_counts(store)
    at = app.new_app()
    at.switch_page("pages/review_log.py").run()
    for i, text in enumerate(INJECTIONS[:4]):
        at.text_input(key="log_search").input(text).run()
        app.assert_no_exception(at)
        assert not at.error
        shown = list(at.dataframe[0].value["File"])
        assert f"case-{i}.jpg" in shown and len(shown) < 4
    with ReviewStore(any_env) as store:
        assert _table_counts(store) == counts


PASSWORD = "pw-Kq83-s3cret"


def test_a_password_in_the_database_url_never_reaches_a_message_a_page_or_a_log(postgres_url, new_db, backend,
                                                                                all_logs, capfd, model,
                                                                                monkeypatch):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: an SQLite file has no password")
    import sqlalchemy as sa

    from dermascan.reviews import ReviewStoreError

    def with_password(url: str, **changes) -> str:
        return sa.make_url(url).set(password=PASSWORD, **changes).render_as_string(hide_password=False)

    capture, caught = all_logs
    pages = []
    good = with_password(new_db())  # the test server trusts local sockets: the password is carried, not checked
    messages = []
    with ReviewStore(good, busy_timeout=0.2) as store:
        case_id = store.add_case(CaseRecord(image_sha256="ab" * 32, top_label="nv", probabilities={"nv": 1.0},
                                            patient_id=MARKERS["patient"], decision=Decision(note=MARKERS["note"])))
        messages += [repr(store), store.location.name]
        for fails in (lambda: store.save_decision(case_id + 99, Decision(note="x")),
                      lambda: store.update_case_fields(case_id, colour="red")):
            with pytest.raises(ReviewStoreError) as info:
                fails()
            messages.append(str(info.value))
        with sa.create_engine(sa.make_url(good).set(drivername="postgresql+psycopg"),
                              poolclass=sa.pool.NullPool).connect() as holder:
            holder.exec_driver_sql("SELECT 1 FROM cases FOR UPDATE")
            with pytest.raises(ReviewStoreError, match="busy") as info:
                store.save_decision(case_id, Decision(note="while locked"))
            messages.append(str(info.value))
            holder.rollback()
    for url in (with_password(postgres_url, database="no_such_db"),
                sa.make_url(with_password(postgres_url)).update_query_dict({"port": "1"}).render_as_string(
                    hide_password=False)):
        with pytest.raises(ReviewStoreError) as info:
            ReviewStore(url)
        messages.append(str(info.value))
        monkeypatch.setenv("DERMASCAN_MODEL", str(model))
        monkeypatch.setenv("DERMASCAN_REVIEW_DB", url)
        at = app.new_app()
        at.switch_page("pages/review_log.py").run()
        app.assert_no_exception(at)
        [shown] = [app.as_shown(e.value) for e in at.main.error]
        messages.append(shown)
        pages.append(page_text(at))
        from dermascan.cli import main  # the administrators' CLI says it in one line on stderr, too

        pages.extend(capfd.readouterr())  # what the page run wrote, checked with the logs below
        assert main(["reviews", "--db", url, "stats"]) == 2
        messages.append(capfd.readouterr().err.strip())
    out, err = capfd.readouterr()
    logs = "\n".join([*capture.lines, out, err, *(str(w.message) for w in caught)])
    assert capture.lines  # the capture works
    for text in [*messages, *pages, logs]:
        assert PASSWORD not in text
    assert MARKERS["patient"] not in logs and MARKERS["note"] not in logs
    assert all("\n" not in m for m in messages)
    assert sum("does not exist" in m for m in messages) == 3 and sum("cannot be reached" in m for m in messages) == 3


def test_a_lone_surrogate_anywhere_is_a_one_line_error_never_a_driver_exception(new_db):
    # JSON's "\ud800" decodes to a Python string no driver can encode: both raised a bare UnicodeEncodeError.
    from dermascan.reviews import InvalidRecord, ReviewStoreError
    from dermascan.reviews.columns import CASE, names
    from dermascan.reviews.query import CaseQuery

    bad = "lesion \ud800 \udfff"
    with ReviewStore(new_db()) as store:
        case_id = store.add_case(CaseRecord(image_sha256="ab" * 32, top_label="nv", probabilities={"nv": 1.0}))
        for name in (*names(CASE, kind="text"), "top_label", "model_version"):
            with pytest.raises(InvalidRecord, match=f"^{name} contains a character that is not valid Unicode$"):
                store.add_case(CaseRecord(**{"image_sha256": "cd" * 32, "top_label": "nv",
                                             "probabilities": {"nv": 1.0}, name: bad}))
        with pytest.raises(InvalidRecord, match="^label contains"):
            store.add_case(CaseRecord(image_sha256="cd" * 32, top_label="nv", probabilities={bad: 1.0}))
        for field in ("note", "reviewer", "reviewer_diagnosis"):
            with pytest.raises(InvalidRecord, match=f"^{field} contains"):
                store.save_decision(case_id, Decision(**{field: bad}))
        with pytest.raises(ReviewStoreError, match="patient_id contains"):
            store.update_case_fields(case_id, patient_id=bad)
        # The search drops them (no stored text can hold one); a lookup by them is a one-line error.
        assert [c.case_id for c in store.page_cases(CaseQuery(text="\ud800"))] == [case_id]
        assert store.count_matching(CaseQuery(text=bad)) == 0
        for lookup in (lambda: store.find_cases("ab" * 32, bad), lambda: store.list_cases(session_id=bad)):
            with pytest.raises(ReviewStoreError, match="not valid Unicode") as info:
                lookup()
            assert "\n" not in str(info.value)
        assert store.count_cases() == 1 and store.get_decision(case_id) is None
