"""The review database's schema version and how each backend gets to the current one.

SQLite: the frozen migrations below build the file step by step; ``PRAGMA user_version`` holds the version.
To change the schema: append a step to ``MIGRATIONS`` (SQL statements, or a callable taking the
connection) and bump nothing else; ``SCHEMA_VERSION`` follows. Each step runs in its own
``BEGIN IMMEDIATE`` transaction together with the version bump, so a crash never leaves a half-migrated file.
A new column also gets one line in ``columns.py`` (and so in ``tables.py``); the steps here are never derived
from it: they are history, and v1 must stay what v1 was.

PostgreSQL: support began at version 5, so a new database gets the current tables straight from ``tables.py``
(``create_postgres``) and a one-row ``schema_version`` table records the version. A later step is added for both
backends: a SQLite step here and a PostgreSQL step in ``POSTGRES_MIGRATIONS``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from . import errors, tables

_DECISION_COLUMNS = """
    reviewer_agrees    INTEGER CHECK (reviewer_agrees IN (0, 1)),
    reviewer_diagnosis TEXT,
    management         TEXT,
    note               TEXT NOT NULL DEFAULT '',
    reviewer           TEXT,
    decided_at         TEXT NOT NULL
"""

_V1 = (
    """
    CREATE TABLE cases (
        case_id         INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at      TEXT NOT NULL,
        session_id      TEXT,
        source          TEXT,
        file_name       TEXT,
        image_sha256    TEXT NOT NULL,
        patient_id      TEXT,
        lesion_id       TEXT,
        body_site       TEXT,
        fitzpatrick     INTEGER,
        age             INTEGER,
        sex             TEXT,
        model_name      TEXT,
        model_version   TEXT NOT NULL DEFAULT '',
        preprocessing   TEXT,
        resize          TEXT,
        cam_layer       TEXT,
        top_label       TEXT NOT NULL,
        top_probability REAL,
        malignant_score REAL,
        triage          TEXT,
        explanation     TEXT,
        probabilities   TEXT NOT NULL DEFAULT '{}',
        thumbnail       BLOB,
        UNIQUE (image_sha256, created_at, model_version)
    )
    """,
    "CREATE INDEX cases_by_session ON cases (session_id, created_at)",
    # No ON DELETE CASCADE on purpose: deleting a reviewed case must fail rather than take its decisions along.
    f"""
    CREATE TABLE decisions (
        case_id INTEGER PRIMARY KEY REFERENCES cases (case_id),
        {_DECISION_COLUMNS}
    )
    """,
    f"""
    CREATE TABLE decision_history (
        history_id INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id    INTEGER NOT NULL REFERENCES cases (case_id),
        {_DECISION_COLUMNS},
        saved_at   TEXT NOT NULL
    )
    """,
    "CREATE INDEX decision_history_by_case ON decision_history (case_id, decided_at)",
)

Step = Sequence[str] | Callable[[sqlite3.Connection], None]

# v2: the class the case's heatmap explained, so the review log can find the same map again.
_V2 = ("ALTER TABLE cases ADD COLUMN explained_label TEXT",)

# v3: case details can be edited after the case is stored. ``updated_at`` says when they last changed, and the
# values an edit replaces are kept (nothing a reviewer entered is lost, as with decision_history).
_V3 = (
    "ALTER TABLE cases ADD COLUMN updated_at TEXT",
    """
    CREATE TABLE case_details_history (
        history_id  INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id     INTEGER NOT NULL REFERENCES cases (case_id),
        patient_id  TEXT,
        lesion_id   TEXT,
        body_site   TEXT,
        fitzpatrick INTEGER,
        age         INTEGER,
        sex         TEXT,
        replaced_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX case_details_history_by_case ON case_details_history (case_id, history_id)",
)

# v4: what the analysis was (CAM method, off-card options), whether the input gate let the model judge the image,
# how much the prediction depends on the highlighted region and on flips/rotations, and the true label when known.
_V4 = (
    "ALTER TABLE cases ADD COLUMN cam_method TEXT",
    "ALTER TABLE cases ADD COLUMN off_card INTEGER CHECK (off_card IN (0, 1))",
    "ALTER TABLE cases ADD COLUMN gate TEXT",
    "ALTER TABLE cases ADD COLUMN gate_reasons TEXT",
    "ALTER TABLE cases ADD COLUMN faithfulness REAL",
    "ALTER TABLE cases ADD COLUMN stability REAL",
    "ALTER TABLE cases ADD COLUMN dx TEXT",
)

# v5: the review log filters, sorts and pages in SQL; these are the columns it filters and sorts by (session_id
# already has cases_by_session).
_V5 = (
    "CREATE INDEX cases_by_created_at ON cases (created_at)",
    "CREATE INDEX cases_by_triage ON cases (triage)",
    "CREATE INDEX cases_by_malignant_score ON cases (malignant_score)",
    "CREATE INDEX cases_by_patient_id ON cases (patient_id)",
)

MIGRATIONS: dict[int, Step] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5}
"""``MIGRATIONS[n]`` upgrades a version ``n - 1`` database to version ``n``."""

SCHEMA_VERSION = max(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new, empty database)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_ours(conn: sqlite3.Connection, name: str) -> int:
    """The file's schema version; ``ReviewStoreError`` for a newer release's file or another application's.

    Only reads, so it can run on a read-only connection before anything is written to the file.
    """
    found = user_version(conn)
    if found > SCHEMA_VERSION:
        raise errors.newer_schema(name, found)
    if found == 0 and _has_tables(conn):
        raise errors.foreign_database(name)
    return found


def migrate(conn: sqlite3.Connection, name: str) -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns the version found before. Needs autocommit mode.

    Raises ``ReviewStoreError`` for a file from a newer release or an SQLite file of another application.
    """
    found = check_ours(conn, name)
    for target in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated while we waited for it.
            current = check_ours(conn, name)
            if current < target:
                _run(conn, MIGRATIONS[target])
                conn.execute(f"PRAGMA user_version = {int(target)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found


def _has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()
    return row[0] > 0


def _run(conn: sqlite3.Connection, step: Step) -> None:
    if callable(step):
        step(conn)
    else:
        for statement in step:
            conn.execute(statement)


# -- PostgreSQL ----------------------------------------------------------------------------------------------

POSTGRES_FIRST_VERSION = 5
"""The schema version a new PostgreSQL database is created at (the first with PostgreSQL support)."""

POSTGRES_MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {}
"""``POSTGRES_MIGRATIONS[n]`` upgrades a PostgreSQL database from version ``n - 1`` (none yet)."""

# Any constant: two servers starting at once on an empty database take turns creating the tables.
_CREATE_LOCK = 0x44524D53


def postgres_version(conn: sa.Connection, name: str) -> int:
    """The version in ``schema_version`` (0: an empty database); refuses a newer release's or a foreign one."""
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    if tables.schema_version.name not in names:
        if names & {table.name for table in tables.SQLITE_TABLES}:
            raise errors.foreign_database(name)
        return 0
    found = conn.execute(sa.select(sa.func.max(tables.schema_version.c.version))).scalar()
    if found is None:
        raise errors.foreign_database(name)
    if found > SCHEMA_VERSION:
        raise errors.newer_schema(name, found)
    return int(found)


def migrate_postgres(conn: sa.Connection, name: str) -> int:
    """Create or upgrade the tables in one transaction (the caller's); returns the version found before."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
    found = postgres_version(conn, name)
    if found == 0:
        tables.METADATA.create_all(conn, tables=[*tables.SQLITE_TABLES, tables.schema_version])
        conn.execute(sa.insert(tables.schema_version).values(version=POSTGRES_FIRST_VERSION))
        found_now = POSTGRES_FIRST_VERSION
    else:
        found_now = found
    for target in range(found_now + 1, SCHEMA_VERSION + 1):
        POSTGRES_MIGRATIONS[target](conn)
        conn.execute(sa.update(tables.schema_version).values(version=target))
    return found
