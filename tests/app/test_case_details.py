"""Case details typed or edited after the analysis: saved from Analyze and the Review log, never silently lost."""

from __future__ import annotations

from app_helpers import assert_no_exception, new_app

from dashboard.case_details import details_prefix
from dermascan.intake.images import sha256_hex
from dermascan.reviews import CaseRecord, Decision, ReviewStore, ReviewStoreError

LOG = "pages/review_log.py"
ANALYZE = "pages/analyze.py"


def upload(at, path):
    """Upload a real image on the Analyze page and rerun."""
    at.file_uploader(key="analyze_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
    return at.run()


def press(at, label: str):
    """Click the (form or plain) button with this label and rerun."""
    next(b for b in at.button if b.label == label).click()
    return at.run()


def select_row(at, row: int):
    """Select a Review log row the way a click does."""
    at.session_state["log_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def key(path, field: str) -> str:
    """The Analyze page's case-detail input ``field`` for the image at ``path`` (one set per image)."""
    return f"{details_prefix(sha256_hex(path.read_bytes()))}_{field}"


def unsaved_warning(at) -> bool:
    """The Analyze page says typed case details are not saved yet."""
    return any("not saved yet" in w.value for w in at.warning)


def history_table(at):
    """The selected case's decision history (the table with a Note column)."""
    return next(df.value for df in at.dataframe if "Note" in df.value.columns)


def test_details_typed_after_the_analysis_are_saved_and_shown_in_a_new_session(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    [case] = ReviewStore().list_cases()
    assert case.patient_id is None and not unsaved_warning(at)
    at.text_input(key=key(ham_images[0], "patient_id")).input("P-0042")
    at.selectbox(key=key(ham_images[0], "fitzpatrick")).set_value(4)
    at.number_input(key=key(ham_images[0], "age")).set_value(63)
    at.run()
    assert unsaved_warning(at)
    assert ReviewStore().get_case(case.case_id).patient_id is None  # nothing is saved behind the reviewer's back
    press(at, "Save case details")
    assert_no_exception(at)
    assert not unsaved_warning(at) and not any(b.label == "Save case details" for b in at.button)
    saved = ReviewStore().get_case(case.case_id)
    assert (saved.patient_id, saved.fitzpatrick, saved.age, saved.sex) == ("P-0042", 4, 63, None)
    assert saved.updated_at is not None and saved.top_label == case.top_label

    fresh = new_app()  # another browser session: only the database connects the two
    fresh.switch_page(LOG).run()
    select_row(fresh, 0)
    assert_no_exception(fresh)
    assert fresh.text_input(key=f"log_case_{case.case_id}_patient_id").value == "P-0042"
    assert fresh.number_input(key=f"log_case_{case.case_id}_age").value == 63
    assert any("P\\-0042" in md.value for md in fresh.markdown)
    assert any("Last edited" in c.value for c in fresh.caption)


def test_changed_details_are_saved_with_the_decision(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    at.text_input(key=key(ham_images[0], "lesion_id")).input("L-3").run()
    management = next(r for r in at.radio if r.key and r.key.endswith("_management"))
    management.set_value("monitor")
    press(at, "Save to review log")
    assert_no_exception(at)
    assert any("Decision and case details saved" in s.value for s in at.success)
    [case] = ReviewStore().list_cases()
    assert case.lesion_id == "L-3" and case.decision.management == "monitor"
    assert not unsaved_warning(at)


def test_a_failed_save_keeps_the_typed_details_for_a_retry_on_either_page(monkeypatch, app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    [case] = ReviewStore().list_cases()
    working = ReviewStore.update_case_fields

    def busy(self, case_id, **fields):
        raise ReviewStoreError("The review database (reviews.sqlite3) is busy; wait a few seconds and try again.")

    monkeypatch.setattr(ReviewStore, "update_case_fields", busy)
    at.text_input(key=key(ham_images[0], "patient_id")).input("P-7").run()
    press(at, "Save case details")
    assert_no_exception(at)
    assert any("kept in this session" in e.value for e in at.error)
    assert at.text_input(key=key(ham_images[0], "patient_id")).value == "P-7" and unsaved_warning(at)
    assert any(b.label == "Retry saving case details" for b in at.button)

    # Leaving the page drops its widgets; the typed details must come back, and the Review log offers them too.
    at.switch_page(LOG).run()
    select_row(at, 0)
    assert_no_exception(at)
    assert any("not saved yet" in w.value for w in at.warning)
    assert at.text_input(key=f"log_case_{case.case_id}_patient_id").value == "P-7"
    monkeypatch.setattr(ReviewStore, "update_case_fields", working)  # the database is back
    press(at, "Retry saving case details")
    assert_no_exception(at)
    assert ReviewStore().get_case(case.case_id).patient_id == "P-7"
    assert any("Case details saved" in s.value for s in at.success)
    assert not any("not saved yet" in w.value for w in at.warning)

    at.switch_page(ANALYZE).run()
    upload(at, ham_images[0])
    assert_no_exception(at)
    assert at.text_input(key=key(ham_images[0], "patient_id")).value == "P-7"  # restored after the page switch
    assert not unsaved_warning(at)  # already in the database, so nothing is left to save


def test_review_log_shows_the_decision_history_and_edits_case_details(app_env):
    store = ReviewStore()
    case_id = store.add_case(CaseRecord(
        image_sha256="ab" * 32, top_label="nv", session_id="someone-else", file_name="old_visit.jpg",
        created_at="2025-01-02T03:04:05+00:00", model_version="test-1", top_probability=0.91, triage="low",
        patient_id="P-1", sex="F", age=131,  # imported values outside the inputs' usual choices
        probabilities={"mel": 0.09, "nv": 0.91},
        decision=Decision(reviewer_agrees=True, reviewer_diagnosis="nv", management="reassure",
                          decided_at="2025-01-02T04:00:00Z")))
    at = new_app()
    at.switch_page(LOG).run()
    select_row(at, 0)
    assert_no_exception(at)
    assert list(history_table(at)["Management"]) == ["Reassure / no action"]

    at.radio(key=f"log_decision_{case_id}_management").set_value("biopsy")
    at.text_area(key=f"log_decision_{case_id}_note").input("Changed after dermoscopy.")
    press(at, "Save to review log")
    assert_no_exception(at)
    history = history_table(at)
    assert list(history["Management"]) == ["Reassure / no action", "Biopsy"]  # oldest first
    assert list(history["Note"]) == ["", "Changed after dermoscopy."]

    assert at.selectbox(key=f"log_case_{case_id}_sex").value == "F"
    at.text_input(key=f"log_case_{case_id}_body_site").input("left shin")
    at.text_input(key=f"log_case_{case_id}_patient_id").input("")
    press(at, "Save case details")
    assert_no_exception(at)
    assert any("Case details saved" in s.value for s in at.success)
    saved = ReviewStore().get_case(case_id)
    assert (saved.patient_id, saved.body_site, saved.sex, saved.age) == (None, "left shin", "F", 131)
    assert saved.decision.management == "biopsy"
    [replaced] = ReviewStore().case_details_history(case_id)
    assert (replaced["patient_id"], replaced["body_site"]) == ("P-1", None)
    press(at, "Save case details")  # unchanged: says so, stores nothing
    assert any("unchanged" in i.value for i in at.info)
    assert len(ReviewStore().case_details_history(case_id)) == 1


def test_details_typed_before_the_first_upload_go_with_that_image_only(app_env, ham_images):
    at = new_app().run()
    at.text_input(key="case_patient_id").input("P-FIRST").run()  # typed before the first upload: belongs to it
    upload(at, ham_images[0])
    assert ReviewStore().list_cases()[0].patient_id == "P-FIRST"
    assert at.text_input(key=key(ham_images[0], "patient_id")).value == "P-FIRST"
    upload(at, ham_images[1])  # the next lesion, possibly another patient
    assert_no_exception(at)
    assert at.text_input(key=key(ham_images[1], "patient_id")).value == ""
    assert any("this image's own" in i.value for i in at.info)
    second = next(c for c in ReviewStore().list_cases() if c.file_name == ham_images[1].name)
    assert second.patient_id is None
    upload(at, ham_images[0])  # back to the first image: its own saved details come back
    assert at.text_input(key=key(ham_images[0], "patient_id")).value == "P-FIRST"
    assert not unsaved_warning(at)


def decide(at, management: str = "monitor"):
    """Fill in and submit the Analyze page's decision form."""
    radio = next(r for r in at.radio if r.key and r.key.endswith("_management"))
    radio.set_value(management)
    return press(at, "Save to review log")


def case_of(path) -> CaseRecord:
    """The stored case of the image at ``path`` (exactly one)."""
    [case] = [c for c in ReviewStore().list_cases() if c.file_name == path.name]
    return case


def test_repro_1_saved_details_stay_with_their_image_and_a_decision_on_the_next_one_carries_none(
        app_env, ham_images):
    first, second = ham_images
    at = upload(new_app().run(), first)
    at.text_input(key=key(first, "patient_id")).input("REPRO-1")
    at.text_input(key=key(first, "body_site")).input("left shin").run()
    press(at, "Save case details")
    assert (case_of(first).patient_id, case_of(first).body_site) == ("REPRO-1", "left shin")

    upload(at, second)
    assert_no_exception(at)
    assert at.text_input(key=key(second, "patient_id")).value == ""  # what is stored for image 2's case: nothing
    assert at.text_input(key=key(second, "body_site")).value == ""
    assert not any(t.value == "REPRO-1" for t in at.text_input)  # image 1's inputs are not drawn at all
    assert any(f"saved with case {case_of(second).case_id}" in c.value for c in at.caption)
    decide(at)
    assert_no_exception(at)
    stored = case_of(second)
    assert stored.decision.management == "monitor"
    assert (stored.patient_id, stored.lesion_id, stored.body_site, stored.age) == (None, None, None, None)
    assert ReviewStore().case_details_history(stored.case_id) == []  # nothing was ever written there
    assert case_of(first).decision is None  # and the decision did not go to image 1's case

    upload(at, first)  # back to image 1: its details show again
    assert at.text_input(key=key(first, "patient_id")).value == "REPRO-1"
    assert at.text_input(key=key(first, "body_site")).value == "left shin"
    assert not unsaved_warning(at)


def test_repro_1_unsaved_details_are_kept_for_their_image_never_saved_to_the_next(app_env, ham_images):
    first, second = ham_images
    at = upload(new_app().run(), first)
    at.text_input(key=key(first, "patient_id")).input("REPRO-1").run()  # typed, not saved
    upload(at, second)
    assert_no_exception(at)
    assert at.text_input(key=key(second, "patient_id")).value == ""
    assert any("previous image are not saved" in w.value for w in at.warning)  # said, not silently dropped
    decide(at)
    assert case_of(second).patient_id is None and case_of(second).decision is not None
    assert case_of(first).patient_id is None  # nothing saved behind the reviewer's back either

    upload(at, first)
    assert at.text_input(key=key(first, "patient_id")).value == "REPRO-1" and unsaved_warning(at)
    press(at, "Save case details")
    assert case_of(first).patient_id == "REPRO-1" and case_of(second).patient_id is None
