"""Helpers shared by the robustness suite (not a test module, not a conftest).

- ``fuzz_settings``: bounded, deterministic Hypothesis settings for CI; ``DERMASCAN_FUZZ=long``
  multiplies the example counts by 20 and explores randomly (a longer local run). ``fuzz_examples``: the
  count for a backend (PostgreSQL runs fewer: every example is a round trip to the server).
- ``app``: the AppTest helpers of ``tests/app/app_helpers.py`` (``new_app``, ``build_tiny_model``...);
  ``page_text``: everything an AppTest page shows.
- ``e2e``: the ``streamlit run`` + Chromium helpers of ``tests/e2e/test_browser.py``, reused the same way,
  and ``running_server``, a context manager around them that always stops the server.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

__all__ = ["HAM", "REPO", "app", "chromium", "e2e", "fuzz_examples", "fuzz_settings", "page_text", "running_server"]

REPO = Path(__file__).resolve().parents[2]
HAM = REPO.parent / "shared" / "data" / "ham10000_224"

LONG = os.environ.get("DERMASCAN_FUZZ", "").lower() == "long"
SCALE = 20 if LONG else 1


def fuzz_settings(examples: int, **extra) -> settings:
    """``examples`` examples in CI (the same ones every run), ``20 x examples`` random ones with DERMASCAN_FUZZ=long."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,  # the per-example time bound is asserted inside the tests (a busy 2-core CI box)
        derandomize=not LONG,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large, HealthCheck.large_base_example],
        **extra,
    )


def fuzz_examples(backend: str, examples: int) -> int:
    """``examples`` on SQLite; on PostgreSQL a tenth of them, at least 10 (each example is a server round trip)."""
    return examples if backend == "sqlite" else max(examples // 10, 10)


def _e2e():
    # test_browser is imported by its own name, so pytest collecting it later finds the very same module.
    folder = str(REPO / "tests" / "e2e")
    if folder not in sys.path:
        sys.path.append(folder)
    import test_browser

    return test_browser


for _folder in (REPO / "tests", REPO / "tests" / "app"):  # shared helper modules; pytest adds these folders too
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

import app_helpers as app  # noqa: E402 - AppTest helpers of tests/app (new_app, build_tiny_model, ...)

e2e = _e2e()


def page_text(at) -> str:
    """Every text an AppTest page shows (labels, values, help, messages), from the element protobufs."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(app.proto_text(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


@contextlib.contextmanager
def running_server(model: Path, db: Path, log_path: Path, *, port: int | None = None, extra_env: dict | None = None,
                   args: tuple[str, ...] = ()):
    """``(url, proc)`` of ``streamlit run`` on 127.0.0.1 with this model and review DB; always stopped afterwards.

    The caller may kill ``proc`` itself (a crash); stopping an already dead server is a no-op.
    """
    port = port or e2e.free_port()
    env = {**os.environ, "DERMASCAN_MODEL": str(model), "DERMASCAN_REVIEW_DB": str(db), "PYTHONPATH": str(REPO),
           "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    log = open(log_path, "ab")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", *args],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        e2e.wait_healthy(url, proc, e2e.START_TIMEOUT_S)
        yield url, proc
    finally:
        e2e.stop_server(proc, log)


@contextlib.contextmanager
def chromium():
    """One headless Debian Chromium (Playwright), closed afterwards; open several contexts on it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(e2e.CHROMIUM), args=e2e.CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
