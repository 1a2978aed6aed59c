"""Formula-injection neutralisation of CSV cells."""

from __future__ import annotations

import pytest

from dermascan.csvsafe import safe_cell, safe_row, unsafe_cell


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_text_is_prefixed_and_restored(text):
    assert safe_cell(text) == "'" + text
    assert unsafe_cell(safe_cell(text)) == text


@pytest.mark.parametrize("text", ["'=already quoted", "''+1"])
def test_text_that_already_looks_escaped_round_trips(text):
    assert safe_cell(text) == "'" + text
    assert unsafe_cell(safe_cell(text)) == text


@pytest.mark.parametrize("value", ["melanoma", "", "'quoted", -0.5, 3, None])
def test_other_values_pass_through(value):
    assert safe_cell(value) == value
    assert unsafe_cell(value) == value


def test_rows_keep_numbers_numeric():
    assert safe_row({"score": -0.25, "note": "-see above", "n": 2}) == {"score": -0.25, "note": "'-see above", "n": 2}
