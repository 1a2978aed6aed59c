"""Which cases of the review log to show, in which order: ``CaseQuery``, shared by the store, the pages and the CLI.

The store runs a query in SQL (``ReviewStore.count_matching``, ``page_cases``, ``iter_cases``); ``matches`` and
``sort_key`` here are the reference meaning of each field, written in plain Python so tests can check the SQL
against them on the same cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model.card import HAM10000_DISPLAY_NAMES
from .records import MAX_TEXT_CHARS, SURROGATES

SORTS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "risk": "Highest malignancy score first",
    "patient": "Patient id (A to Z), newest first within a patient",
}
"""The orders a query can ask for, with their wording for select boxes; every order ends with the case id."""

SEARCHED_FIELDS = ("file_name", "patient_id", "lesion_id", "top_label", "reviewer_diagnosis", "reviewer", "note")
"""What a text search looks in (top_label also by its display name)."""

MAX_SEARCH_WORDS = 10
NO_BAND = ""
"""Stands for cases without a triage band (older cases, or ones the store holds without one) in ``bands``."""


def _default_display_name(label: str) -> str:
    return HAM10000_DISPLAY_NAMES.get(label, label)


@dataclass(frozen=True)
class CaseQuery:
    """A filter and an order over the stored cases.

    ``bands``: triage values to keep (``"low"``, ``"medium"``, ``"high"``, ``"indeterminate"``, ``NO_BAND``);
    empty keeps all. ``decided``: only cases with (True) or without (False) a current decision; None: both.
    ``text``: every word must occur, case-insensitively, in one of ``SEARCHED_FIELDS`` (in any order; a word may
    also match a label's display name, so "basal carc" finds bcc). ``session_id``: only that session's cases.
    ``session_first``: that session's cases come before all others, in ``sort`` order within each part.
    ``sort``: one of ``SORTS``.
    """

    bands: tuple[str, ...] = ()
    decided: bool | None = None
    text: str = ""
    session_id: str | None = None
    session_first: str | None = None
    sort: str = "newest"

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of: {', '.join(SORTS)}")
        if not isinstance(self.text, str) or len(self.text) > MAX_TEXT_CHARS:
            raise ValueError("the search text is too long")
        if len(self.words) > MAX_SEARCH_WORDS:
            raise ValueError(f"search for at most {MAX_SEARCH_WORDS} words at once")
        object.__setattr__(self, "bands", tuple(str(band) for band in self.bands))

    @property
    def words(self) -> tuple[str, ...]:
        """The search words, lower-case (NUL characters and lone surrogates dropped: no stored text holds them)."""
        return tuple(SURROGATES.sub("", self.text.replace("\x00", "")).lower().split())

    def describe(self) -> str:
        """A short slug of what the query keeps, for file names (``all``, ``high-medium_undecided_search``)."""
        parts = ["-".join(band or "none" for band in self.bands) or "all"]
        if self.decided is not None:
            parts.append("decided" if self.decided else "undecided")
        if self.words:
            parts.append("search")
        return "_".join(parts)


def searchable_values(case: Any, display_name: Callable[[str], str] = _default_display_name) -> list[str]:
    """The lower-case texts of ``case`` a search word may occur in."""
    decision = case.decision
    values = [case.file_name, case.patient_id, case.lesion_id, case.top_label,
              display_name(case.top_label) if case.top_label else None]
    if decision is not None:
        values += [decision.reviewer_diagnosis, decision.reviewer, decision.note]
        if decision.reviewer_diagnosis:
            values.append(display_name(decision.reviewer_diagnosis))
    return [value.lower() for value in values if value]


def matches(query: CaseQuery, case: Any, display_name: Callable[[str], str] = _default_display_name) -> bool:
    """True if ``case`` (a ``CaseRecord``) passes the query's filters: the reference for the store's SQL."""
    if query.bands and (case.triage or NO_BAND) not in query.bands:
        return False
    if query.decided is not None and (case.decision is not None) != query.decided:
        return False
    if query.session_id is not None and case.session_id != query.session_id:
        return False
    values = searchable_values(case, display_name) if query.words else []
    return all(any(word in value for value in values) for word in query.words)


def sort_key(query: CaseQuery, case: Any) -> tuple:
    """The order of ``case`` under ``query`` (ascending): the reference for the store's ORDER BY."""
    first = 0 if query.session_first is not None and case.session_id == query.session_first else 1
    newest = (_desc(case.created_at), -case.case_id)
    if query.sort == "oldest":
        return first, case.created_at, case.case_id
    if query.sort == "risk":
        score = case.malignant_score
        # Cases without a score (gated, older) come after every scored one.
        return first, score is None, -(score or 0.0), *newest
    if query.sort == "patient":
        return first, case.patient_id is None, case.patient_id or "", *newest
    return first, *newest


def _desc(text: str) -> tuple[int, ...]:
    # Timestamps are canonical ISO strings: negating their code points sorts them newest first.
    return tuple(-ord(ch) for ch in text)
