"""ReviewStore on real SQLite files and a real PostgreSQL server: durability, history, ordering, permissions, locks
and failure messages."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
import time
from types import SimpleNamespace

import pytest

from dermascan.errors import DermascanError
from dermascan.reviews import (
    DB_ENV_VAR,
    SCHEMA_VERSION,
    CaseRecord,
    Decision,
    ReviewStore,
    ReviewStoreError,
    default_db_path,
)
from dermascan.reviews.schema import MIGRATIONS

PROBS = {"mel": 0.7, "nv": 0.2, "bkl": 0.1}


def make_case(n: int = 0, **overrides) -> CaseRecord:
    fields = dict(
        image_sha256=hashlib.sha256(f"image-{n}".encode()).hexdigest(), top_label="mel", top_probability=0.7,
        malignant_score=0.72, triage="urgent", probabilities=dict(PROBS), model_name="demo", model_version="1.0",
        file_name=f"lesion-{n}.jpg", session_id="s1", patient_id=f"P-{n}", fitzpatrick=3, age=54, sex="female",
        explanation="Top class: Melanoma (mel) at 70%.", created_at=f"2025-03-01T10:00:{n % 60:02d}.000001+00:00",
    )
    fields.update(overrides)
    return CaseRecord(**fields)


@pytest.fixture
def db(new_db):
    """A fresh review database on each backend (SQLite file, PostgreSQL schema)."""
    return new_db()


@pytest.fixture
def sqlite_db(tmp_path):
    """For what only an SQLite file has: its bytes, its mode, its locks, its migrations."""
    return tmp_path / "reviews.sqlite3"


def test_case_and_decision_survive_a_restart(db):
    store = ReviewStore(db)
    record = make_case(1, thumbnail=b"\x89PNG fake", explained_label="nv")
    case_id = store.add_case(record)
    assert record.case_id == case_id
    store.save_decision(case_id, Decision(reviewer_agrees=False, reviewer_diagnosis="nv", management="monitor",
                                          note="Müller: benign pattern", reviewer="dr.a"))
    store.close()

    reopened = ReviewStore(db)  # a server restart
    loaded = reopened.get_case(case_id)
    assert loaded is not None
    assert loaded.image_sha256 == record.image_sha256
    assert loaded.probabilities == PROBS
    assert loaded.thumbnail == b"\x89PNG fake" and loaded.explained_label == "nv"
    assert (loaded.fitzpatrick, loaded.age, loaded.patient_id) == (3, 54, "P-1")
    assert loaded.decision.reviewer_agrees is False
    assert loaded.decision.note == "Müller: benign pattern"
    assert reopened.count_cases() == 1
    reopened.close()


def test_edit_keeps_the_previous_decision_in_history(db):
    with ReviewStore(db) as store:
        case_id = store.add_case(make_case())
        first = store.save_decision(case_id, Decision(management="biopsy", decided_at="2025-03-01T11:00:00Z"))
        again = store.save_decision(case_id, Decision(management="biopsy"))  # unchanged form re-saved
        assert again.decided_at == first.decided_at
        store.save_decision(case_id, Decision(management="excise", note="after biopsy"))
        assert store.get_decision(case_id).management == "excise"
        history = store.decision_history(case_id)
        assert [d.management for d in history] == ["biopsy", "excise"]
        assert history[0].decided_at == "2025-03-01T11:00:00.000000+00:00"


def test_list_cases_puts_the_current_session_first(db):
    with ReviewStore(db) as store:
        store.add_case(make_case(1, session_id="old", created_at="2025-01-01T00:00:00Z"))
        store.add_case(make_case(2, session_id="new", created_at="2025-01-02T00:00:00Z"))
        store.add_case(make_case(3, session_id=None, created_at="2025-01-03T00:00:00Z"))
        store.add_case(make_case(4, session_id="old", created_at="2025-01-04T00:00:00Z"))
        assert [c.patient_id for c in store.list_cases()] == ["P-4", "P-3", "P-2", "P-1"]
        assert [c.patient_id for c in store.list_cases(session_first="old")] == ["P-4", "P-1", "P-3", "P-2"]
        assert [c.patient_id for c in store.list_cases(session_id="old")] == ["P-4", "P-1"]
        assert len(store.list_cases(session_first="new", limit=2)) == 2
        assert store.list_cases(with_thumbnails=False)[0].thumbnail is None
        assert store.count_cases("old") == 2


def test_adding_the_same_analysis_twice_keeps_one_case(db):
    with ReviewStore(db) as store:
        first = store.add_case(make_case(5))
        second = store.add_case(make_case(5, patient_id="changed"))
        assert first == second
        assert store.count_cases() == 1
        assert store.get_case(first).patient_id == "P-5"


def test_from_analysis_is_duck_typed_and_to_row_has_the_export_columns():
    analysis = SimpleNamespace(
        sha256="ab" * 32, name="x.png", labels=["bcc", "mel"], probabilities=[0.25, 0.75], top_label="mel",
        malignant_score=1.0, triage="urgent", model_name="m", model_version="2", preprocessing="0-1",
        resize="stretch", cam_layer="conv5", explanation="Top class: mel.", explained_label="mel")
    record = CaseRecord.from_analysis(analysis, session_id="s", patient_id="P", fitzpatrick=2)
    assert record.top_probability == 0.75 and record.explained_label == "mel"
    row = record.to_row()
    assert row["p_bcc"] == 0.25 and row["p_mel"] == 0.75
    keys = list(row)
    assert keys[keys.index("dx") + 1:keys.index("dx") + 3] == ["p_bcc", "p_mel"]
    assert row["reviewer_agrees"] is None and row["file_name"] == "x.png"


def test_invalid_values_are_rejected_with_the_field_name_only():
    with pytest.raises(ValueError, match="management must be one of"):
        Decision(management="burn it")
    with pytest.raises(ValueError, match="image_sha256"):
        make_case(image_sha256="not-a-hash")
    with pytest.raises(ValueError, match="fitzpatrick"):
        make_case(fitzpatrick=9)
    with pytest.raises(ValueError, match="note is longer") as info:
        Decision(note="x" * 10_001)
    assert "xxx" not in str(info.value)


def test_saving_a_decision_for_an_unknown_case_is_a_store_error(db):
    with ReviewStore(db) as store, pytest.raises(ReviewStoreError, match="reload"):
        store.save_decision(42, Decision(management="refer"))


def test_new_database_is_private_and_env_var_sets_the_path(tmp_path, monkeypatch):
    target = tmp_path / "nested" / "deeper" / "mine.sqlite3"
    monkeypatch.setenv(DB_ENV_VAR, str(target))
    assert default_db_path() == target
    with ReviewStore() as store:
        store.add_case(make_case())
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "nested").stat().st_mode) == 0o700
    with sqlite3.connect(target) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_default_path_is_under_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(DB_ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    with ReviewStore() as store:
        assert store.path == tmp_path / ".dermascan" / "reviews.sqlite3"
    assert (tmp_path / ".dermascan" / "reviews.sqlite3").exists()


def test_corrupt_file_is_reported_and_left_untouched(sqlite_db):
    db = sqlite_db
    garbage = os.urandom(4096)
    db.write_bytes(garbage)
    with pytest.raises(ReviewStoreError, match="not a readable review database") as info:
        ReviewStore(db)
    assert isinstance(info.value, DermascanError)
    assert str(db.parent) not in str(info.value) and "reviews.sqlite3" in str(info.value)
    assert "\n" not in str(info.value)
    assert db.read_bytes() == garbage
    assert not db.with_name(db.name + "-wal").exists()


def test_read_only_store_reads_but_refuses_writes(db):
    with ReviewStore(db) as store:
        case_id = store.add_case(make_case())
    with ReviewStore(db, read_only=True) as viewer:
        assert viewer.get_case(case_id) is not None
        with pytest.raises(ReviewStoreError, match="read-only"):
            viewer.save_decision(case_id, Decision(management="refer"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores folder permissions, so a chmod 0500 folder stays writable")
def test_read_only_folder_is_a_store_error(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ReviewStoreError, match="read-only"):
            ReviewStore(folder / "reviews.sqlite3")
    finally:
        folder.chmod(0o700)


def test_full_database_is_a_store_error_and_nothing_is_half_saved(sqlite_db):
    db = sqlite_db
    store = ReviewStore(db)
    store.add_case(make_case(1))
    # max_page_count makes SQLite report SQLITE_FULL exactly as a full disk does.
    # The store writes through one connection (the writer's pool of one), so the limit applies to every write.
    with store._writer.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(ReviewStoreError, match="full"):
        store.add_case(make_case(2, thumbnail=os.urandom(200_000)))
    assert store.count_cases() == 1
    store.close()


@pytest.mark.parametrize("separate_connections", [False, True], ids=["one-store", "two-stores"])
def test_two_threads_writing_fifty_cases_each(db, separate_connections):
    first = ReviewStore(db)
    # Two stores = two connections, as two server processes on one file would have.
    second = ReviewStore(db) if separate_connections else first
    failures: list[BaseException] = []

    def write(store: ReviewStore, offset: int) -> None:
        try:
            for i in range(50):
                case_id = store.add_case(make_case(offset + i, created_at=f"2025-01-01T00:00:{i:02d}Z",
                                                   session_id=f"t{offset}"))
                if i % 10 == 0:
                    store.save_decision(case_id, Decision(management="monitor"))
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(first, 0)), threading.Thread(target=write, args=(second, 100))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert first.count_cases() == 100
    assert first.count_cases("t0") == first.count_cases("t100") == 50
    first.close()
    second.close()


def test_a_held_exclusive_lock_ends_in_a_busy_error(sqlite_db):
    db = sqlite_db
    store = ReviewStore(db, busy_timeout=0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(ReviewStoreError, match="busy"):
            store.add_case(make_case())
        assert time.monotonic() - started < 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.add_case(make_case())  # usable again once the lock is gone
    assert store.count_cases() == 1
    store.close()


def test_an_older_schema_is_migrated_in_place(sqlite_db):
    db = sqlite_db
    with sqlite3.connect(db) as raw:
        for statement in MIGRATIONS[1]:
            raw.execute(statement)
        raw.execute("INSERT INTO cases (created_at, image_sha256, top_label) VALUES (?, ?, 'nv')",
                    ("2024-12-31T23:00:00.000000+00:00", "cd" * 32))
        raw.execute("PRAGMA user_version = 1")
    raw.close()
    with ReviewStore(db) as store:
        [case] = store.list_cases()
        assert case.top_label == "nv" and case.explained_label is None
        store.add_case(make_case(explained_label="mel"))
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_newer_schema_and_foreign_databases_are_refused(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(ReviewStoreError, match="newer version"):
        ReviewStore(newer)
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER)")
    raw.close()
    with pytest.raises(ReviewStoreError, match="another application"):
        ReviewStore(foreign)


def test_closed_store_raises_a_store_error(db):
    store = ReviewStore(db)
    store.close()
    store.close()
    with pytest.raises(ReviewStoreError, match="closed"):
        store.count_cases()


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _newer_release_file(path, wal: bool) -> None:
    # What a newer DermaScan would leave behind: our tables, a higher user_version, WAL mode (closed cleanly).
    raw = sqlite3.connect(path)
    if wal:
        raw.execute("PRAGMA journal_mode = WAL")
    for statement in MIGRATIONS[1]:
        raw.execute(statement)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()


def _foreign_file(path) -> None:
    raw = sqlite3.connect(path)  # another application's database: its own tables, user_version 0
    raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT, total REAL)")
    raw.execute("INSERT INTO invoices VALUES (1, 'ACME', 12.5)")
    raw.commit()
    raw.close()


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
@pytest.mark.parametrize(("kind", "message"), [
    ("newer-wal", "newer version of DermaScan Review"), ("newer-rollback", "newer version"),
    ("foreign", "another application"),
])
def test_a_refused_database_is_left_byte_for_byte_untouched(tmp_path, kind, message, read_only):
    path = tmp_path / "refused.sqlite3"
    if kind == "foreign":
        _foreign_file(path)
    else:
        _newer_release_file(path, wal=kind == "newer-wal")
    before = _sha256(path)
    mode_before = path.read_bytes()[18:20]  # file format write/read versions: 2, 2 in WAL mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refused.sqlite3"]
    with pytest.raises(ReviewStoreError, match=message) as info:
        ReviewStore(path, read_only=read_only)
    assert "\n" not in str(info.value) and str(tmp_path) not in str(info.value)
    assert _sha256(path) == before and path.read_bytes()[18:20] == mode_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refused.sqlite3"]  # no -wal, no -shm, no journal


def test_an_empty_file_is_a_new_database(tmp_path):
    path = tmp_path / "empty.sqlite3"
    path.touch(mode=0o600)
    with ReviewStore(path) as store:
        assert store.count_cases() == 0
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


# -- PostgreSQL --------------------------------------------------------------------------------------------

@pytest.fixture
def pg_db(new_db, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    return new_db()


def _pg_conn(url: str):
    import sqlalchemy as sa
    return sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool)


def test_a_held_row_lock_ends_in_a_busy_error_on_postgresql(pg_db):
    store = ReviewStore(pg_db, busy_timeout=0.2)
    case_id = store.add_case(make_case())
    holder = _pg_conn(pg_db)
    with holder.connect() as conn:  # another server saving a decision on the same case
        conn.exec_driver_sql("SELECT case_id FROM cases WHERE case_id = %s FOR UPDATE", (case_id,))
        with pytest.raises(ReviewStoreError, match="busy") as info:
            store.save_decision(case_id, Decision(management="refer"))
        assert "\n" not in str(info.value)
        assert store.get_case(case_id) is not None  # readers do not wait for the lock
        conn.rollback()
    holder.dispose()
    assert store.save_decision(case_id, Decision(management="refer")).management == "refer"
    store.close()


def test_postgresql_messages_never_show_the_password(postgres_url):
    import sqlalchemy as sa
    url = sa.make_url(postgres_url)
    missing = url.set(password="s3cret-pw!", database="no_such_database").render_as_string(hide_password=False)
    with pytest.raises(ReviewStoreError, match="does not exist") as info:
        ReviewStore(missing)
    assert "s3cret-pw" not in str(info.value) and "\n" not in str(info.value)
    nowhere = url.update_query_dict({"port": "1"}).set(password="s3cret-pw!").render_as_string(hide_password=False)
    with pytest.raises(ReviewStoreError, match="cannot be reached") as info:
        ReviewStore(nowhere)
    assert "s3cret-pw" not in str(info.value) and "\n" not in str(info.value)
    assert "/" not in str(info.value).split("(")[1].split(")")[0]  # no socket folder either


def test_unusable_urls_are_one_line_errors():
    for url in ("mysql://root:hunter2@db/reviews", "sqlite://", "postgresql://u:hunter2@[bad/db"):
        with pytest.raises(ReviewStoreError) as info:
            ReviewStore(url)
        assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def test_a_newer_or_foreign_postgresql_database_is_refused(pg_db):
    ReviewStore(pg_db).close()
    engine = _pg_conn(pg_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(ReviewStoreError, match="newer version"):
        ReviewStore(pg_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE schema_version")
    with pytest.raises(ReviewStoreError, match="another application"):
        ReviewStore(pg_db)
    engine.dispose()


def test_sqlite_urls_name_the_same_file(tmp_path):
    path = tmp_path / "via-url.sqlite3"
    with ReviewStore(f"sqlite:///{path}") as store:
        store.add_case(make_case())
        assert store.path == path and store.backend == "sqlite"
    with ReviewStore(path) as again:
        assert again.count_cases() == 1
