"""Repro 1 of issue 17 in a real Chromium: case details typed for one image never follow the next image.

A browser keeps showing (and sends back) a text input's old text when the server only resets the
widget's state under the same key; AppTest cannot see that, so this runs against ``streamlit run``.
Reuses the server and browser fixtures of ``test_browser.py`` (Debian's Chromium, never a downloaded one).
"""

from __future__ import annotations

from playwright.sync_api import expect
from test_browser import (  # noqa: F401 - page and server are fixtures, used by name
    HAM,
    RESULT_TIMEOUT_MS,
    page,
    server,
    wait_idle,
)

from dermascan.reviews import ReviewStore


def upload(page, path) -> None:  # noqa: F811
    """Upload ``path`` on the Analyze page and wait for its analysis."""
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=RESULT_TIMEOUT_MS)
    page.get_by_text("Malignancy score").wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_idle(page)


def patient_box(page):  # noqa: F811
    """The Analyze page's Patient ID input, its Case details expander opened if it is closed."""
    box = page.get_by_role("textbox", name="Patient ID")
    if not box.is_visible():
        page.get_by_text("Case details (optional)").click()
        box.wait_for(timeout=30_000)
    return box


def test_details_typed_for_one_image_never_reach_the_next_ones_case(server, page):  # noqa: F811
    url, db = server
    first, second = sorted((HAM / "images").glob("ISIC_*.jpg"))[:2]
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=RESULT_TIMEOUT_MS)
    upload(page, first)
    patient_box(page).fill("REPRO-1")
    patient_box(page).press("Tab")  # a text input commits on blur
    page.get_by_text("not saved yet").first.wait_for(state="attached", timeout=60_000)  # maybe collapsed
    wait_idle(page)

    upload(page, second)
    page.get_by_text("previous image are not saved").wait_for(timeout=60_000)
    store = ReviewStore(db)
    second_case = next(c for c in store.list_cases() if c.file_name == second.name)
    assert patient_box(page).input_value() == ""  # what is stored for image 2's case
    page.get_by_text(f"Case details saved with case {second_case.case_id}.").wait_for(state="attached", timeout=60_000)

    form = page.locator('[data-testid="stForm"]')
    form.get_by_text("Monitor", exact=False).first.click()
    form.get_by_role("button", name="Save to review log").click()
    page.get_by_text("Saved to the review log.").first.wait_for(timeout=60_000)
    wait_idle(page)
    cases = {c.file_name: c for c in ReviewStore(db).list_cases()}
    assert cases[second.name].decision.management == "monitor"
    assert cases[second.name].patient_id is None and cases[first.name].patient_id is None
    assert cases[first.name].decision is None

    upload(page, first)  # back to image 1: details saved now land on image 1's case only
    # (Whether the unsaved text typed earlier is shown again is AppTest's check, test_case_details.py; in
    # Chromium it is not reliable yet: see the session note.)
    expect(page.get_by_text(second.name)).to_have_count(0, timeout=60_000)  # image 2 has left the page
    patient_box(page).fill("REPRO-1")
    patient_box(page).press("Tab")
    page.get_by_text("not saved yet").first.wait_for(state="attached", timeout=60_000)  # maybe collapsed
    patient_box(page)  # opens the Case details expander again if a rerun collapsed it
    page.get_by_role("button", name="Save case details").click()
    page.get_by_text("Case details saved to the review log.").first.wait_for(timeout=60_000)  # the toast
    wait_idle(page)
    cases = {c.file_name: c for c in ReviewStore(db).list_cases()}
    assert cases[first.name].patient_id == "REPRO-1" and cases[second.name].patient_id is None
    assert not page.locator('[data-testid="stException"]').count()
