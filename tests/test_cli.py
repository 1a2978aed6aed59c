"""``python -m dermascan``: analyze, batch, evaluate, info and their error handling."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import HAM, HAM_LABELS, REPO, USER_MODELS, ham_labels, ham_sample
from tiny_models import keras_lib, save_model, tiny_cnn

from dermascan.cli import main
from dermascan.reviews.csvio import NOT_ANALYSED, csv_header

RECORD_FIELDS = {"model_version", "predictions", "malignant_score", "grad_cam", "explanation", "processing_time_ms",
                 "image_sha256", "triage", "preprocessing", "cam_layer", "warnings"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", size=48), folder / "tiny.keras")
    (folder / "tiny.card.json").write_text(json.dumps({"labels": HAM_LABELS, "preprocessing": "unit",
                                                       "version": "cli-test"}))
    return path


def test_analyze_json_has_every_field(tiny_model, ham_paths, capsys):
    assert main(["analyze", str(ham_paths[0]), "--model", str(tiny_model), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) >= RECORD_FIELDS
    assert record["model_version"] == "cli-test"
    probs = [p["probability"] for p in record["predictions"]]
    assert probs == sorted(probs, reverse=True) and len(probs) == 7
    assert record["grad_cam"].startswith("data:image/png;base64,")


def test_analyze_several_images_gives_an_array_and_overlays(tiny_model, ham_paths, tmp_path, capsys):
    args = ["analyze", *map(str, ham_paths[:2]), "--model", str(tiny_model), "--json", "--overlay-dir", str(tmp_path)]
    assert main(args) == 0
    records = json.loads(capsys.readouterr().out)
    assert isinstance(records, list) and len(records) == 2
    assert sorted(p.name for p in tmp_path.glob("*.gradcam.png")) == sorted(f"{p.stem}.gradcam.png"
                                                                           for p in ham_paths[:2])


def test_analyze_human_summary_and_unreadable_file(tiny_model, ham_paths, tmp_path, capsys):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is text, not a JPEG")
    code = main(["analyze", str(ham_paths[0]), str(fake), "--model", str(tiny_model)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "malignancy" in out and ham_paths[0].name in out
    assert err.count("\n") == 1 and "notes.jpg" in err and "Traceback" not in err


def test_batch_writes_every_row_with_a_bad_file(tiny_model, ham_paths, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for p in ham_paths[:5]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(ham_paths[0].read_bytes()[:300])
    (folder / "=cmd.png").write_bytes(b"not an image")
    out = tmp_path / "rows.csv"
    assert main(["batch", str(folder), "--csv", str(out), "--model", str(tiny_model)]) == 0
    assert out.read_bytes().startswith("\ufeff".encode())  # the Review log export's format: BOM, its columns
    with open(out, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 7
    assert list(rows[0]) == csv_header(HAM_LABELS)
    bad = {r["file_name"]: r for r in rows if r["explanation"].startswith(NOT_ANALYSED)}
    assert set(bad) == {"broken.jpg", "'=cmd.png"}  # the formula-like name is neutralised
    good = [r for r in rows if r["image_sha256"]]
    assert all(r["top_label"] in HAM_LABELS and 0 <= float(r["malignant_score"]) <= 1 for r in good)
    assert "7 rows" in capsys.readouterr().err


def test_evaluate_reports_metrics(tiny_model, tmp_path, capsys):
    if not HAM.is_dir():
        pytest.skip("../shared/data is not present")
    paths = ham_sample(14, per_class=True)
    labels = ham_labels()
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("image_id,dx\n" + "".join(f"{p.stem},{labels[p.stem]}\n" for p in paths)
                          + "ISIC_missing,nv\n")
    assert main(["evaluate", str(HAM / "images"), str(labels_csv), "--model", str(tiny_model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 14 and report["missing_images"] == ["ISIC_missing"]
    for key in ("accuracy", "balanced_accuracy", "per_class", "macro_auc", "melanoma_auc", "ece", "confusion_matrix",
                "malignant"):
        assert key in report
    assert main(["evaluate", str(HAM / "images"), str(labels_csv), "--model", str(tiny_model)]) == 0
    assert "balanced accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["analyze"], "the following arguments are required"),
     (["analyze", "x.jpg", "--preprocessing", "magic"], "invalid choice"),
     (["analyze", "x.jpg", "--model", "/nonexistent/model.h5"], "was not found"),
     (["frobnicate"], "invalid choice")],
)
def test_usage_errors_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_info_describes_the_model(tiny_model, capsys):
    assert main(["info", "--model", str(tiny_model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cam_layer"] == "conv_b" and info["loader"] == "keras" and info["input_size"] == [48, 48]


def test_tta_views_are_a_flag_and_a_bad_view_is_one_line(tiny_model, ham_paths, capsys):
    assert main(["analyze", str(ham_paths[0]), "--model", str(tiny_model), "--tta", "identity,hflip", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["tta"] == ["identity", "hflip"]
    assert main(["info", "--model", str(tiny_model), "--tta", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == []
    assert main(["info", "--model", str(tiny_model), "--tta", "identity,zoom"]) != 0
    err = capsys.readouterr().err.strip()
    assert "tta must be distinct view names" in err and "\n" not in err and "Traceback" not in err


@pytest.mark.skipif(not USER_MODELS.is_dir(), reason="../shared/data/user-models is not present")
def test_done_when_command_runs_as_a_subprocess(ham_paths):
    """The issue's acceptance command, exactly as a user types it (tf_keras fallback, EfficientNet)."""
    model = USER_MODELS / "keras2.15_efficientnetb0" / "model.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "dermascan", "analyze", str(ham_paths[0]), "--model", str(model),
                           "--json"], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-500:]
    record = json.loads(proc.stdout)
    assert set(record) >= RECORD_FIELDS and record["cam_layer"] == "top_activation"
    assert "Traceback" not in proc.stderr


def test_batch_reads_zip_archives_with_the_batch_page_limits(tiny_model, ham_paths, tmp_path, capsys):
    import io
    import zipfile

    from PIL import Image

    bomb = io.BytesIO()
    Image.new("L", (7000, 6000), 128).save(bomb, "PNG")  # 42 MP: allowed for one file, not for a zip entry
    archive = tmp_path / "clinic.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("case 3/good.jpg", ham_paths[0].read_bytes())
        zf.writestr("case 3/bomb.png", bomb.getvalue())
        zf.writestr("case 3/readme.txt", b"skipped, not an image")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    out = tmp_path / "rows.csv"
    assert main(["batch", str(archive), str(broken), "--csv", str(out), "--model", str(tiny_model)]) == 0
    with open(out, newline="", encoding="utf-8-sig") as fh:
        rows = {r["file_name"]: r for r in csv.DictReader(fh)}
    assert list(rows) == ["clinic.zip/good.jpg", "clinic.zip/bomb.png", "broken.zip"]
    good = rows["clinic.zip/good.jpg"]
    assert good["explanation"] and good["top_label"] in HAM_LABELS and len(good["image_sha256"]) == 64
    bomb = rows["clinic.zip/bomb.png"]
    assert "7000 x 6000 pixels" in bomb["explanation"] and bomb["p_nv"] == "" and bomb["image_sha256"] == ""
    assert rows["broken.zip"]["explanation"] == NOT_ANALYSED + "The archive is not a readable .zip file."
    err = capsys.readouterr().err
    assert "3 rows" in err and "2 with errors" in err and "Traceback" not in err
