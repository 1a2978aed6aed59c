"""Two real ``streamlit run`` servers on one PostgreSQL database (issue 14): a decision saved through one server's
Analyze page is in the other server's Review log, which was already running and is read in another browser.

A clinic runs several dashboard servers behind a proxy; each holds its own store (its own connection pool), so
this is what only a shared database server gives. Skips with the reason when no PostgreSQL server can be started.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid

import pytest
from test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HAM,
    REPO,
    RESULT_TIMEOUT_MS,
    START_TIMEOUT_S,
    free_port,
    stop_server,
    tiny_model,
    wait_healthy,
    wait_idle,
)

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="/usr/bin/chromium is not installed"),
    pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data/ham10000_224 is not present"),
]

NOTE = "Seen on server A; biopsy booked."


@pytest.fixture
def shared_db(postgres_url):
    """The URL of a fresh schema on the test PostgreSQL server, dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(sa.make_url(postgres_url).set(drivername="postgresql+psycopg"),
                             isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    schema = f"two_servers_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextlib.contextmanager
def streamlit_server(tmp_path, name: str, model, db_url: str):
    """A running ``streamlit run`` on its own port with ``db_url`` as its review database; stopped afterwards."""
    port = free_port()
    env = {**os.environ, "DERMASCAN_MODEL": str(model), "DERMASCAN_REVIEW_DB": db_url, "PYTHONPATH": str(REPO),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(tmp_path / f"server_{name}.log", "wb")  # noqa: SIM115 - closed by stop_server
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, START_TIMEOUT_S)
        yield url
    finally:
        stop_server(proc, log)


def test_a_decision_saved_on_one_server_is_in_the_other_servers_review_log(shared_db, tmp_path):
    from playwright.sync_api import sync_playwright

    model = tiny_model(tmp_path)
    image = sorted((HAM / "images").glob("ISIC_*.jpg"))[0]
    with (streamlit_server(tmp_path, "a", model, shared_db) as url_a,
          streamlit_server(tmp_path, "b", model, shared_db) as url_b,
          sync_playwright() as pw):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            # Server B's Review log is open first (empty), so the case reaches a server that was already running.
            page_b = browser.new_context(viewport={"width": 1440, "height": 2000}).new_page()
            page_b.goto(f"{url_b}/review_log", wait_until="domcontentloaded")
            page_b.get_by_role("heading", name="Review log").wait_for(timeout=RESULT_TIMEOUT_MS)
            page_b.get_by_text("No cases yet").first.wait_for(timeout=RESULT_TIMEOUT_MS)

            page_a = browser.new_context(viewport={"width": 1440, "height": 2000}).new_page()
            page_a.goto(url_a, wait_until="domcontentloaded")
            page_a.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=RESULT_TIMEOUT_MS)
            page_a.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(image))
            form = page_a.locator('[data-testid="stForm"]')
            form.get_by_role("button", name="Save to review log").wait_for(timeout=RESULT_TIMEOUT_MS)
            form.get_by_text("Biopsy", exact=False).first.click()
            form.get_by_role("textbox", name="Note").fill(NOTE)
            form.get_by_role("button", name="Save to review log").click()
            page_a.get_by_text("Saved to the review log.").first.wait_for(timeout=60_000)

            page_b.reload(wait_until="domcontentloaded")
            page_b.get_by_text("1 case(s)").first.wait_for(timeout=RESULT_TIMEOUT_MS)
            page_b.locator('[data-testid="stDataFrame"]').first.wait_for()
            wait_idle(page_b)
            page_b.wait_for_timeout(1000)  # the grid paints on a canvas after the rerun ends
            grid = page_b.locator('[data-testid="stDataFrame"]').first.bounding_box()
            page_b.mouse.click(grid["x"] + 15, grid["y"] + 35 + 17)  # the first row's selection cell
            page_b.get_by_role("heading", name=f"· {image.name}").wait_for(timeout=60_000)
            note = page_b.locator('[data-testid="stForm"]').get_by_role("textbox", name="Note")
            note.wait_for(timeout=60_000)
            assert note.input_value() == NOTE
            assert not page_a.locator('[data-testid="stException"]').count()
            assert not page_b.locator('[data-testid="stException"]').count()
        finally:
            browser.close()

    from dermascan.reviews import ReviewStore

    with ReviewStore(shared_db) as store:
        [case] = store.list_cases()
    assert case.file_name == image.name and case.decision.management == "biopsy" and case.decision.note == NOTE
