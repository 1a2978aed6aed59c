"""Hostile file names, notes and card text on every page: shown as their characters, never as Markdown.

Reproduced bugs: on Compare a zip entry ``![t](https:evil.example?leak=1).jpg`` became an ``<img>`` the browser
fetched; on Batch a name became a live "click to log in" link; bidi overrides disguised names in tables.
Here the real app runs on a tiny real model and real HAM10000 images; every element that renders Markdown
must hold the escaped form (``dermascan.render.text.markdown_literal``) and nothing live once its escapes are taken out.
(tests/e2e/test_outside_requests.py checks the same in Chromium, where the Markdown is really rendered.)
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from app_helpers import HAM, assert_no_exception, build_tiny_model, new_app

from dermascan.render.text import display_text, markdown_literal
from dermascan.reviews import CaseRecord, ReviewStore

IMAGE_NAME = "![t](https:evil.example?leak=1).jpg"
LINK_NAME = "[Session expired - click to log in](https://evil.example).jpg"  # a browser sends no "/" in names:
ZIP_LINK_NAME = "[Session expired - click to log in](http:evil.example).jpg"  # the zip entry keeps a link anyway
BIDI_NAME = "invoice\u202egnp.exe.jpg"
MIXED_NAME = "**bold** :red[x] $x$ <img src=x>.jpg"
# What must never be left once every backslash-escaped character is removed from a Markdown body.
LIVE = ("](", "![", ":red[", "$x$", "**bold**", "<img", "\u202e", "evil.example)")


@pytest.fixture
def images():
    """Three real HAM10000 images; skips without ../shared."""
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return [p.read_bytes() for p in sorted((HAM / "images").glob("ISIC_*.jpg"))[:3]]


def zip_of(entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def markdown_bodies(at) -> list[str]:
    """Everything on the page that Streamlit renders as Markdown: bodies, labels, captions, options, help."""
    bodies = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header",
                                   "subheader", "toast") for e in at.get(kind)]
    bodies += [m.label for m in at.metric] + [str(m.value) for m in at.metric]
    bodies += [c for image in at.image for c in image.captions]
    bodies += [e.label for e in at.expander] + [o for radio in at.radio for o in radio.options]
    bodies += [w.help for kind in ("metric", "selectbox", "radio", "button") for w in at.get(kind)
               if getattr(w, "help", None)]
    return bodies


def assert_nothing_live(at) -> None:
    """No body holds an unescaped piece of a hostile string."""
    for body in markdown_bodies(at):
        unescaped = re.sub(r"\\.", "", body)
        for live in LIVE:
            assert live not in unescaped, f"{live!r} is live in {body!r}"


def shows(at, original: str) -> bool:
    """Some Markdown body holds ``original`` in its escaped form."""
    return any(markdown_literal(original) in body for body in markdown_bodies(at))


def test_batch_zip_names_are_escaped_in_text_and_plain_in_tables(app_env, images):
    entries = [(IMAGE_NAME, images[0]), (ZIP_LINK_NAME, images[1]), (BIDI_NAME, images[2]),
               (MIXED_NAME, b"\xff\xd8 not a jpeg")]
    at = new_app().run()
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value(("names.zip", zip_of(entries), "application/zip")).run()
    at.button(key="batch_start").click().run()
    assert_no_exception(at)

    errors, worklist = at.dataframe[0].value, at.dataframe[1].value
    assert list(errors["File"]) == [MIXED_NAME]  # no bidi, no escapes: a table cell is not Markdown
    assert sorted(worklist["File"]) == sorted([IMAGE_NAME, ZIP_LINK_NAME, display_text(BIDI_NAME)])
    assert "invoicegnp.exe.jpg" in set(worklist["File"])

    for name in (IMAGE_NAME, ZIP_LINK_NAME, BIDI_NAME):  # the overlay heading of each selected row
        row = list(worklist["File"]).index(display_text(name))
        at.session_state["batch_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
        at.run()
        assert_no_exception(at)
        heading = next(md.value for md in at.markdown if "malignancy" in md.value)
        assert heading.startswith(f"**{markdown_literal(name)}** · ")
        assert_nothing_live(at)
    # The CSV and the review log keep the names exactly as they were in the archive.
    assert {c.file_name for c in ReviewStore().list_cases()} == {IMAGE_NAME, ZIP_LINK_NAME, BIDI_NAME}


def test_compare_errors_and_the_image_selector_show_names_literally(app_env, images):
    entries = [(IMAGE_NAME, b"\xff\xd8 not a jpeg"), (BIDI_NAME, images[0]), (MIXED_NAME, images[1])]
    at = new_app().run()
    at.switch_page("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value(("names.zip", zip_of(entries), "application/zip")).run()
    assert_no_exception(at)
    assert any(e.value.startswith(f"{markdown_literal(IMAGE_NAME)} cannot be analysed") for e in at.error)
    assert at.selectbox(key="compare_image").options == [IMAGE_NAME, "invoicegnp.exe.jpg", MIXED_NAME]
    assert_nothing_live(at)
    at.selectbox(key="compare_image").set_value(2).run()
    assert_no_exception(at)
    assert not at.error and at.metric  # the good image is compared; its name appears nowhere as Markdown
    assert_nothing_live(at)


def test_analyze_then_review_log_escape_names_details_and_notes(app_env, images):
    at = new_app().run()
    at.text_input(key="case_patient_id").input(IMAGE_NAME)
    at.text_input(key="case_body_site").input(MIXED_NAME)
    at.file_uploader(key="analyze_upload").set_value((LINK_NAME, images[0], "image/jpeg")).run()
    assert_no_exception(at)
    assert_nothing_live(at)
    prefix = next(r.key for r in at.radio if r.key and r.key.endswith("_agree")).removesuffix("_agree")
    at.radio(key=f"{prefix}_management").set_value("monitor")
    at.text_area(key=f"{prefix}_note").input(f"{LINK_NAME}\n# not a heading")
    at.text_input(key=f"{prefix}_reviewer").input(BIDI_NAME)
    next(b for b in at.button if b.label == "Save to review log").click().run()
    assert_no_exception(at)
    [case] = ReviewStore().list_cases()
    assert (case.file_name, case.patient_id, case.decision.reviewer) == (LINK_NAME, IMAGE_NAME, BIDI_NAME)  # as typed

    ReviewStore().add_case(CaseRecord(  # as an imported CSV may bring it: a name and a band that are any text
        image_sha256="ab" * 32, top_label="nv", session_id="someone-else", source="import", file_name=BIDI_NAME,
        created_at="2025-01-02T03:04:05+00:00", model_version="[v1](https://evil.example)", top_probability=0.9,
        malignant_score=0.04, triage="low", explanation=MIXED_NAME, probabilities={"nv": 0.9, "mel": 0.1}))
    at.switch_page("pages/review_log.py").run()
    assert_no_exception(at)
    log = at.dataframe[0].value
    assert list(log["File"]) == [LINK_NAME, "invoicegnp.exe.jpg"]
    for row, name in enumerate([LINK_NAME, BIDI_NAME]):
        at.session_state["log_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
        at.run()
        assert_no_exception(at)
        assert any(s.value.endswith(f"· {markdown_literal(name)}") for s in at.subheader)
        assert_nothing_live(at)
    assert shows(at, MIXED_NAME)  # the imported explanation, in a caption
    at.session_state["log_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert shows(at, IMAGE_NAME) and shows(at, MIXED_NAME)  # the case details summary
    history = at.dataframe[1].value
    assert list(history["Note"]) == [f"{LINK_NAME} # not a heading"]
    assert list(history["Reviewer"]) == ["invoicegnp.exe.jpg"]


def test_model_card_text_is_plain_on_the_model_page_and_in_the_sidebar(monkeypatch, app_env, tmp_path):
    card = {"name": IMAGE_NAME, "version": "`v1` [x](https://evil.example)", "description": LINK_NAME,
            "intended_use": MIXED_NAME, "limitations": [BIDI_NAME, "# heading"],
            "display_names": {"nv": "[Nevus](https://evil.example)"},
            "metrics": {"[m](https://evil.example)": {"balanced_accuracy": 0.5}}}
    card_model = build_tiny_model(tmp_path)
    card_file = card_model.with_name("tiny.card.json")
    card_file.write_text(json.dumps({**json.loads(card_file.read_text(encoding="utf-8")), **card}), encoding="utf-8")
    monkeypatch.setenv("DERMASCAN_MODEL", str(card_model))
    at = new_app().run()
    at.switch_page("pages/model_card.py").run()
    assert_no_exception(at)
    for text in (IMAGE_NAME, LINK_NAME, MIXED_NAME, BIDI_NAME, "# heading"):
        assert shows(at, text), text
    assert_nothing_live(at)
    classes = at.dataframe[0].value
    assert "[Nevus](https://evil.example)" in set(classes["Diagnosis"])  # a table cell shows it as it is
    for body in markdown_bodies(at):
        assert "evil.example)" not in re.sub(r"\\.", "", body)
