"""User strings made safe to show: invisible characters removed, Markdown syntax neutralised.

File names, zip entries, notes, reviewer names, imported CSV cells and model-card text all come
from someone else. Shown raw in an element that renders Markdown (and Streamlit renders it in
alerts, captions, headings, labels, help, tab and expander titles, metric values, image captions),
``![t](https:evil.example)`` becomes an ``<img>`` the browser fetches and ``[log in](https://...)``
a live link. Bidi controls reorder what the eye reads ("invoice" + U+202E + "gnp.exe.jpg" reads as
"invoicegpj.exe.png"). Only what is *shown* is changed: stored values stay as the user gave them.
"""

from __future__ import annotations

import re
import string
import unicodedata

# Kept although they are format characters: they join letters (Persian, Indic scripts) and emoji
# sequences, and cannot reorder or hide text.
_JOINERS = {"\u200c", "\u200d"}
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")
# Every ASCII punctuation character, because CommonMark lets any of them be backslash-escaped and
# Streamlit's extensions hang off several of them (``:material/..:`` icons and ``:color[..]``
# directives on ``:``, ``/``, ``[``; LaTeX on ``$``; GFM autolinks on ``.``, ``:`` and ``@``;
# entities on ``&``). One character class, one pass: nothing is escaped twice.
_MARKDOWN_SPECIALS = re.compile("([" + re.escape(string.punctuation) + "])")
# GFM turns "https://...", "www...." and "name@host.tld" into links *after* parsing, on the text itself,
# so no escape stops it (checked in Chromium). An invisible word joiner where the pattern needs two characters
# side by side breaks it and changes nothing on screen.
WORD_JOINER = "\u2060"
_AUTOLINK_SEAMS = re.compile(r"(?<=:)(?=//)|(?i:(?<=www)(?=\.))|(?=@)")


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    return (category == "Cf" and char not in _JOINERS) or category == "Cc"


def display_text(value: object) -> str:
    """``value`` as one line of visible text: line breaks become a space, bidi controls (U+202A-U+202E,
    U+2066-U+2069, U+200E/U+200F, U+061C) and other invisible format or control characters are dropped.

    For places that show text literally (table cells, select-box options); not Markdown-safe.
    """
    text = str(value)
    if text.isprintable():  # no control, format or line-break character: nearly every name, at C speed
        return text
    text = _LINE_BREAKS.sub(" ", text).replace("\t", " ")
    return "".join(c for c in text if not _invisible(c))


def markdown_literal(value: object) -> str:
    """``display_text(value)`` with every Markdown construct escaped, so an element that renders
    Markdown shows exactly these characters: no link, image, emphasis, heading, HTML, icon, colour,
    math or autolink (a word joiner, U+2060, sits inside ``://``, ``www.`` and before ``@``).

    Leading and trailing blanks are dropped: four leading spaces would make a code block.
    """
    text = display_text(value).strip()
    return _MARKDOWN_SPECIALS.sub(r"\\\1", _AUTOLINK_SEAMS.sub(WORD_JOINER, text))
