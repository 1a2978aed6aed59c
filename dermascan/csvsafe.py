"""Spreadsheet-safe CSV cells (no formula injection).

A cell that starts with ``= + - @``, a tab or a carriage return is run as a formula by
Excel / LibreOffice / Sheets. OWASP's advice: prefix such text with a single quote.
Numbers are left alone, so a negative value stays a number.
"""

from __future__ import annotations

import numbers

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value`` unchanged unless it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def unsafe_cell(value):
    """Undo ``safe_cell`` on a cell read back from our own export."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value


def safe_row(row: dict) -> dict:
    """``safe_cell`` over every text value of a row; numbers pass through."""
    return {k: v if isinstance(v, numbers.Number) else safe_cell(v) for k, v in row.items()}
