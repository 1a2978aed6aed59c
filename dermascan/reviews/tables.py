"""The review database's tables as SQLAlchemy ``Table`` objects: what every query of the store is written against.

The columns come from ``columns.py`` (one line per field there); the types, the NOT NULL columns, the keys and the
indexes are stated here once. On PostgreSQL ``METADATA.create_all`` builds the current schema from this; on SQLite
the frozen migrations in ``schema.py`` build it step by step, and a test checks that both describe the same tables.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

from . import columns
from .records import CASE_DETAIL_FIELDS

# Text compares by code point on both backends, as Python's str does (the reference order of query.sort_key):
# SQLite's BINARY collation does that on UTF-8, and PostgreSQL's "C" collation does it on a UTF8 database.
_TEXT = Text().with_variant(Text(collation="C"), "postgresql")

_TYPES = {
    "id": Integer, "timestamp": _TEXT, "sha256": _TEXT, "label": _TEXT, "version": _TEXT, "text": _TEXT,
    "skin_type": Integer, "age": Integer, "probability": Float, "probabilities": Text, "image": LargeBinary,
    # Native boolean on PostgreSQL; SQLite's migrations store yes / no as 0 / 1 with their own CHECK.
    "yes_no": Boolean(), "management": _TEXT, "note": _TEXT, "score": Float,
}

REQUIRED = frozenset({"created_at", "image_sha256", "model_version", "top_label", "probabilities", "note",
                      "decided_at"})
"""The columns that are NOT NULL (the CASE/DECISION fields a record always has)."""

_DEFAULTS = {"model_version": "", "probabilities": "{}", "note": ""}

CASE_KEY = ("image_sha256", "created_at", "model_version")
"""What identifies one analysis across databases (the unique key of ``cases``)."""

INDEXED = ("created_at", "triage", "malignant_score", "patient_id")
"""The ``cases`` columns the review log filters or sorts by, each with its own index (``cases_by_<name>``);
``session_id`` is indexed with ``created_at`` (``cases_by_session``)."""

METADATA = MetaData()


def _column(column: columns.Column) -> Column:
    kind = _TYPES[column.kind]
    extra = {"server_default": _DEFAULTS[column.name]} if column.name in _DEFAULTS else {}
    return Column(column.name, kind, nullable=column.name not in REQUIRED, **extra)


def _fields(defined: tuple[columns.Column, ...]) -> list[Column]:
    return [_column(column) for column in defined if column.kind != "id"]


cases = Table(
    "cases", METADATA,
    Column("case_id", Integer, primary_key=True, autoincrement=True),
    *_fields(columns.CASE),
    UniqueConstraint(*CASE_KEY),
    Index("cases_by_session", "session_id", "created_at"),
    *(Index(f"cases_by_{name}", name) for name in INDEXED),
)

# No ON DELETE CASCADE on purpose: deleting a reviewed case must fail rather than take its decisions along.
decisions = Table(
    "decisions", METADATA,
    Column("case_id", Integer, ForeignKey("cases.case_id"), primary_key=True, autoincrement=False),
    *_fields(columns.DECISION),
)

decision_history = Table(
    "decision_history", METADATA,
    Column("history_id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.case_id"), nullable=False),
    *_fields(columns.DECISION),
    Column("saved_at", _TEXT, nullable=False),
    Index("decision_history_by_case", "case_id", "decided_at"),
)

case_details_history = Table(
    "case_details_history", METADATA,
    Column("history_id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.case_id"), nullable=False),
    *(_column(column) for column in columns.CASE if column.name in CASE_DETAIL_FIELDS),
    Column("replaced_at", _TEXT, nullable=False),
    Index("case_details_history_by_case", "case_id", "history_id"),
)

schema_version = Table(
    "schema_version", METADATA,
    Column("version", Integer, nullable=False),
)
"""PostgreSQL only: one row holding the schema version (SQLite keeps it in ``PRAGMA user_version``)."""

SQLITE_TABLES = (cases, decisions, decision_history, case_details_history)
"""The tables the SQLite migrations build (everything but ``schema_version``)."""
