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


def test_aligned_table_true_label_identical_inputs_and_metrics_download(app_env, images, media):
    from app_helpers import HAM_LABELS, as_shown, downloaded

    from dermascan.model.card import HAM10000_DISPLAY_NAMES

    with open(HAM / "labels.csv", newline="") as fh:
        truth = {row["image_id"]: row["dx"] for row in csv.DictReader(fh)}
    labels_csv = ("image_id,dx\n" + "".join(f"{p.stem},{truth[p.stem]}\n" for p in images[:2])).encode()
    at = compare_page(images[:2], labels_csv)
    # The shared images are 224 x 224: squashing and padding a square image give the model the same array.
    at.multiselect(key="compare_resizes").set_value(["squash", "pad"]).run()
    at.multiselect(key="compare_scalings").set_value(["unit", "tf"]).run()
    assert_no_exception(at)

    table = next(d.value for d in at.dataframe if "Class" in d.value.columns and "Code" in d.value.columns)
    assert list(table["Code"]) == HAM_LABELS  # one row per class, the model's order
    assert list(table["Class"]) == [HAM10000_DISPLAY_NAMES[c] for c in HAM_LABELS]  # full names
    options = ["unit · squash ★ model card", "unit · pad", "tf · squash", "tf · pad"]
    assert list(table.columns[2:]) == options
    assert (table["unit · squash ★ model card"] == table["unit · pad"]).all()
    assert abs(table[options].sum() - 1).max() < 1e-3  # each column is one image's full differential
    notes = [i.value for i in at.info if "identical inputs" in i.value]
    assert len(notes) == 2 and "unit · squash and unit · pad" in notes[0] and "tf · squash and tf · pad" in notes[1]
    shown = images[0].stem
    assert any(f"True label of {shown}.jpg (labels file): **{HAM10000_DISPLAY_NAMES[truth[shown]]}**"
               in as_shown(i.value) for i in at.info)

    assert any("these numbers are noisy" in w.value for w in at.warning)  # 2 labelled images
    button = next(b for b in at.get("download_button") if b.proto.id.endswith("compare_metrics_csv"))
    rows = list(csv.DictReader(downloaded(media, button).decode("utf-8").splitlines()))
    assert [r["option"] for r in rows] == [o.removesuffix(" ★ model card") for o in options]
    assert {r["n"] for r in rows} == {"2"} and [r["model_card"] for r in rows] == ["True", "False", "False", "False"]
