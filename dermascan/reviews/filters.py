"""Filtering the review log: which cases a reviewer asked to see.

UI-free so the dashboard, the CLI and tests share one definition of "decided" and of
what a text search matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..model.card import HAM10000_DISPLAY_NAMES


def _default_display_name(label: str) -> str:
    return HAM10000_DISPLAY_NAMES.get(label, label)


def searchable_text(case, display_name: Callable[[str], str] = _default_display_name) -> str:
    """Lower-case text a search matches: file name, AI and reviewer diagnoses (codes and names)."""
    parts = [case.file_name or "", case.top_label or "", display_name(case.top_label) if case.top_label else ""]
    diagnosis = case.decision.reviewer_diagnosis if case.decision is not None else None
    if diagnosis:
        parts += [diagnosis, display_name(diagnosis)]
    return " ".join(parts).lower()


def filter_cases(cases: Iterable, *, bands: Sequence[str] | None = None, decided: bool | None = None,
                 text: str = "", display_name: Callable[[str], str] = _default_display_name) -> list:
    """Cases in triage ``bands`` (all when empty), decided or not (both when None), matching ``text``.

    ``text`` matches case-insensitively, every word as a substring in any order ("basal carc" finds
    "Basal cell carcinoma"); order of ``cases`` is kept.
    """
    words = text.lower().split()
    kept = []
    for case in cases:
        if bands and case.triage not in bands:
            continue
        if decided is not None and (case.decision is not None) != decided:
            continue
        if words:
            haystack = searchable_text(case, display_name)
            if not all(w in haystack for w in words):
                continue
        kept.append(case)
    return kept
