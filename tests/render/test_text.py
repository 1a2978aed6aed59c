"""dermascan.render.text: user strings shown as the characters they are, never as Markdown, never disguised.

Two judges: a scan of the escaped string (every ASCII punctuation character behind exactly one
backslash) and a real CommonMark renderer (markdown-it-py, what Streamlit's react-markdown follows),
which must produce one paragraph of text equal to the visible original. Streamlit's own extensions
(icons, directives, math, GFM autolinks) are checked in Chromium by tests/e2e/test_outside_requests.py.
"""

from __future__ import annotations

import html
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.presentation import plain
from dermascan.render.text import WORD_JOINER, display_text, markdown_literal

HOSTILE = {
    "image": "![t](https:evil.example?leak=1).jpg",
    "link": "[Session expired - click to log in](https://evil.example).jpg",
    "reference link": "[x][1]\n\n[1]: https://evil.example",
    "autolink": "<https://evil.example>",
    "bare URL": "see https://evil.example and www.evil.example",
    "e-mail": "write to user@evil.example",
    "emphasis": "**bold** *em* _em_ __strong__ ~~strike~~",
    "heading": "# Heading",
    "setext heading": "Title\n===",
    "list": "- item\n1. one",
    "quote": "> quoted",
    "code": "`code` and ```fence```",
    "indented code": "    four spaces",
    "HTML": "<img src=x onerror=alert(1)> <script>alert(1)</script> <b>b</b>",
    "entity": "&lt;b&gt; &amp; &#x3C; &copy;",
    "backslashes": "a\\b \\* \\\\ end\\",
    "material icon": ":material/home: and :material/dermatology:",
    "colour directive": ":red[x] :blue-background[y] :small[z] :help[tip]",
    "emoji shortcode": ":smile: :+1:",
    "LaTeX": "$x$ and $$x^2$$",
    "table": "| a | b |\n|---|---|\n| 1 | 2 |",
    "hard break": "one  \ntwo",
    "everything": "**bold** :red[x] $x$ <img src=x>.jpg",
}
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
        "\u061c"]
OTHER_INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0041", "\x00", "\x1b", "\x7f"]


def unescaped_specials(text: str) -> list[str]:
    """ASCII punctuation in ``text`` not behind a backslash (a backslash escapes exactly the next character)."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            assert i + 1 < len(text) and text[i + 1] in string.punctuation, f"dangling backslash at {i} in {text!r}"
            i += 2
            continue
        if text[i] in string.punctuation:
            found.append(text[i])
        i += 1
    return found


def rendered(markdown: str) -> str:
    """CommonMark (plus GFM tables and strikethrough) HTML of ``markdown``."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def assert_shown_literally(original: str) -> None:
    escaped = markdown_literal(original)
    out = rendered(escaped)
    match = re.fullmatch(r"<p>(.*)</p>\n", out, flags=re.S)
    assert match, f"{original!r} rendered as {out!r}"
    body = match.group(1)
    assert "<" not in body, f"{original!r} produced markup: {body!r}"
    assert html.unescape(body).replace(WORD_JOINER, "") == display_text(original).strip()


@pytest.mark.parametrize("original", HOSTILE.values(), ids=HOSTILE.keys())
def test_each_markdown_construct_is_shown_as_its_characters(original):
    escaped = markdown_literal(original)
    assert unescaped_specials(escaped) == []
    unescaped = re.sub(r"\\.", "", escaped)  # what is left once every escaped character is taken out
    for live in ("](", "![", "[", "<", ":material", ":red[", "$", "**", "#", "`", "&", "\n"):
        assert live not in unescaped
    assert_shown_literally(original)


def test_the_reported_names_escape_exactly():
    assert markdown_literal("![t](https:evil.example?leak=1).jpg") == r"\!\[t\]\(https\:evil\.example\?leak\=1\)\.jpg"
    assert markdown_literal(":material/home:") == r"\:material\/home\:"
    assert markdown_literal("$x$ <b>") == r"\$x\$ \<b\>"


def test_autolinks_get_an_invisible_seam_where_the_pattern_needs_neighbours():
    # GFM links these after parsing, on the text itself, whatever the escapes: the word joiner splits them.
    assert markdown_literal("https://e.example") == "https\\:" + WORD_JOINER + "\\/\\/e\\.example"
    assert markdown_literal("WWW.e.example") == "WWW" + WORD_JOINER + "\\.e\\.example"
    assert markdown_literal("a@e.example") == "a" + WORD_JOINER + "\\@e\\.example"
    assert WORD_JOINER not in markdown_literal("ratio 3:2, file.jpg")  # no seams where nothing could link


def test_one_pass_escapes_once():
    assert markdown_literal("\\") == "\\\\"
    assert markdown_literal("a\\*b") == "a\\\\\\*b"  # the backslash and the star, each escaped once
    assert markdown_literal(r"\[already\]") == r"\\\[already\\\]"  # a user's own escapes are text too
    punctuation = string.punctuation.replace("@", "")  # "@" also gets its seam
    assert len(markdown_literal(punctuation)) == 2 * len(punctuation)


@pytest.mark.parametrize("char", BIDI + OTHER_INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_controls_and_invisible_characters_are_dropped_from_shown_names(char):
    name = f"invoice{char}gnp.exe.jpg"
    assert display_text(name) == "invoicegnp.exe.jpg"
    assert markdown_literal(name) == r"invoicegnp\.exe\.jpg"


def test_the_reported_bidi_name_no_longer_reads_as_a_png():
    assert display_text("invoice\u202egnp.exe.jpg") == "invoicegnp.exe.jpg"


def test_letters_accents_emoji_and_joiners_stay():
    for text in ("Café Ñandú 皮膚 جلد", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "👩\u200d⚕️ 🔬"):
        assert display_text(text) == text


def test_line_breaks_and_tabs_collapse_to_spaces():
    assert display_text("line1\nline2\r\n\r\nline3\u2028x\u2029y\x85z\tt") == "line1 line2 line3 x y z t"
    assert markdown_literal("a\n# b") == r"a \# b"


def test_non_strings_are_shown_as_text():
    assert markdown_literal(None) == "None"
    assert markdown_literal(ValueError("bad [x](y)")) == r"bad \[x\]\(y\)"
    assert markdown_literal(1.5) == r"1\.5"


def test_the_dashboard_helper_is_the_core_one():
    for original in HOSTILE.values():
        assert plain(original) == markdown_literal(original)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
       | st.text(alphabet=string.printable + "\u202e\u2066\u200f", max_size=40))
def test_any_text_is_shown_literally(original):
    escaped = markdown_literal(original)
    assert unescaped_specials(escaped) == []
    assert "\n" not in escaped and "\r" not in escaped
    assert not any(c in escaped for c in BIDI)
    if display_text(original).strip():  # all-blank text renders as nothing at all, which is also fine
        assert_shown_literally(original)
