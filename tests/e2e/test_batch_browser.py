"""The Batch page in a real headless Chromium: upload several files, the worklist renders, the CSV downloads,
and Stop really stops a running batch.

Reuses the server and browser fixtures of ``test_browser.py`` (Debian's Chromium, never a downloaded one).
"""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from shared_data import HAM_LABELS
from test_browser import (  # noqa: F401 - page and server are fixtures, used by name
    CHROMIUM,
    HAM,
    RESULT_TIMEOUT_MS,
    move_opacity_slider,
    page,
    server,
    wait_idle,
)

from dermascan.reviews.csvio import csv_header

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="/usr/bin/chromium is not installed"),
    pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data/ham10000_224 is not present"),
]


def open_batch(page, url):  # noqa: F811
    """Open the app and go to the Batch page through the router's navigation; return the images file input."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=RESULT_TIMEOUT_MS)  # the router ran
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Batch", exact=True).click()
    page.get_by_role("heading", name="Batch worklist").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Version:").is_visible()  # the shared sidebar
    # By its label, not its position: the labels CSV uploader sits beside it.
    return (page.locator('[data-testid="stFileUploader"]').filter(has_text="Images or .zip archives")
            .locator('input[type="file"]'))


def test_upload_several_files_table_and_csv(server, page, tmp_path):  # noqa: F811
    url, db = server
    images = sorted((HAM / "images").glob("ISIC_*.jpg"))[:6]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    open_batch(page, url).set_input_files([str(p) for p in images] + [str(broken)])
    page.get_by_role("button", name="Analyse 7 image(s)").click()
    page.get_by_role("button", name="Download table (CSV)").wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_idle(page)
    assert page.get_by_text("1 file(s) could not be analysed").is_visible()
    assert page.get_by_text("6 of 6 images shown").is_visible()
    assert page.locator('[data-testid="stDataFrame"]').count() >= 2  # errors + worklist
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 2
    page.wait_for_timeout(1000)  # the grid paints on a canvas after the rerun ends
    page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)

    # Select the top-risk row (the grid is a canvas: click its row-selection cell) to see its overlay.
    grid = page.locator('[data-testid="stDataFrame"]').last.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 35)
    overlay = page.locator('[data-testid="stImage"]').filter(has_text="Grad-CAM").locator("img")
    overlay.wait_for(timeout=60_000)
    wait_idle(page)
    before = overlay.get_attribute("src")
    move_opacity_slider(page, before)
    wait_idle(page)
    page.screenshot(path=str(tmp_path / "batch_selected.png"), full_page=True)

    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download table (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8-sig"), newline="")))
    assert list(rows[0]) == csv_header(HAM_LABELS)  # the Review log export's columns
    assert len(rows) == 7 and {r["file_name"] for r in rows if r["image_sha256"]} == {p.name for p in images}
    assert not page.locator('[data-testid="stException"]').count()

    from dermascan.reviews import ReviewStore

    assert ReviewStore(db).count_cases() == 6


def test_stop_keeps_the_results_so_far_and_resume_finishes(server, page, tmp_path):  # noqa: F811
    url, db = server
    # Four zips of the same 300 real images: 1,200 files in four uploads, each under the 8 MB upload limit.
    images = sorted((HAM / "images").glob("ISIC_*.jpg"))[:300]
    zips = []
    for k in range(4):
        path = tmp_path / f"set{k}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for p in images:
                zf.write(p, f"set{k}/{p.name}")
        zips.append(str(path))
    total = 4 * len(images)
    open_batch(page, url).set_input_files(zips)
    page.get_by_role("button", name=f"Analyse {total} image(s)").click()
    page.get_by_text("Analysed ").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped after").or_(page.get_by_text(f"{total} of {total} images shown")).first.wait_for(
        timeout=RESULT_TIMEOUT_MS)
    wait_idle(page)
    if not page.get_by_text("Stopped after").count():
        pytest.skip("the batch finished before the Stop click arrived (machine too fast for this check)")
    done = int(page.get_by_text("Stopped after").inner_text().split("Stopped after ")[1].split(" of")[0])
    assert 0 < done < total
    assert page.get_by_text(f"{done} of {done} images shown").is_visible()  # table and counter agree
    page.wait_for_timeout(1500)
    assert page.get_by_text(f"Stopped after {done} of").is_visible()  # nothing carried on in the background

    page.get_by_role("button", name="Resume").click()
    page.get_by_text(f"{total} of {total} images shown").wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_idle(page)
    assert not page.locator('[data-testid="stException"]').count()

    from dermascan.reviews import ReviewStore

    # The four copies of each image are one analysis: one case each in the review log, none twice.
    assert ReviewStore(db).count_cases() == len(images)
