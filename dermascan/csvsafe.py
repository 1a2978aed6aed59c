"""Spreadsheet-safe CSV cells (no formula injection).

A cell that starts with ``= + - @``, a tab or a carriage return is run as a formula by
Excel / LibreOffice / Sheets. OWASP's advice: prefix such text with a single quote.
Numbers are left alone, so a negative value stays a number.

Spreadsheets also trim what comes before the sign, and map look-alikes onto it, so the check looks
past every leading quote, whitespace (space, NBSP, LF, VT, FF, U+2000-U+200A, U+2028, U+3000...) and
invisible format / control character (zero-width space and joiners, BOM, bidi marks), and compares
the first visible character after NFKC folding (full-width ``＝ ＋ － ＠``, small ``﹦ ﹢ ﹣``...).
Neutralising too much is harmless: ``unsafe_cell`` restores exactly what ``safe_cell`` changed.
"""

from __future__ import annotations

import numbers
import unicodedata

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Characters that start a formula when they open a cell (tab and CR: OWASP's list)."""

# Unicode categories a spreadsheet may skip before the formula sign: space / line / paragraph
# separators, control characters (LF, VT, FF...) and invisible format characters (U+200B, U+FEFF...).
_SKIPPED_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
_SIGNS = FORMULA_PREFIXES[:4]


def _skipped(char: str) -> bool:
    return char == "'" or char.isspace() or unicodedata.category(char) in _SKIPPED_CATEGORIES


def _looks_like_formula(text: str) -> bool:
    # Leading quotes are skipped too, so that text which already starts with an escape quote ("'=x", typed by a
    # user) is escaped once more and round-trips exactly: _looks_like_formula("'" + t) == _looks_like_formula(t).
    if text.lstrip("'").startswith(FORMULA_PREFIXES):
        return True
    for char in text:
        if not _skipped(char):
            return unicodedata.normalize("NFKC", char).startswith(_SIGNS)
    return False


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
