"""The Batch page on real images: worklist, errors, charts, CSV, review log, metrics equal to the CLI's."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile

import pytest
from app_helpers import HAM, assert_no_exception, downloaded, new_app

from dermascan.inference.batch import batch_columns
from dermascan.reviews import ReviewStore

LABELS = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


@pytest.fixture
def twenty_images():
    """Twenty real HAM10000 images (sorted ids); skips without ../shared."""
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[:20]


def batch_page():
    at = new_app().run()
    at.switch_page("pages/batch.py").run()
    assert_no_exception(at)
    return at


def upload_and_run(at, files, labels_csv: bytes | None = None):
    """Upload ``files`` [(name, bytes)] (and a labels CSV), press Analyse and wait for the results."""
    at.file_uploader(key="batch_upload").set_value([(n, data, "application/octet-stream") for n, data in files])
    if labels_csv is not None:
        at.file_uploader(key="batch_labels").set_value(("labels.csv", labels_csv, "text/csv"))
    at.run()
    assert_no_exception(at)
    at.button(key="batch_start").click().run()
    assert_no_exception(at)
    return at


def download(at, media, key) -> bytes:
    """The bytes of the download button whose widget key is ``key``."""
    return downloaded(media, next(b for b in at.get("download_button") if b.proto.id.endswith(key)))


def table_rows(at, media) -> list[dict]:
    text = download(at, media, "batch_table_csv").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == batch_columns(LABELS, checks=True)  # the page measures stability and faithfulness
    return list(reader)


def test_twenty_images_and_a_corrupt_file(app_env, twenty_images, media):
    files = [(p.name, p.read_bytes()) for p in twenty_images] + [("broken.jpg", b"\xff\xd8 not really a jpeg")]
    at = upload_and_run(batch_page(), files)
    frame = at.dataframe(key="batch_table").value
    assert len(frame) == 20
    assert frame["Malignancy"].is_monotonic_decreasing  # risk first
    assert all(str(uri).startswith("data:image/png;base64,") for uri in frame["Image"])
    assert set(frame["Triage"]) <= {"low", "medium", "high"}
    errors = next(d.value for d in at.dataframe if list(d.value.columns) == ["File", "Problem"])
    assert list(errors["File"]) == ["broken.jpg"] and "Traceback" not in errors["Problem"].iloc[0]
    assert len(at.get("vega_lite_chart")) == 2  # class distribution and score histogram
    rows = table_rows(at, media)
    assert len(rows) == 21 and sum(bool(r["error"]) for r in rows) == 1
    good = [r for r in rows if not r["error"]]
    assert {r["file"] for r in good} == {p.name for p in twenty_images}
    assert all(abs(sum(float(r[f"p_{x}"]) for x in LABELS) - 1) < 1e-3 for r in good)
    cases = ReviewStore().list_cases()
    assert len(cases) == 20 and {c.source for c in cases} == {"batch"}


def test_filters_narrow_the_table(app_env, twenty_images, media):
    at = upload_and_run(batch_page(), [(p.name, p.read_bytes()) for p in twenty_images[:8]])
    frame = at.dataframe(key="batch_table").value
    top = frame["Code"].iloc[0]
    at.multiselect(key="batch_filter_classes").set_value([top]).run()
    filtered = at.dataframe(key="batch_table").value
    assert len(filtered) == (frame["Code"] == top).sum() and set(filtered["Code"]) == {top}
    at.slider(key="batch_min_score").set_value(1.0).run()
    assert len(at.dataframe(key="batch_table").value) == (frame["Malignancy"] >= 1.0).sum()
    assert len(table_rows(at, media)) == len(at.dataframe(key="batch_table").value)


def test_zip_of_images_skips_folders_and_hidden_files(app_env, twenty_images):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in twenty_images[:5]:
            zf.write(p, f"patient-folder/{p.name}")
        zf.writestr("__MACOSX/._x.jpg", b"junk")
        zf.writestr(".hidden.jpg", b"junk")
        zf.writestr("notes.txt", b"hello")
    at = upload_and_run(batch_page(), [("images.zip", buf.getvalue())])
    frame = at.dataframe(key="batch_table").value
    assert sorted(frame["File"]) == sorted(p.name for p in twenty_images[:5])  # base names only


def test_labelled_batch_metrics_match_the_cli(app_env, twenty_images, media, tmp_path, tiny_model):
    import dermascan
    from dermascan.evaluation.evaluate import evaluate_folder

    with open(HAM / "labels.csv", newline="") as fh:
        truth = {row["image_id"]: row["dx"] for row in csv.DictReader(fh)}
    labels_csv = "image_id,dx\n" + "".join(f"{p.stem},{truth[p.stem]}\n" for p in twenty_images)
    at = upload_and_run(batch_page(), [(p.name, p.read_bytes()) for p in twenty_images], labels_csv.encode())
    assert len(at.get("vega_lite_chart")) == 6  # + confusion, recall, ROC (or none), reliability
    shown = {(r["metric"], r["class"]): r["value"]
             for r in csv.DictReader(io.StringIO(download(at, media, "batch_metrics_csv").decode()))}

    folder = tmp_path / "images"
    folder.mkdir()
    for p in twenty_images:
        shutil.copy(p, folder / p.name)
    (tmp_path / "labels.csv").write_text(labels_csv)
    report = evaluate_folder(dermascan.load_model(tiny_model), folder, tmp_path / "labels.csv")
    for name in ("n", "accuracy", "balanced_accuracy", "macro_auc", "ece"):
        expected = report[name]
        assert (shown[(name, "")] == "") if expected is None else float(shown[(name, "")]) == pytest.approx(
            expected, abs=1e-6)
    for label, per in report["per_class"].items():
        assert int(shown[("support", label)]) == per["support"]
    assert float(shown[("malignant_auc", "")] or "nan") == pytest.approx(report["malignant"]["auc"] or float("nan"),
                                                                        abs=1e-6, nan_ok=True)


def test_a_run_that_lost_the_job_cannot_change_it():
    """Streamlit starts the next script run while the old one is still busy: only the newest run may write."""
    from dashboard.batch_job import DONE, STOPPED, BatchJob, record
    from dermascan.inference.batch import BatchItem

    job = BatchJob(("sig",), total=3, labels=LABELS, with_cam=False)
    old = job.claim()
    assert record(job, BatchItem("a.jpg", error="bad"), old, "s")
    new = job.claim()  # a click: the new run claims the job first thing
    assert not record(job, BatchItem("b.jpg", error="bad"), old, "s") and job.done == 1
    assert record(job, BatchItem("b.jpg", error="bad"), new, "s")
    job.stop()  # the Stop button's callback
    assert job.status == STOPPED and not record(job, BatchItem("c.jpg", error="bad"), new, "s")
    job.resume()
    resumed = job.claim()
    assert record(job, BatchItem("c.jpg", error="bad"), resumed, "s")
    assert job.status == DONE and [e["file"] for e in job.errors] == ["a.jpg", "b.jpg", "c.jpg"]


def batch_ticked(at) -> list[str]:
    """The file names of the worklist rows the table shows ticked."""
    rows = at.session_state["batch_table"]["selection"]["rows"]
    return [at.dataframe(key="batch_table").value["File"].iloc[r] for r in rows]


def overlay_file(at) -> str | None:
    """The file name the overlay panel shows (None: no panel); Markdown escapes removed."""
    heads = [md.value for md in at.markdown if "· malignancy" in md.value]
    return heads[0].split("**")[1].replace("\\", "") if heads else None


def test_repro_2_the_selected_image_stays_selected_through_the_class_filter(app_env, twenty_images):
    at = upload_and_run(batch_page(), [(p.name, p.read_bytes()) for p in twenty_images[:8]])
    frame = at.dataframe(key="batch_table").value
    position = len(frame) - 1  # the lowest score: other rows come before it in any filtered view
    chosen, chosen_class = frame["File"].iloc[position], frame["Code"].iloc[position]
    at.session_state["batch_table"] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    at.run()
    assert overlay_file(at) == chosen and batch_ticked(at) == [chosen]

    others = sorted(set(frame["Code"]) - {chosen_class})
    hide = others or ["mel" if chosen_class != "mel" else "nv"]  # classes it does not have
    at.multiselect(key="batch_filter_classes").set_value(hide).run()
    assert_no_exception(at)
    assert chosen not in set(at.dataframe(key="batch_table").value["File"])
    assert overlay_file(at) == chosen and batch_ticked(at) == []  # no other image takes its place
    assert any("hidden by the current filter" in i.value for i in at.info)

    at.multiselect(key="batch_filter_classes").set_value(sorted({chosen_class, *others})).run()
    shown = list(at.dataframe(key="batch_table").value["File"])
    assert overlay_file(at) == chosen and batch_ticked(at) == [chosen]
    assert shown.index(chosen) == position  # every class again: the same row as at first
    at.multiselect(key="batch_filter_classes").set_value([chosen_class]).run()
    assert overlay_file(at) == chosen and batch_ticked(at) == [chosen]  # its row in the narrower view
    if others:
        assert len(at.dataframe(key="batch_table").value) < len(frame)
