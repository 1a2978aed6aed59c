"""A model whose numbers are NaN or infinite for one image: every page says so in one line.

The model is real (built-in layers only): finite on ordinary images, infinite on a white one
(see ``tests/inference/test_nonfinite.py``). No page may show a triage band for that image, store a
case for it, or fail with a traceback; the other images of a batch go on.
"""

from __future__ import annotations

import json

import pytest
from app_helpers import HAM_LABELS, assert_no_exception, new_app
from tiny_models import overflow_on_white_model, png_bytes, save_model

from dermascan.reviews import ReviewStore

PATTERN = "invalid numbers"


@pytest.fixture(scope="module")
def overflow_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overflow_app")
    path = save_model(overflow_on_white_model(), folder / "overflow.keras")
    (folder / "overflow.card.json").write_text(json.dumps({"labels": HAM_LABELS, "preprocessing": "raw",
                                                           "version": "overflow-1"}))
    return path


@pytest.fixture
def overflow_env(monkeypatch, overflow_model, review_db):
    monkeypatch.setenv("DERMASCAN_MODELS_DIR", str(overflow_model.parent))
    monkeypatch.setenv("DERMASCAN_MODEL", str(overflow_model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))


@pytest.fixture(scope="module")
def pngs():
    import numpy as np

    return (png_bytes(np.full((32, 32, 3), 255, np.uint8)),  # white: infinite logits
            png_bytes(np.full((32, 32, 3), 90, np.uint8)))


def errors_of(at) -> list[str]:
    return [e.value for e in at.error]


def test_analyze_shows_one_line_and_no_triage_nor_case(overflow_env, pngs):
    white, _ = pngs
    at = new_app().run()
    at.file_uploader(key="analyze_upload").set_value(("white.png", white, "image/png")).run()
    assert_no_exception(at)
    assert any(PATTERN in e for e in errors_of(at))
    assert not any("badge[" in md.value for md in at.markdown)
    assert not [m for m in at.metric if m.label == "Malignancy score"]
    assert ReviewStore().count_cases() == 0


def test_batch_gives_the_white_image_an_error_row_and_analyses_the_rest(overflow_env, pngs):
    white, dark = pngs
    at = new_app().run()
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value([("white.png", white, "image/png"),
                                                    ("dark.png", dark, "image/png")]).run()
    at.button(key="batch_start").click().run()
    assert_no_exception(at)
    frame = at.dataframe(key="batch_table").value
    assert len(frame) == 1
    problems = next(d.value for d in at.dataframe if list(d.value.columns) == ["File", "Problem"])
    assert list(problems["File"]) == ["white.png"] and PATTERN in problems["Problem"].iloc[0]
    assert ReviewStore().count_cases() == 1


def test_compare_says_so_in_one_line(overflow_env, pngs):
    white, _ = pngs
    at = new_app().run()
    at.switch_page("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value([("white.png", white, "image/png")]).run()
    assert_no_exception(at)
    assert any(PATTERN in e for e in errors_of(at))
    assert not [m for m in at.metric if m.label == "Malignancy score"]
