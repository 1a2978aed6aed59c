"""The Compare preprocessing page on real images: side-by-side columns, cache hits, metrics per option."""

from __future__ import annotations

import csv

import pytest
from app_helpers import HAM, assert_no_exception, new_app

from dashboard import compare_cache


@pytest.fixture
def images():
    """Six real HAM10000 images; skips without ../shared."""
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[:6]


def compare_page(files, labels_csv: bytes | None = None):
    at = new_app().run()
    at.switch_page("pages/compare.py").run()
    assert_no_exception(at)
    at.file_uploader(key="compare_upload").set_value([(p.name, p.read_bytes(), "image/jpeg") for p in files])
    if labels_csv is not None:
        at.file_uploader(key="compare_labels").set_value(("labels.csv", labels_csv, "text/csv"))
    return at


def option_headers(at) -> list[str]:
    return [md.value for md in at.markdown if md.value.startswith("**") and "·" in md.value]


def test_three_options_on_one_image_give_three_columns_and_toggling_is_cached(app_env, images):
    at = compare_page(images[:1])
    at.multiselect(key="compare_scalings").set_value(["unit", "tf", "raw"]).run()
    assert_no_exception(at)
    headers = option_headers(at)
    assert headers == ["**unit · squash ★ model card**", "**tf · squash**", "**raw · squash**"]
    assert len([i for i in at.image if i.captions[0].startswith("Grad-CAM")]) == 3
    assert len([m for m in at.metric if m.label == "Malignancy score"]) == 3
    assert at.success or any("disagree" in w.value for w in at.warning)  # agreement is reported either way
    assert any("Largest probability shift" in c.value for c in at.caption)

    calls = compare_cache.engine_calls()
    at.multiselect(key="compare_scalings").set_value(["unit"]).run()
    at.multiselect(key="compare_scalings").set_value(["unit", "tf", "raw"]).run()
    at.slider(key="compare_alpha").set_value(0.8).run()
    assert_no_exception(at)
    assert compare_cache.engine_calls() == calls  # back and forth and re-blending: no model call


def test_tta_adds_a_column_in_one_call(app_env, images):
    at = compare_page(images[:1])
    at.run()
    calls = compare_cache.engine_calls()
    at.toggle(key="compare_tta").set_value(True).run()
    assert_no_exception(at)
    assert any("TTA×4" in h for h in option_headers(at))
    assert compare_cache.engine_calls() == calls + 1


def test_labels_give_a_metrics_table_per_option(app_env, images):
    with open(HAM / "labels.csv", newline="") as fh:
        truth = {row["image_id"]: row["dx"] for row in csv.DictReader(fh)}
    labels_csv = ("image_id,dx\n" + "".join(f"{p.stem},{truth[p.stem]}\n" for p in images)).encode()
    at = compare_page(images, labels_csv)
    at.multiselect(key="compare_scalings").set_value(["unit", "imagenet"]).run()
    assert_no_exception(at)
    table = next(d.value for d in at.dataframe if "Balanced accuracy" in d.value.columns)
    assert len(table) == 2 and set(table["Images"]) == {6}
    assert {"Accuracy", "Balanced accuracy", "Macro AUC"} <= set(table.columns)
    assert (table["Best"] == "★ best").sum() == 1
    assert table["Option"].iloc[0].endswith("★ model card")
    assert at.get("vega_lite_chart")
    best_is_card = table["Best"].iloc[0] == "★ best"
    assert best_is_card or any("model card declares" in w.value for w in at.warning)
