"""The Batch page on real images: worklist, errors, charts, CSV, review log, metrics equal to the CLI's."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile

import pytest
from app_helpers import HAM, assert_no_exception, batch_page, downloaded, upload_and_run
from shared_data import HAM_LABELS

from dermascan.reviews import ReviewStore
from dermascan.reviews.csvio import NOT_ANALYSED, csv_header


@pytest.fixture
def twenty_images():
    """Twenty real HAM10000 images (sorted ids); skips without ../shared."""
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[:20]


def download(at, media, key) -> bytes:
    """The bytes of the download button whose widget key is ``key``."""
    return downloaded(media, next(b for b in at.get("download_button") if b.proto.id.endswith(key)))


def table_rows(at, media) -> list[dict]:
    """The rows of the table download, checked to have the Review log export's columns."""
    text = download(at, media, "batch_table_csv").decode("utf-8")
    assert text.startswith("\ufeff")
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    assert reader.fieldnames == csv_header(HAM_LABELS)
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
    assert len(rows) == 21 and sum(r["explanation"].startswith(NOT_ANALYSED) for r in rows) == 1
    good = [r for r in rows if r["image_sha256"]]
    assert {r["file_name"] for r in good} == {p.name for p in twenty_images}
    assert {r["source"] for r in rows} == {"batch"} and {r["model_version"] for r in rows} == {"test-1"}
    assert all(abs(sum(float(r[f"p_{x}"]) for x in HAM_LABELS) - 1) < 1e-3 for r in good)
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

    job = BatchJob(("sig",), total=3, labels=HAM_LABELS, with_cam=False)
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


def labels_with_metadata(images) -> bytes:
    """A labels CSV of ``images`` with HAM10000's own age, sex and localization columns."""
    with open(HAM / "HAM10000_metadata.csv", newline="") as fh:
        meta = {row["image_id"]: row for row in csv.DictReader(fh)}
    lines = ["image_id,dx,age,sex,localization"]
    lines += [",".join(meta[p.stem][k] for k in ("image_id", "dx", "age", "sex", "localization")) for p in images]
    return ("\n".join(lines) + "\n").encode()


def decision_widget(at, kind: str, element: str = "radio"):
    """The batch decision form's widget ``kind`` (agree, diagnosis, management): there is one form on screen."""
    [widget] = [w for w in at.get(element) if str(w.key).startswith("batch_decision_") and w.key.endswith(kind)]
    return widget


def test_a_decision_goes_to_the_selected_image_after_sorting_and_filtering(app_env, twenty_images):
    from shared_data import ham_labels

    from dashboard.batch_review import form_key
    from dermascan.model.card import HAM10000_DISPLAY_NAMES

    images = twenty_images[:8]
    at = upload_and_run(batch_page(), [(p.name, p.read_bytes()) for p in images], labels_with_metadata(images))
    frame = at.dataframe(key="batch_table").value
    truth = ham_labels()
    assert list(frame["True label"]) == [HAM10000_DISPLAY_NAMES[truth[f.removesuffix(".jpg")]] for f in frame["File"]]
    upload_order = [p.name for p in images]
    # A row the risk sort moved: its position in the table is not its position in the upload.
    position = next(i for i, f in enumerate(frame["File"]) if f != upload_order[i])
    chosen = frame["File"].iloc[position]
    at.slider(key="batch_min_score").set_value(float(frame["Malignancy"].iloc[position]) // 0.05 * 0.05).run()
    shown = at.dataframe(key="batch_table").value
    assert chosen in set(shown["File"])
    at.session_state["batch_table"] = {"selection": {"rows": [list(shown["File"]).index(chosen)], "columns": [],
                                                     "cells": []}}
    at.run()
    assert overlay_file(at) == chosen

    decision_widget(at, "_agree").set_value("other")
    decision_widget(at, "_diagnosis", "selectbox").set_value("mel")
    decision_widget(at, "_management").set_value("biopsy")
    next(b for b in at.button if b.label == "Save to review log").click().run()
    assert_no_exception(at)

    store = ReviewStore()
    cases = store.list_cases()
    assert len(cases) == 8  # the batch's own case was used, not a new one
    decided = {c.file_name: c.decision for c in cases if c.decision is not None}
    assert list(decided) == [chosen]
    assert (decided[chosen].reviewer_agrees, decided[chosen].reviewer_diagnosis,
            decided[chosen].management) == (False, "mel", "biopsy")
    stored = next(c for c in cases if c.file_name == chosen)
    assert decision_widget(at, "_management").key == form_key(stored) + "_management"  # keyed by the case
    assert stored.dx == truth[chosen.removesuffix(".jpg")]  # dx from the labels file, stored with the case
    row = at.dataframe(key="batch_table").value.set_index("File").loc[chosen]
    assert row["Decision"] == "Melanoma · Biopsy"
    assert (at.dataframe(key="batch_table").value["Decision"] != "").sum() == 1


def subgroup_table(at):
    """The subgroup table on the page (a read-only dataframe: AppTest does not expose its key)."""
    [frame] = [d.value for d in at.dataframe if {"Field", "Group", "Cases"} <= set(d.value.columns)]
    return frame


def test_subgroup_table_from_the_labels_file_and_in_the_review_log(app_env, twenty_images, media):
    images = twenty_images[:12]
    at = upload_and_run(batch_page(), [(p.name, p.read_bytes()) for p in images], labels_with_metadata(images))
    table = subgroup_table(at)
    everyone = table[table["Group"] == "All cases"].iloc[0]
    assert everyone["Cases"] == 12

    rows = table_rows(at, media)  # the download: each image's score and its dx from the labels file
    malignant = [r for r in rows if r["dx"] in ("mel", "bcc", "akiec")]
    benign = [r for r in rows if r["image_sha256"] and r not in malignant]
    assert everyone["Malignant"] == len(malignant) and everyone["Benign"] == len(benign)
    spec_high = sum(float(r["malignant_score"]) < 0.5 for r in benign) / len(benign)
    assert everyone["Specificity at high (≥ 50%)"] == pytest.approx(spec_high)

    with open(HAM / "HAM10000_metadata.csv", newline="") as fh:
        sexes = [row["sex"] for row in csv.DictReader(fh) if row["image_id"] in {p.stem for p in images}]
    by_sex = table[table["Field"] == "Sex"].set_index("Group")["Cases"].to_dict()
    assert by_sex == {s: sexes.count(s) for s in set(sexes) - {"unknown"}}
    small = table[(table["Cases"] < 10) & (table["Field"] != "All")]
    assert len(small) and small["Specificity at high (≥ 50%)"].isna().all()  # counts only under 10 cases

    at.switch_page("pages/review_log.py").run()
    assert_no_exception(at)
    at.toggle(key="log_subgroups_on").set_value(True).run()  # opt-in: it reads every stored case
    logged = subgroup_table(at)  # the stored cases carry dx from the labels file
    assert logged[logged["Group"] == "All cases"].iloc[0]["Cases"] == 12
