"""The Review log page: every case with its decision, filters, re-showing, editing, CSV out and in."""

from __future__ import annotations

import csv
import io

from app_helpers import as_shown, assert_no_exception, downloaded, new_app

from dermascan.render.text import markdown_literal
from dermascan.reviews import CaseRecord, Decision, ReviewStore

LOG = "pages/review_log.py"


def other_session_case(store: ReviewStore, *, decided: bool) -> int:
    """A case analysed earlier in another session (its image is not in this session)."""
    record = CaseRecord(
        image_sha256="ab" * 32, top_label="nv", session_id="someone-else", source="batch", file_name="old_visit.jpg",
        created_at="2025-01-02T03:04:05+00:00", model_version="test-1", top_probability=0.91, malignant_score=0.04,
        triage="low", explanation="Top class: Melanocytic nevus (mole) (nv) at 91%.",
        probabilities={"akiec": 0.01, "bcc": 0.01, "bkl": 0.02, "df": 0.01, "mel": 0.02, "nv": 0.91, "vasc": 0.02},
        decision=Decision(reviewer_agrees=True, reviewer_diagnosis="nv", management="reassure") if decided else None,
    )
    return store.add_case(record)


def analyze_then_open_log(path):
    """A session that analysed ``path`` on the Analyze page and then opened the Review log."""
    at = new_app().run()
    at.file_uploader(key="analyze_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
    at.run()
    at.switch_page(LOG).run()
    assert_no_exception(at)
    return at


def select_row(at, row: int):
    """Select a table row the way a click does (AppTest has no click on dataframes)."""
    at.session_state["log_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_this_session_first_and_filters(app_env, ham_images):
    other_session_case(ReviewStore(), decided=True)
    at = analyze_then_open_log(ham_images[0])
    log = at.dataframe[0].value
    assert list(log["File"]) == [ham_images[0].name, "old_visit.jpg"]
    assert list(log["This session"]) == [True, False]
    assert log["Reviewer diagnosis"].iloc[1] == "Melanocytic nevus (mole)" and log["Management"].iloc[1]

    at.segmented_control(key="log_status").set_value("Undecided").run()
    assert list(at.dataframe[0].value["File"]) == [ham_images[0].name]
    at.segmented_control(key="log_status").set_value("Decided").run()
    assert list(at.dataframe[0].value["File"]) == ["old_visit.jpg"]
    at.segmented_control(key="log_status").set_value("All").run()
    at.text_input(key="log_search").input("nevus mole").run()  # words of a plain-language name
    assert "old_visit.jpg" in set(at.dataframe[0].value["File"])
    at.text_input(key="log_search").input("no-such-file").run()
    assert at.dataframe[0].value.empty
    at.text_input(key="log_search").input("").run()
    at.pills(key="log_bands").set_value(["high"]).run()
    assert "old_visit.jpg" not in set(at.dataframe[0].value["File"])  # a low-band case


def test_selected_row_shows_overlay_again_or_says_the_image_is_not_kept(app_env, ham_images):
    other_session_case(ReviewStore(), decided=False)
    at = analyze_then_open_log(ham_images[0])
    select_row(at, 0)  # this session's image: the overlay comes from memory
    assert_no_exception(at)
    assert any(c.startswith("Grad-CAM") for img in at.image for c in img.captions)
    assert at.slider(key="log_alpha")
    select_row(at, 1)  # another session's case: no pixels are stored
    assert_no_exception(at)
    assert any("image is not kept" in i.value for i in at.info)
    assert not at.image


def test_edit_a_decision_from_the_log(app_env, ham_images):
    case_id = other_session_case(ReviewStore(), decided=True)
    at = analyze_then_open_log(ham_images[0])
    select_row(at, 1)
    at.radio(key=f"log_decision_{case_id}_agree").set_value("other")
    at.selectbox(key=f"log_decision_{case_id}_diagnosis").set_value("mel")
    at.radio(key=f"log_decision_{case_id}_management").set_value("biopsy")
    next(b for b in at.button if b.label == "Save to review log").click().run()
    assert_no_exception(at)
    decision = ReviewStore().get_decision(case_id)
    assert (decision.reviewer_agrees, decision.reviewer_diagnosis, decision.management) == (False, "mel", "biopsy")
    row = at.dataframe[0].value.set_index("Case").loc[case_id]
    assert row["Reviewer diagnosis"] == "Melanoma" and row["Management"] == "Biopsy"
    assert len(ReviewStore().decision_history(case_id)) == 2  # the earlier decision is kept in the history


def test_export_parses_back_and_imports_into_an_empty_database(monkeypatch, app_env, ham_images, media, tmp_path):
    other_session_case(ReviewStore(), decided=True)
    at = analyze_then_open_log(ham_images[0])
    button = next(b for b in at.get("download_button") if "CSV" in b.proto.label)
    data = downloaded(media, button)
    assert data == ReviewStore().export_csv()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    by_file = {r["file_name"]: r for r in rows}
    assert set(by_file) == {ham_images[0].name, "old_visit.jpg"}
    assert by_file["old_visit.jpg"]["reviewer_diagnosis"] == "nv"
    assert by_file[ham_images[0].name]["source"] == "single"

    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(tmp_path / "empty.sqlite3"))
    fresh = new_app()
    fresh.switch_page(LOG).run()
    assert fresh.dataframe[0].value.empty
    fresh.file_uploader(key="log_import").set_value(("log.csv", data, "text/csv")).run()
    next(b for b in fresh.button if b.label == "Import CSV").click().run()
    assert_no_exception(fresh)
    assert any("2 new case(s) imported" in s.value for s in fresh.success)
    assert set(fresh.dataframe[0].value["File"]) == {ham_images[0].name, "old_visit.jpg"}
    assert ReviewStore(tmp_path / "empty.sqlite3").export_csv() == data  # same rows, same bytes


def test_import_reports_bad_rows(app_env, tmp_path):
    store = ReviewStore()
    other_session_case(store, decided=False)
    good = store.export_csv().decode("utf-8-sig")
    header, row = good.splitlines()[:2]
    broken = row.replace("ab" * 32, "not-a-hash", 1)
    at = new_app()
    at.switch_page(LOG).run()
    at.file_uploader(key="log_import").set_value(("bad.csv", f"{header}\r\n{broken}\r\n".encode(), "text/csv"))
    at.run()
    next(b for b in at.button if b.label == "Import CSV").click().run()
    assert_no_exception(at)
    assert any("rejected" in s.value for s in at.success)
    assert any("image_sha256" in c.value for c in at.code)


def test_stored_text_is_shown_as_text_not_markdown(app_env):
    store = ReviewStore()
    record = CaseRecord(image_sha256="cd" * 32, top_label="nv", file_name="![x](http://example.invalid/a.png).jpg",
                        patient_id="[click](http://example.invalid)", probabilities={"nv": 1.0})
    store.add_case(record)
    at = new_app()
    at.switch_page(LOG).run()
    select_row(at, 0)
    assert_no_exception(at)
    assert at.subheader[0].value == f"Case 1 · {markdown_literal(record.file_name)}"
    assert as_shown(at.subheader[0].value) == "Case 1 · ![x](http://example.invalid/a.png).jpg"
    assert any("\\[click\\]" in md.value for md in at.markdown)


def log_case(store: ReviewStore, name: str, *, top_label: str, score: float, triage: str, created_at: str) -> int:
    """A stored case of another session with the given AI result."""
    probabilities = dict.fromkeys(["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], 0.0)
    probabilities[top_label] = 1.0
    return store.add_case(CaseRecord(
        image_sha256=f"{len(name):02x}{name.encode().hex()}".ljust(64, "0")[:64], top_label=top_label,
        session_id="someone-else", file_name=name, created_at=created_at, model_version="test-1",
        top_probability=0.9, malignant_score=score, triage=triage, probabilities=probabilities))


def ticked(at) -> list:
    """The case ids of the rows the table shows ticked."""
    rows = at.session_state["log_table"]["selection"]["rows"]
    return [int(at.dataframe[0].value["Case"].iloc[r]) for r in rows]


def panel_case(at) -> int | None:
    """The case id the detail panel shows (None: no panel)."""
    heads = [h.value for h in at.subheader if h.value.startswith("Case ")]
    return int(heads[0].split()[1]) if heads else None


def test_repro_2_the_selection_follows_the_case_through_filter_sort_and_import(app_env, tmp_path):
    store = ReviewStore()
    ids = {name: log_case(store, name, top_label=label, score=score, triage=band,
                          created_at=f"2025-01-0{day}T10:00:00Z")
           for day, (name, label, score, band) in enumerate([
               ("a_nevus.jpg", "nv", 0.02, "low"), ("b_keratosis.jpg", "bkl", 0.05, "low"),
               ("c_nevus.jpg", "nv", 0.03, "low"), ("d_melanoma.jpg", "mel", 0.93, "high"),
               ("e_nevus.jpg", "nv", 0.01, "low")], start=1)}
    melanoma = ids["d_melanoma.jpg"]
    at = new_app()
    at.switch_page(LOG).run()
    position = list(at.dataframe[0].value["Case"]).index(melanoma)
    select_row(at, position)
    assert panel_case(at) == melanoma and ticked(at) == [melanoma]

    at.pills(key="log_bands").set_value(["low"]).run()  # the melanoma is not in the low band
    assert_no_exception(at)
    assert melanoma not in set(at.dataframe[0].value["Case"])
    assert panel_case(at) == melanoma and ticked(at) == []  # no other row is ticked in its place
    assert any("hidden by the current filter" in i.value for i in at.info)
    at.pills(key="log_bands").set_value([]).run()
    assert panel_case(at) == melanoma and ticked(at) == [melanoma]  # its row, wherever it is now

    for order in ("risk", "oldest"):
        at.selectbox(key="log_order").set_value(order).run()
        assert_no_exception(at)
        assert panel_case(at) == melanoma and ticked(at) == [melanoma]
    before = list(at.dataframe[0].value["Case"]).index(melanoma)

    other = ReviewStore(tmp_path / "elsewhere.sqlite3")  # an import that puts a row before the selected one
    log_case(other, "0_imported.jpg", top_label="bcc", score=0.7, triage="high", created_at="2024-12-31T10:00:00Z")
    at.file_uploader(key="log_import").set_value(("more.csv", other.export_csv(), "text/csv")).run()
    next(b for b in at.button if b.label == "Import CSV").click().run()
    assert_no_exception(at)
    assert any("1 new case(s) imported" in s.value for s in at.success)
    assert list(at.dataframe[0].value["Case"]).index(melanoma) == before + 1
    assert panel_case(at) == melanoma and ticked(at) == [melanoma]

    at.radio(key=f"log_decision_{melanoma}_management").set_value("excise")
    next(b for b in at.button if b.label == "Save to review log").click().run()
    assert_no_exception(at)
    decided = {c.case_id: c.decision for c in ReviewStore().list_cases() if c.decision is not None}
    assert list(decided) == [melanoma] and decided[melanoma].management == "excise"

    at.pills(key="log_bands").set_value(["low"]).run()
    next(b for b in at.button if b.label == f"Close case {melanoma}").click().run()
    assert panel_case(at) is None and ticked(at) == []
    at.pills(key="log_bands").set_value([]).run()
    assert panel_case(at) is None and ticked(at) == []  # closed stays closed


def test_deselecting_the_row_closes_the_case(app_env):
    case_id = other_session_case(ReviewStore(), decided=False)
    at = new_app()
    at.switch_page(LOG).run()
    select_row(at, 0)
    assert panel_case(at) == case_id
    at.session_state["log_table"] = {"selection": {"rows": [], "columns": [], "cells": []}}
    at.run()
    assert panel_case(at) is None
