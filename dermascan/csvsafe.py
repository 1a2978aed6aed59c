"""Spreadsheet-safe CSV cells (no formula injection).

A cell that starts with ``= + - @``, a tab or a carriage return is run as a formula by
Excel / LibreOffice / Sheets. OWASP's advice: prefix such text with a single quote.
Numbers are left alone, so a negative value stays a number.
"""

from __future__ import annotations

import numbers

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _looks_like_formula(text: str) -> bool:
    # Quotes are skipped so that text which already starts with an escape quote ("'=x", typed
    # by a user) is escaped once more and round-trips exactly.
    return text.lstrip("'").startswith(FORMULA_PREFIXES)


def safe_cell(value):
    """``value`` unchanged unless it is text a spreadsheet would run as a formula (then ``'`` + text)."""
    if isinstance(value, str) and _looks_like_formula(value):
        return "'" + value
    return value


def unsafe_cell(value):
    """Undo ``safe_cell`` on a cell read back from our own export."""
    if isinstance(value, str) and value.startswith("'") and _looks_like_formula(value[1:]):
        return value[1:]
    return value


def safe_row(row: dict) -> dict:
    """``safe_cell`` over every text value of a row; numbers pass through."""
    return {k: v if isinstance(v, numbers.Number) else safe_cell(v) for k, v in row.items()}
