"""A ``CaseQuery`` as SQL: its WHERE clause, its ORDER BY and the keyset that continues an order after a row.

``query.matches`` / ``query.sort_key`` are the reference meaning; every condition here says the same thing on the
same rows (tests run both over the same cases, on SQLite and on PostgreSQL). Text compares by code point on both
backends (see ``tables.py``), search lowers through ``engine.search_lower``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..model.card import HAM10000_DISPLAY_NAMES
from .engine import search_lower
from .query import NO_BAND, SEARCHED_FIELDS, CaseQuery
from .tables import cases, decisions

_LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY term: a never-NULL expression and its direction (so a keyset can compare it)."""

    expr: sa.ColumnElement
    descending: bool = False

    @property
    def clause(self) -> sa.ColumnElement:
        """The term as ORDER BY writes it."""
        return self.expr.desc() if self.descending else self.expr.asc()


def joined() -> sa.FromClause:
    """Every case with its current decision, if any."""
    return cases.outerjoin(decisions, decisions.c.case_id == cases.c.case_id)


def like_pattern(word: str) -> str:
    """``%word%`` with LIKE's own characters (``%``, ``_``, the escape) taken literally."""
    escaped = word.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%")
    return "%" + escaped.replace("_", _LIKE_ESCAPE + "_") + "%"


def labels_named(word: str) -> list[str]:
    """The labels whose display name holds ``word`` (a label without one is searched as its own text)."""
    return sorted(label for label, name in HAM10000_DISPLAY_NAMES.items() if word in name.lower())


def _searched_column(name: str) -> sa.ColumnElement:
    return cases.c[name] if name in cases.c else decisions.c[name]


def where(query: CaseQuery) -> list[sa.ColumnElement]:
    """The conditions a case must meet (AND), as ``query.matches`` states them."""
    conditions: list[sa.ColumnElement] = []
    if query.bands:
        named = [band for band in query.bands if band != NO_BAND]
        either = [cases.c.triage.in_(named)] if named else []
        if NO_BAND in query.bands:
            either += [cases.c.triage.is_(None), cases.c.triage == NO_BAND]
        conditions.append(sa.or_(*either))
    if query.decided is not None:
        conditions.append(decisions.c.case_id.is_not(None) if query.decided else decisions.c.case_id.is_(None))
    if query.session_id is not None:
        conditions.append(cases.c.session_id == query.session_id)
    for word in query.words:
        pattern = like_pattern(word)
        either = [search_lower(_searched_column(name)).like(pattern, escape=_LIKE_ESCAPE) for name in SEARCHED_FIELDS]
        labels = labels_named(word)
        if labels:
            either += [cases.c.top_label.in_(labels), decisions.c.reviewer_diagnosis.in_(labels)]
        conditions.append(sa.or_(*either))
    return conditions


def sort_keys(query: CaseQuery) -> list[SortKey]:
    """The ORDER BY of ``query.sort_key``, term for term, ending with the case id (a total order)."""
    keys: list[SortKey] = []
    if query.session_first is not None:
        keys.append(SortKey(sa.case((cases.c.session_id == query.session_first, 0), else_=1)))
    newest = [SortKey(cases.c.created_at, True), SortKey(cases.c.case_id, True)]
    if query.sort == "oldest":
        return [*keys, SortKey(cases.c.created_at), SortKey(cases.c.case_id)]
    if query.sort == "risk":
        score = cases.c.malignant_score
        keys += [SortKey(sa.case((score.is_(None), 1), else_=0)), SortKey(sa.func.coalesce(score, 0.0), True)]
    elif query.sort == "patient":
        patient = cases.c.patient_id
        keys += [SortKey(sa.case((patient.is_(None), 1), else_=0)), SortKey(sa.func.coalesce(patient, ""))]
    return [*keys, *newest]


def after(keys: list[SortKey], values: tuple) -> sa.ColumnElement:
    """Rows that come after the row whose sort values are ``values`` (keyset pagination: no OFFSET to skip)."""
    either = []
    for i, key in enumerate(keys):
        same = [keys[j].expr == values[j] for j in range(i)]
        beyond = key.expr < values[i] if key.descending else key.expr > values[i]
        either.append(sa.and_(*same, beyond))
    return sa.or_(*either)
