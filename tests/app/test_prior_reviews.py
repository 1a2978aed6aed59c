"""Prior reviews: an image already in the review log continues its case; batch re-runs reuse cases; a batch that
outlives its page is reported when the user comes back."""

from __future__ import annotations

import pytest
from app_helpers import HAM, as_shown, assert_no_exception, new_app

from dashboard.case_details import details_prefix
from dermascan.intake.images import sha256_hex
from dermascan.reviews import CaseRecord, Decision, ReviewStore

ANALYZE_UPLOAD = "analyze_upload"


def upload(at, path):
    """Upload a real image on the Analyze page and rerun."""
    at.file_uploader(key=ANALYZE_UPLOAD).set_value((path.name, path.read_bytes(), "image/jpeg"))
    return at.run()


def decide(at, management: str, note: str = ""):
    """Fill in and submit the Analyze page's decision form."""
    next(r for r in at.radio if r.key and r.key.endswith("_management")).set_value(management)
    if note:
        next(t for t in at.text_area if t.key and t.key.endswith("_note")).input(note)
    next(b for b in at.button if b.label == "Save to review log").click()
    return at.run()


def test_the_same_image_in_a_new_session_continues_its_case_with_its_decision_and_details(app_env, ham_images):
    image = ham_images[0]
    first = upload(new_app().run(), image)
    first.text_input(key=f"{details_prefix(sha256_hex(image.read_bytes()))}_patient_id").input("P-9").run()
    decide(first, "biopsy", "irregular network")
    [case] = ReviewStore().list_cases()
    assert case.decision.management == "biopsy" and case.patient_id == "P-9"

    again = upload(new_app().run(), image)  # another session (a reload, a colleague): only the log connects them
    assert_no_exception(again)
    assert ReviewStore().count_cases() == 1  # continued, not duplicated
    [note] = [i.value for i in again.info if "already in the review log" in i.value]
    assert f"case {case.case_id}" in note and "biopsy" in note
    management = next(r for r in again.radio if r.key and r.key.endswith("_management"))
    assert management.value == "biopsy"  # the form edits the earlier decision
    assert again.text_input(key=f"{details_prefix(case.image_sha256)}_patient_id").value == "P-9"
    assert not any("not saved yet" in w.value for w in again.warning)
    decide(again, "excise")
    assert_no_exception(again)
    [after] = ReviewStore().list_cases()
    assert after.case_id == case.case_id and after.decision.management == "excise"
    assert [d.management for d in ReviewStore().decision_history(case.case_id)] == ["biopsy", "excise"]


def test_another_model_version_makes_a_new_case_and_says_how_it_was_reviewed_before(app_env, ham_images):
    image = ham_images[0]
    store = ReviewStore()
    old_id = store.add_case(CaseRecord(
        image_sha256=sha256_hex(image.read_bytes()), top_label="nv", file_name=image.name, model_name="Old CNN",
        model_version="0.9", created_at="2025-03-04T05:06:07+00:00", top_probability=0.8, triage="low",
        probabilities={"nv": 0.8, "mel": 0.2},
        decision=Decision(reviewer_agrees=True, reviewer_diagnosis="nv", management="reassure",
                          decided_at="2025-03-04T06:00:00Z")))
    at = upload(new_app().run(), image)
    assert_no_exception(at)
    cases = ReviewStore().list_cases()
    assert len(cases) == 2 and {c.case_id for c in cases} > {old_id}
    assert not any("already in the review log" in i.value for i in at.info)
    [note] = [c.value for c in at.caption if "Reviewed before" in c.value]
    assert "Old CNN v0\\.9" in note and "2025\\-03\\-04" in note and "reassure" in note.lower()


@pytest.fixture
def five_images():
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return [(p.name, p.read_bytes()) for p in sorted((HAM / "images").glob("ISIC_*.jpg"))[:5]]


def run_batch(at, files):
    at.file_uploader(key="batch_upload").set_value([(n, data, "image/jpeg") for n, data in files]).run()
    at.button(key="batch_start").click().run()
    assert_no_exception(at)
    return at


def test_a_batch_rerun_and_a_grad_cam_toggle_reuse_the_cases(app_env, five_images):
    at = new_app().run()
    at.switch_page("pages/batch.py").run()
    run_batch(at, five_images)
    assert ReviewStore().count_cases() == 5
    at.toggle(key="batch_with_cam").set_value(False).run()  # the same files without Grad-CAM: a new job
    at.button(key="batch_start").click().run()
    assert_no_exception(at)
    assert ReviewStore().count_cases() == 5
    assert any("5 already there" in c.value for c in at.caption)

    other = new_app().run()  # a re-run of the same files in another session
    other.switch_page("pages/batch.py").run()
    run_batch(other, five_images)
    assert ReviewStore().count_cases() == 5


def test_a_batch_says_how_far_it_got_when_the_user_comes_back_or_reloads(app_env, five_images):
    at = new_app().run()
    at.switch_page("pages/batch.py").run()
    run_batch(at, five_images)
    ref = at.query_params["batch"]
    at.switch_page("pages/analyze.py").run()
    at.switch_page("pages/batch.py").run()  # back: the uploads are gone, the job is not
    assert_no_exception(at)
    assert any("finished: 5 results" in as_shown(i.value) and "A batch started at" in as_shown(i.value)
               for i in at.info)

    reloaded = new_app()  # a reload: a new session, the URL keeps the batch's ref
    reloaded.query_params["batch"] = ref
    reloaded.run()
    reloaded.switch_page("pages/batch.py").run()
    assert_no_exception(reloaded)
    assert any("finished: 5 results" in as_shown(i.value) and "reloaded" in as_shown(i.value) for i in reloaded.info)
    fresh = new_app().run()
    fresh.switch_page("pages/batch.py").run()
    assert not any("A batch started" in as_shown(i.value) for i in fresh.info)  # no ref, no note
