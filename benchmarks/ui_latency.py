"""Benchmark: how fast the dashboard answers in a real browser, against the engine's own time in the same run.

    .venv/bin/python benchmarks/ui_latency.py [--model PATH] [--repeats 5] [--cold-starts 5] [--batch 30]

A real ``streamlit run streamlit_app.py`` on 127.0.0.1 serves the model (the bundled one by default), driven
by Debian's headless Chromium through Playwright (never a downloaded browser). Each figure is the median of
``--repeats`` runs, timed in this process from the user's action until the browser shows its result:

* upload to result: a new image set on the Analyze uploader until its Grad-CAM overlay is painted;
* slider repaint: one step of the opacity slider until the overlay's new pixels are painted;
* class change: another class picked in "Heatmap for class" (by keyboard) until its overlay is painted;
* batch: "Analyse 30 image(s)" on the Batch page (../shared/data/ham10000_224) until the worklist says all are shown;
* cold start: process start until the first analysis is on screen (a fresh server each time; the browser
  starts beforehand and connects as soon as the server answers).

Baselines, in this process on the same model and images: the engine's ``LesionModel.analyze`` (one image,
Grad-CAM included), ``Analysis.overlay`` (what a slider step recomputes), ``analyze(class_label=...)`` (a class
change), ``run_batch`` over the same 30 files, and for the cold start a fresh interpreter that imports
TensorFlow and the engine, loads the model and analyses one image (each part timed); each printed beside the
browser figure as a ratio.
Goals (issue 17): slider repaint <= 150 ms, class change <= 400 ms, first analysis <= 5 s from process start.
Nothing here is asserted by the test suite. Writes benchmarks/results/ui_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dermascan.config import BUNDLED_MODEL  # noqa: E402

HAM = REPO.parent / "shared" / "data" / "ham10000_224"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
GOALS_MS = {"slider_repaint": 150.0, "class_change": 400.0, "cold_start": 5000.0}
TIMEOUT_MS = 300_000
OVERLAY = '[data-testid="stImage"]'
# True once the Grad-CAM overlay's image differs from ``before`` and is decoded and painted.
OVERLAY_PAINTED = """(before) => { const el = [...document.querySelectorAll('[data-testid="stImage"]')]
    .find(e => e.innerText.includes('Grad-CAM')); if (!el) return false;
    const img = el.querySelector('img');
    return !!img && img.src !== before && img.complete && img.naturalWidth > 0; }"""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A ``streamlit run streamlit_app.py`` process with its own review database; ``started`` is its start time."""

    def __init__(self, model: Path, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DERMASCAN_MODEL": str(model), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
               "DERMASCAN_REVIEW_DB": str(folder / f"reviews-{self.port}.sqlite3")}
        self.log = open(folder / f"server-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout_s: float = 300) -> None:
        """Block until the server answers its health check."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("streamlit did not become healthy")

    def stop(self) -> None:
        """Terminate the process (then kill it) and close its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Frames:
    """perf_counter times of the WebSocket frames between the page and the server (Streamlit's protocol).

    A step is split into: the browser sending the widget change, the server answering (its first message),
    the server's last message before the new overlay is painted, and the paint; which part is slow says
    whether the time goes to the server's run or to the browser.
    """

    def __init__(self, page) -> None:
        self.sent: list[float] = []
        self.received: list[float] = []
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        ws.on("framesent", lambda _payload: self.sent.append(time.perf_counter()))
        ws.on("framereceived", lambda _payload: self.received.append(time.perf_counter()))

    def split(self, t0: float, painted: float) -> dict[str, float] | None:
        """ms from ``t0`` to the first frame sent, to the first and the last frame received before ``painted``."""
        sent = next((t for t in self.sent if t >= t0), None)
        if sent is None:
            return None
        answers = [t for t in self.received if sent <= t <= painted]
        if not answers:
            return None
        return {"to_sent": (sent - t0) * 1000, "server_first": (answers[0] - sent) * 1000,
                "server_last": (answers[-1] - sent) * 1000, "paint_after_last": (painted - answers[-1]) * 1000}


SPLITS: dict[str, list[dict]] = {"slider_repaint": [], "class_change": []}
WATCHED: dict[int, Frames] = {}  # id(page) -> its frame times


def overlay_src(page) -> str:
    """The src of the Grad-CAM overlay image."""
    return page.locator(OVERLAY).filter(has_text="Grad-CAM").locator("img").get_attribute("src")


def wait_idle(page) -> None:
    """Wait until the app has finished its current run."""
    page.wait_for_timeout(200)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=TIMEOUT_MS)


def open_analyze(page, url: str) -> None:
    """Open the app on its Analyze page."""
    page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=TIMEOUT_MS)


def upload_ms(page, image: Path) -> float:
    """Set ``image`` on the uploader; ms until its overlay is painted."""
    before = overlay_src(page) if page.locator(OVERLAY).filter(has_text="Grad-CAM").count() else ""
    t0 = time.perf_counter()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(image))
    page.wait_for_function(OVERLAY_PAINTED, arg=before, timeout=TIMEOUT_MS, polling="raf")
    page.get_by_text(image.name).first.wait_for(timeout=TIMEOUT_MS)
    return (time.perf_counter() - t0) * 1000


def slider_ms(page, *, right: bool) -> float:
    """One opacity step by keyboard (right or left); ms until the new overlay is painted."""
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Heatmap opacity").get_by_role("slider")
    slider.focus()
    before = overlay_src(page)
    t0 = time.perf_counter()
    page.keyboard.press("ArrowRight" if right else "ArrowLeft")
    page.wait_for_function(OVERLAY_PAINTED, arg=before, timeout=TIMEOUT_MS, polling="raf")
    painted = time.perf_counter()
    _record_split(page, "slider_repaint", t0, painted)
    return (painted - t0) * 1000


def class_change_ms(page) -> float:
    """Pick another class in "Heatmap for class" by keyboard (the next option, or the previous one at the end of
    the list); ms from the Enter key until its overlay is painted. The keyboard, not a mouse click: Playwright's
    click first waits for the opening list to stop moving, which is not the app's time."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Heatmap for class").click()
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=TIMEOUT_MS)
    selected = [options.nth(i).get_attribute("aria-selected") == "true" for i in range(options.count())]
    page.keyboard.press("ArrowUp" if selected and selected[-1] else "ArrowDown")
    before = overlay_src(page)
    t0 = time.perf_counter()
    page.keyboard.press("Enter")
    page.wait_for_function(OVERLAY_PAINTED, arg=before, timeout=TIMEOUT_MS, polling="raf")
    painted = time.perf_counter()
    _record_split(page, "class_change", t0, painted)
    return (painted - t0) * 1000


def _record_split(page, name: str, t0: float, painted: float) -> None:
    frames = WATCHED.get(id(page))
    split = frames.split(t0, painted) if frames is not None else None
    if split is not None:
        SPLITS[name].append(split)


def batch_ms(page, url: str, images: list[Path]) -> float:
    """Run the Batch page over ``images``; ms from the Analyse click until every row is shown."""
    page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    page.get_by_role("heading", name="Analyze a lesion").wait_for(timeout=TIMEOUT_MS)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Batch", exact=True).click()
    page.get_by_role("heading", name="Batch worklist").wait_for(timeout=TIMEOUT_MS)
    page.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]').set_input_files(
        [str(p) for p in images])
    start = page.get_by_role("button", name=f"Analyse {len(images)} image(s)")
    start.wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)
    t0 = time.perf_counter()
    start.click()
    page.get_by_text(f"{len(images)} of {len(images)} images shown").wait_for(timeout=TIMEOUT_MS)
    return (time.perf_counter() - t0) * 1000


def cold_start_ms(browser, model: Path, folder: Path, image: Path) -> float:
    """A fresh server: ms from its process start until the first analysis is painted in a waiting browser."""
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    server = Server(model, folder)
    try:
        server.wait_healthy()
        open_analyze(page, server.url)
        upload_ms(page, image)
        return (time.perf_counter() - server.started) * 1000
    finally:
        server.stop()
        page.close()


# Run in a fresh interpreter: what a cold start costs the engine alone, before any browser or Streamlit.
COLD_ENGINE = """
import json, sys, time
t0 = time.perf_counter()
import tensorflow
t1 = time.perf_counter()
import dermascan
t2 = time.perf_counter()
model = dermascan.load_model(sys.argv[1])
t3 = time.perf_counter()
model.analyze(open(sys.argv[2], "rb").read())
t4 = time.perf_counter()
print(json.dumps({"import_tensorflow": t1 - t0, "import_engine": t2 - t1, "load_and_trace": t3 - t2,
                  "first_analysis": t4 - t3}))
"""


def engine_cold_start(model_path: Path, image: Path) -> dict:
    """Seconds a fresh interpreter spends importing TensorFlow and the engine, loading (and tracing) the model
    and analysing one image: the part of a cold start that no page or browser can hide."""
    out = subprocess.run([sys.executable, "-c", COLD_ENGINE, str(model_path), str(image)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def engine_baselines(model_path: Path, images: list[Path], batch: list[Path], repeats: int) -> dict:
    """The engine's own times on the same files (ms; medians of ``repeats`` after one warm-up)."""
    import dermascan
    from dermascan.inference.batch import file_sources, run_batch

    model = dermascan.load_model(model_path)
    data = [p.read_bytes() for p in images]
    model.analyze(data[0])
    single, overlay, other = [], [], []
    for k in range(repeats):
        blob = data[k % len(data)]
        t0 = time.perf_counter()
        analysis = model.analyze(blob)
        single.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        analysis.overlay(0.5 + 0.05 * k)
        overlay.append((time.perf_counter() - t0) * 1000)
        runner_up = analysis.predictions[1]["label"]
        t0 = time.perf_counter()
        model.analyze(blob, class_label=runner_up)
        other.append((time.perf_counter() - t0) * 1000)
    runs = []
    for _ in range(max(1, repeats // 2)):
        t0 = time.perf_counter()
        list(run_batch(model, file_sources(batch), with_cam=True))
        runs.append((time.perf_counter() - t0) * 1000)
    return {"analyze": statistics.median(single), "overlay": statistics.median(overlay),
            "class_change": statistics.median(other), "batch": statistics.median(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--batch", type=int, default=30)
    args = parser.parse_args()
    if not CHROMIUM.is_file() or not HAM.is_dir():
        sys.exit("This benchmark needs /usr/bin/chromium and ../shared/data/ham10000_224.")
    from playwright.sync_api import sync_playwright

    files = sorted((HAM / "images").glob("ISIC_*.jpg"))
    singles, batch = files[: args.repeats + 1], files[100 : 100 + args.batch]
    browser_ms: dict[str, list[float]] = {"upload": [], "slider_repaint": [], "class_change": [], "batch": [],
                                          "cold_start": []}
    with tempfile.TemporaryDirectory(prefix="ui-latency-") as tmp, sync_playwright() as pw:
        folder = Path(tmp)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for _ in range(args.cold_starts):  # first, while nothing else has warmed the OS file cache further
                browser_ms["cold_start"].append(cold_start_ms(browser, args.model, folder, singles[0]))
            server = Server(args.model, folder)
            try:
                server.wait_healthy()
                page = browser.new_page(viewport={"width": 1440, "height": 1800})
                WATCHED[id(page)] = Frames(page)
                open_analyze(page, server.url)
                upload_ms(page, singles[0])  # warm-up: the session's first run imports the pages' modules
                wait_idle(page)
                for image in singles[1:]:
                    browser_ms["upload"].append(upload_ms(page, image))
                    wait_idle(page)
                    for right in (True, False):
                        browser_ms["slider_repaint"].append(slider_ms(page, right=right))
                        wait_idle(page)
                    browser_ms["class_change"].append(class_change_ms(page))
                    wait_idle(page)
                for _ in range(max(1, args.repeats // 2)):
                    browser_ms["batch"].append(batch_ms(page, server.url, batch))
                    wait_idle(page)
                    page.reload()
            finally:
                server.stop()
        finally:
            browser.close()
    engine = engine_baselines(args.model, singles, batch, args.repeats)
    cold = [engine_cold_start(args.model, singles[0]) for _ in range(max(1, args.cold_starts))]
    engine["cold_start"] = {k: statistics.median(run[k] for run in cold) for k in cold[0]}
    report(args, browser_ms, engine)


def report(args, browser_ms: dict, engine: dict) -> None:
    """Print the medians, ratios and goals; write them to benchmarks/results/ui_latency.json."""
    medians = {k: statistics.median(v) for k, v in browser_ms.items() if v}
    baseline = {"upload": engine["analyze"], "slider_repaint": engine["overlay"],
                "class_change": engine["class_change"], "batch": engine["batch"],
                "cold_start": 1000 * sum(engine["cold_start"].values())}
    print(f"model {args.model.name} · {platform.python_version()} · {os.cpu_count()} CPUs · "
          f"repeats {args.repeats}, cold starts {args.cold_starts}, batch {args.batch}")
    print(f"{'':16} {'browser (ms)':>13} {'engine (ms)':>12} {'ratio':>7}  goal")
    rows = {}
    for name, value in medians.items():
        base = baseline[name]
        goal = GOALS_MS.get(name)
        ratio = value / base if base else None
        verdict = "" if goal is None else f"<= {goal:.0f} ms: {'met' if value <= goal else 'MISSED'}"
        print(f"{name:16} {value:13.0f} {base if base is not None else float('nan'):12.1f} "
              f"{ratio if ratio is not None else float('nan'):7.1f}  {verdict}")
        rows[name] = {"browser_ms": value, "engine_ms": base, "ratio": ratio, "runs_ms": browser_ms[name],
                      "goal_ms": goal}
    for name, splits in SPLITS.items():
        if splits:
            medians_split = {k: statistics.median(s[k] for s in splits) for k in splits[0]}
            rows.setdefault(name, {})["split_ms"] = medians_split
            print(f"{name}, where the time goes (medians, ms): "
                  + ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in medians_split.items()))
    parts = ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in engine["cold_start"].items())
    print(f"cold start, engine alone in a fresh interpreter (medians): {parts}")
    out = REPO / "benchmarks" / "results" / "ui_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model.name, "python": platform.python_version(),
                               "cpus": os.cpu_count(), "results": rows,
                               "engine_cold_start_s": engine["cold_start"]}, indent=2))
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
