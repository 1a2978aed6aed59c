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


# What spreadsheets skip or fold before the sign (issue 11): leading whitespace of every kind, invisible
# characters, and full-width / small look-alikes of = + - @.
HIDDEN_PREFIXES = ["\n", " ", "\u00a0", "\v", "\f", "\u2028", "\u2029", "\r", "\t", "\u3000", "\u200b", "\u200c",
                   "\u200d", "\u2060", "\ufeff", "\u200e", "\x1c", " \n\u00a0",
                   *(chr(c) for c in range(0x2000, 0x200B))]
LOOK_ALIKES = ["\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66", "\ufe62", "\ufe63"]


@pytest.mark.parametrize("prefix", HIDDEN_PREFIXES, ids=lambda p: "+".join(f"U{ord(c):04X}" for c in p))
@pytest.mark.parametrize("sign", ["=", "+", "-", "@", "\uff1d"])
def test_formulas_behind_whitespace_or_invisible_characters_are_neutralised(prefix, sign):
    text = prefix + sign + "HYPERLINK(\"http://evil.invalid\")"
    assert safe_cell(text) == "'" + text
    assert unsafe_cell(safe_cell(text)) == text


@pytest.mark.parametrize("sign", LOOK_ALIKES, ids=lambda s: f"U{ord(s):04X}")
def test_full_width_and_small_signs_are_neutralised(sign):
    text = sign + "1+1"
    assert safe_cell(text) == "'" + text
    assert unsafe_cell(safe_cell(text)) == text
    assert safe_cell("'" + text) == "''" + text  # typed escape quote: escaped once more


@pytest.mark.parametrize("text", ["  melanoma", "\u00a0note", "\u200bx", "\uff21bc", "a=b", "1-2", "\n", " "])
def test_text_whose_first_visible_character_is_not_a_sign_passes(text):
    assert safe_cell(text) == text
    assert unsafe_cell(text) == text
