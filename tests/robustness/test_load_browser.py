"""A bounded load test on a real ``streamlit run`` server (127.0.0.1) with several headless Chromium sessions.

``SESSIONS`` browser contexts (separate cookies, separate Streamlit sessions) on one Chromium upload
different real images at the same moment, so the server analyses them concurrently on its one cached
model. Each session must see exactly what a single session computes in-process (differential, heatmap
overlay, explanation), only its own image, file name and unsaved analysis, and no error. The shared
review log lists every session's cases (shared by design) with the viewer's own case first. Then the
server is killed with SIGKILL and restarted on the same database: every case and the saved decision are
still there. The server's log (both runs) holds no case field, no image data.

The second test checks the upload limits and XSRF protection on the running server itself: the browser
refuses a 9 MB file, and hand-made HTTP uploads get 403 without the XSRF token and 413 over the limit.

Bounded: SESSIONS (default 4, ``DERMASCAN_LOAD_SESSIONS``) pages, one upload each, every wait capped;
loopback only; the server is always stopped in teardown.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image
from robust_helpers import HAM, chromium, e2e, running_server

import dermascan
from dermascan.reviews import ReviewStore

SESSIONS = int(os.environ.get("DERMASCAN_LOAD_SESSIONS", "4"))
WAIT_MS = 120_000
MARKER_PATIENT = "PATIENT-MARKER-4d1c"
MARKER_NOTE = "NOTE-MARKER-90ae"
VIEWPORT = {"width": 1440, "height": 2000}
DEBUG = ("--logger.level", "debug")

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(not e2e.CHROMIUM.is_file(), reason="/usr/bin/chromium is not installed"),
    pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data/ham10000_224 is not present"),
]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return e2e.tiny_model(tmp_path_factory.mktemp("load-model"))


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> list[Path]:
    """One distinct real image per session, named after its session (so a leaked name is recognisable)."""
    folder = tmp_path_factory.mktemp("load-images")
    sources = sorted((HAM / "images").glob("ISIC_*.jpg"))[:SESSIONS]
    files = []
    for i, src in enumerate(sources):
        files.append(folder / f"session{i}-{src.stem}.jpg")
        shutil.copy(src, files[-1])
    return files


def fetch_image(context, base: str, src: str) -> np.ndarray:
    response = context.request.get(urljoin(base + "/", src))
    assert response.ok, response.status
    with Image.open(io.BytesIO(response.body())) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean()) if a.shape == b.shape else 255.0


def grid(page) -> list[dict[str, str]]:
    """The visible rows of the first table by column title (Streamlit's grid keeps an accessible copy of them)."""
    table = page.locator('[data-testid="stDataFrame"]').first.locator("table[role=grid]")
    header = table.locator("thead th").all_inner_texts()
    return [dict(zip(header, row.locator("td").all_inner_texts())) for row in table.locator("tbody tr").all()]


def open_analyze(page, url) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=WAIT_MS)


def wait_result(page) -> None:
    page.locator('[data-testid="stMetric"]').filter(has_text="Malignancy score").wait_for(timeout=WAIT_MS)
    page.locator('[data-testid="stImage"]').filter(has_text="Grad-CAM").locator("img").wait_for(timeout=WAIT_MS)
    e2e.wait_idle(page)


def test_concurrent_sessions_leak_nothing_and_survive_a_crash(model_path, uploads, tmp_path):
    engine = dermascan.load_model(model_path)
    alone = [engine.analyze(p.read_bytes(), name=p.name) for p in uploads]
    overlays = [a.overlay(0.4).astype(np.int16) for a in alone]
    originals = [a.image.astype(np.int16) for a in alone]
    names = [p.name for p in uploads]
    db, log = tmp_path / "reviews.sqlite3", tmp_path / "server.log"

    # Streamlit's own loggers at DEBUG: the strictest setting an operator might use.
    with running_server(model_path, db, log, args=DEBUG) as (url, proc), chromium() as browser:
        contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(SESSIONS)]
        pages = [c.new_page() for c in contexts]
        for page in pages:
            open_analyze(page, url)
        # Session 0 types a patient id before its upload (saved with the case, never logged).
        pages[0].get_by_text("Case details (optional)").click()
        pages[0].get_by_role("textbox", name="Patient ID").fill(MARKER_PATIENT)
        pages[0].get_by_role("textbox", name="Patient ID").press("Enter")
        e2e.wait_idle(pages[0])

        for page, path in zip(pages, uploads):  # all sessions upload at once: concurrent analyses
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
        for page in pages:
            wait_result(page)

        for i, (page, context) in enumerate(zip(pages, contexts)):
            assert not page.locator('[data-testid="stException"]').count()
            text = page.locator('[data-testid="stMain"]').inner_text()
            html = page.locator('[data-testid="stMain"]').inner_html()
            assert names[i][-10:] in text  # the uploader shows its own file (middle-truncated)
            for j in range(SESSIONS):
                if j != i:  # nor another session's name, in the text or any attribute
                    assert names[j] not in html and uploads[j].stem.split("-", 1)[1] not in html
            assert alone[i].explanation in text  # the same words a single session gets
            shown = {row["Code"]: float(row["Probability"]) for row in grid(page)}
            expected = dict(zip(alone[i].labels, alone[i].probabilities))
            assert shown.keys() == expected.keys()
            assert all(abs(p - expected[label]) < 1e-5 for label, p in shown.items()), (shown, expected)
            # Every image on the page is this session's own original or overlay, and no other session's.
            # (the heatmap's colour legend, the same for everyone, is left out)
            images = page.locator('[data-testid="stImage"]').filter(has_not_text="Heatmap colours").locator("img")
            assert images.count() == 2
            for k in range(images.count()):
                pixels = fetch_image(context, url, images.nth(k).get_attribute("src"))
                own = min(difference(pixels, originals[i]), difference(pixels, overlays[i]))
                assert own < 3.0, f"session {i} image {k} is not its own ({own:.1f})"
                for j in range(SESSIONS):
                    if j != i:
                        assert min(difference(pixels, originals[j]), difference(pixels, overlays[j])) > 10.0

        # Session 0 saves a decision; the others keep theirs unsaved (an unsaved decision stays private).
        form = pages[0].locator('[data-testid="stForm"]')
        form.get_by_text("Monitor", exact=False).first.click()
        form.get_by_role("textbox", name="Note").fill(MARKER_NOTE)
        form.get_by_role("button", name="Save to review log").click()
        pages[0].get_by_text("Saved to the review log.").first.wait_for(timeout=WAIT_MS)
        pages[1].locator('[data-testid="stForm"]').get_by_role("textbox", name="Note").fill("UNSAVED-NOTE-7e2")

        with sqlite3.connect(db) as conn:  # ground truth: the shared log, newest first
            rows = conn.execute(
                "SELECT case_id, file_name FROM cases ORDER BY created_at DESC, case_id DESC").fetchall()
        by_time = [str(case_id) for case_id, _ in rows]
        case_of = {name: str(case_id) for case_id, name in rows}
        assert sorted(case_of) == sorted(names)
        for i, page in enumerate(pages):
            page.locator('[data-testid="stSidebarNav"]').get_by_text("Review log").click()
            page.get_by_text(f"{SESSIONS} case(s), this session's first").wait_for(timeout=WAIT_MS)
            e2e.wait_idle(page)
            page.locator('[data-testid="stDataFrame"] table[role=grid] tbody tr').nth(SESSIONS - 1).wait_for(
                state="attached", timeout=WAIT_MS)  # the accessible copy of the grid is visually hidden
            # By case id: the File column sits right of the visible part of the wide grid (not in its copy).
            shown = [row["Case"] for row in grid(page)]
            assert shown == [case_of[names[i]]] + [c for c in by_time if c != case_of[names[i]]], shown
            if i == 0:  # client.disableDataExport: no unneutralised CSV export from the table toolbar
                table = page.locator('[data-testid="stDataFrame"]').first
                table.hover()
                table.get_by_role("button", name="Search").wait_for(timeout=WAIT_MS)  # the toolbar is there
                assert not table.get_by_role("button", name="Download as CSV").count()
            body = page.locator('[data-testid="stMain"]').inner_text()
            assert "UNSAVED-NOTE-7e2" not in body and not page.locator('[data-testid="stException"]').count()

        newcomer = browser.new_context(viewport=VIEWPORT).new_page()  # a new session sees no one's images
        open_analyze(newcomer, url)
        e2e.wait_idle(newcomer)
        assert not newcomer.locator('[data-testid="stImage"]').count()
        assert not any(n in newcomer.locator('[data-testid="stMain"]').inner_text() for n in names)

        proc.kill()  # a crash: no shutdown hook runs
        proc.wait(timeout=30)

    with running_server(model_path, db, log, args=DEBUG) as (url, _), chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{url}/review_log", wait_until="domcontentloaded")
        page.get_by_text(f"{SESSIONS} case(s), this session's first").wait_for(timeout=WAIT_MS)
        assert not page.locator('[data-testid="stException"]').count()

    cases = {c.file_name: c for c in ReviewStore(db).list_cases()}
    assert set(cases) == set(names)
    assert cases[names[0]].patient_id == MARKER_PATIENT
    assert cases[names[0]].decision.management == "monitor" and cases[names[0]].decision.note == MARKER_NOTE
    assert all(cases[n].decision is None for n in names[1:])
    server_log = log.read_text(errors="replace")
    assert "Runtime state:" in server_log  # a DEBUG-only message: the log really was at DEBUG
    for secret in (MARKER_PATIENT, MARKER_NOTE, "UNSAVED-NOTE", "data:image", "base64", *names):
        assert secret not in server_log, secret
    assert "Traceback" not in server_log


def test_upload_limits_and_xsrf_on_the_running_server(model_path, uploads, tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    with running_server(model_path, tmp_path / "reviews.sqlite3", tmp_path / "server.log") as (url, _), \
            chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        put_urls: list[str] = []
        page.on("request", lambda r: put_urls.append(r.url) if r.method == "PUT" and "upload_file" in r.url else None)
        open_analyze(page, url)
        upload = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        upload.set_input_files(str(big))
        page.get_by_text("File must be 8.0MB or smaller.").wait_for(timeout=WAIT_MS)
        assert not put_urls and not page.locator('[data-testid="stMetric"]').count()  # never sent to the server
        upload.set_input_files(str(uploads[0]))
        wait_result(page)
        [endpoint] = put_urls  # a real upload URL of this live session
        token = next(c["value"] for c in context.cookies() if c["name"] == "_streamlit_xsrf")

        def put(size: int, headers: dict) -> int:
            return context.request.put(endpoint, headers=headers, multipart={
                "file": {"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * size}}).status

        assert put(1000, {}) == 403  # no XSRF token: refused (a cross-site page cannot read the cookie)
        assert put(1000, {"X-Xsrftoken": "2|00000000|" + "0" * 32 + "|0"}) == 403  # a forged token
        assert put(9 * 1024 * 1024, {"X-Xsrftoken": token}) == 413  # a client that skips the browser check
        assert put(1000, {"X-Xsrftoken": token}) == 204  # the same request within the limit is accepted
