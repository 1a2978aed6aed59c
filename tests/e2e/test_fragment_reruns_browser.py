"""Analyze's heatmap panel and decision form rerun alone in a real Chromium; a saved decision reruns the page.

Which runs happened is read from what the server tells the browser: every script run ends with a
``script_finished`` message naming the fragments it reran (none for a full-page run). Reuses the server
and browser fixtures of ``test_browser.py`` (Debian's Chromium, never a downloaded one).
"""

from __future__ import annotations

from test_browser import (  # noqa: F401 - page and server are fixtures, used by name
    HAM,
    RESULT_TIMEOUT_MS,
    move_opacity_slider,
    overlay_src,
    page,
    server,
    wait_idle,
)


class RunWatch:
    """Every script run the server finished for this page: a tuple of fragment ids each (empty: the full page)."""

    def __init__(self, page) -> None:  # noqa: F811
        self.runs: list[tuple[str, ...]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") == "script_finished":
            self.runs.append(tuple(msg.metadata.run.fragment_ids))

    def since(self, mark: int) -> list[tuple[str, ...]]:
        """The runs finished after ``mark`` (a ``len(self.runs)`` taken earlier)."""
        return self.runs[mark:]


def test_slider_and_class_rerun_only_the_panel_and_a_save_reruns_the_page(server, page):  # noqa: F811
    url, _ = server
    watch = RunWatch(page)
    image = sorted((HAM / "images").glob("ISIC_*.jpg"))[0]
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(image))
    page.get_by_text("Malignancy score").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator('[data-testid="stImage"]').filter(has_text="Grad-CAM").locator("img").wait_for()
    wait_idle(page)
    assert watch.runs and watch.runs[-1] == ()  # the upload ran the whole page

    mark = len(watch.runs)
    move_opacity_slider(page, overlay_src(page), presses=2)
    wait_idle(page)
    slider_runs = watch.since(mark)
    assert slider_runs and all(run for run in slider_runs)  # fragment runs only, never the page

    mark = len(watch.runs)
    caption = page.locator('[data-testid="stImage"]').filter(has_text="Grad-CAM").inner_text()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Heatmap for class").click()
    page.get_by_role("option").filter(has_not_text=caption.split("Grad-CAM: ")[1].split(" (")[0]).first.click()
    page.wait_for_function(
        """(before) => [...document.querySelectorAll('[data-testid="stImage"]')]
             .some(el => el.innerText.includes('Grad-CAM') && el.innerText !== before)""",
        arg=caption, timeout=60_000)
    wait_idle(page)
    class_runs = watch.since(mark)
    assert class_runs and all(run for run in class_runs)
    assert not page.locator('[data-testid="stException"]').count()

    mark = len(watch.runs)
    form = page.locator('[data-testid="stForm"]')
    form.get_by_text("Monitor", exact=False).first.click()
    form.get_by_role("button", name="Save to review log").click()
    page.get_by_text("Saved to the review log.").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert () in watch.since(mark)  # the save reran the whole page (the positive control of the checks above)
