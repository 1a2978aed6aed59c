"""The Compare page's CAM methods: one method for every column, or every method side by side with their agreement."""

from __future__ import annotations

import pytest
from app_helpers import HAM, assert_no_exception, new_app

from dashboard import compare_cache
from dashboard.explanation_panel import method_title
from dermascan.cam import METHOD_NAMES


@pytest.fixture
def image():
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[0]


def compare_page(path):
    at = new_app().run()
    at.switch_page("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value([(path.name, path.read_bytes(), "image/jpeg")])
    return at.run()


def maps(at) -> dict[str, str]:
    """Caption -> URL of every heatmap image on the page."""
    return {img.captions[0]: img.value[0] for img in at.image}


def test_the_chosen_method_draws_every_options_map(app_env, image):
    at = compare_page(image)
    assert_no_exception(at)
    [(caption, url)] = maps(at).items()
    assert caption.startswith("Grad-CAM:")
    at.selectbox(key="compare_cam_method").set_value("hirescam").run()
    assert_no_exception(at)
    [(caption, other)] = maps(at).items()
    assert caption.startswith("HiResCAM:") and other != url


def test_methods_side_by_side_renders_each_method_and_the_agreement_table(app_env, image):
    at = compare_page(image)
    calls = compare_cache.engine_calls()
    at.toggle(key="compare_methods_mode").set_value(True).run()
    assert_no_exception(at)
    shown = maps(at)
    assert list(shown) == [method_title(m) for m in METHOD_NAMES]
    # With a pooled dense head Grad-CAM, HiResCAM and XGradCAM give the same map; the others differ from it.
    assert shown["Eigen-CAM"] != shown["Grad-CAM"] and shown["Score-CAM"] != shown["Grad-CAM"]
    assert len(set(shown.values())) >= 3
    assert compare_cache.engine_calls() == calls + len(METHOD_NAMES) - 1  # the card's map was cached already
    table = next(d.value for d in at.dataframe if "Rank correlation" in d.value.columns)
    n = len(METHOD_NAMES)
    assert len(table) == n * (n - 1) // 2
    assert table["Rank correlation"].between(-1, 1).all() and table["Top-20% overlap"].between(0, 1).all()
    pair = table[(table["Method"] == "Grad-CAM") & (table["Other method"] == "Eigen-CAM")]
    assert len(pair) == 1
    if shown["HiResCAM"] == shown["Grad-CAM"]:  # the same pixels: they must agree fully
        same = table[(table["Method"] == "Grad-CAM") & (table["Other method"] == "HiResCAM")].iloc[0]
        assert same["Rank correlation"] == pytest.approx(1.0) and same["Top-20% overlap"] == pytest.approx(1.0)
    at.toggle(key="compare_methods_mode").set_value(False).run()
    at.toggle(key="compare_methods_mode").set_value(True).run()
    assert compare_cache.engine_calls() == calls + len(METHOD_NAMES) - 1  # back and forth: cached
