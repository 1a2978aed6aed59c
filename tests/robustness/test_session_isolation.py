"""Two AppTest sessions in one process (one cached model, one shared review store): what each one sees.

Session A's uploaded image, overlay, file name and typed-but-unsaved decision never appear in session B's
pages; the review log is shared by design, so B lists A's case, after its own ("this session first"),
and selecting A's case shows no pixels (only A's session holds them). The browser version of this, with
concurrent sessions on a real server, is ``test_load_browser.py``. The shared review store is an SQLite file or a
PostgreSQL database (the ``backend`` fixture): isolation must not depend on which.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from robust_helpers import HAM, app, page_text

import dermascan
from dermascan.render.legend import legend_strip

LOG = "pages/review_log.py"
UNSAVED = "UNSAVED-NOTE-OF-A-31x"


@pytest.fixture
def media(monkeypatch) -> dict:
    """Every media file the app serves (images, downloads), by file id."""
    return app.record_media(monkeypatch)


@pytest.fixture
def setup(tmp_path, new_db, monkeypatch):
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    model = app.build_tiny_model(tmp_path / "model")
    monkeypatch.setenv("DERMASCAN_MODEL", str(model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(new_db()))
    paths = sorted((HAM / "images").glob("ISIC_*.jpg"))[:2]
    return model, [p.read_bytes() for p in paths]


def shown_pixels(at, media) -> list[np.ndarray]:
    """Every image the page shows but the heatmap's colour legend (the same for every session)."""
    legend = legend_strip().astype(np.int16)
    out = []
    for element in at.image:
        for url in element.value:
            with Image.open(io.BytesIO(media[Path(url).stem].content)) as img:
                pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
            if not (pixels.shape == legend.shape and np.array_equal(pixels, legend)):
                out.append(pixels)
    return out


def closest(pixels: np.ndarray, candidates: list[np.ndarray]) -> int:
    scores = [float(np.abs(pixels - c).mean()) if c.shape == pixels.shape else 255.0 for c in candidates]
    return int(np.argmin(scores)) if min(scores) < 3.0 else -1


def test_a_session_never_sees_another_sessions_image_or_unsaved_work(setup, media):
    model_path, (image_a, image_b) = setup
    engine = dermascan.load_model(model_path)
    a_views = [engine.analyze(image_a).image, engine.analyze(image_a).overlay(0.4)]
    b_views = [engine.analyze(image_b).image, engine.analyze(image_b).overlay(0.4)]
    candidates = [v.astype(np.int16) for v in a_views + b_views]  # 0, 1: A's; 2, 3: B's

    a = app.new_app().run()
    a.file_uploader(key="analyze_upload").set_value(("session-a.jpg", image_a, "image/jpeg")).run()
    note = next(t.key for t in a.text_area if t.key and t.key.endswith("_note"))
    a.text_area(key=note).input(UNSAVED).run()  # typed, never submitted
    app.assert_no_exception(a)

    b = app.new_app().run()
    b.file_uploader(key="analyze_upload").set_value(("session-b.jpg", image_b, "image/jpeg")).run()
    app.assert_no_exception(b)
    assert sorted(closest(p, candidates) for p in shown_pixels(b, media)) == [2, 3]  # B's original and overlay
    text = page_text(b)
    assert "session-a.jpg" not in text and UNSAVED not in text

    b.switch_page(LOG).run()
    app.assert_no_exception(b)
    log = b.dataframe[0].value
    assert list(log["File"]) == ["session-b.jpg", "session-a.jpg"] and list(log["This session"]) == [True, False]
    b.session_state["log_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    b.run()
    app.assert_no_exception(b)
    assert not b.image and any("image is not kept" in i.value for i in b.info)  # A's pixels stay with A
    assert UNSAVED not in page_text(b)
    b.session_state["log_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    b.run()
    assert b.image and {closest(p, candidates) for p in shown_pixels(b, media)} <= {2, 3}  # its own, again

    a.switch_page(LOG).run()
    assert list(a.dataframe[0].value["File"]) == ["session-a.jpg", "session-b.jpg"]
