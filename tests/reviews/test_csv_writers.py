"""One CSV schema: the Review log export, the Batch page's download and the CLI's batch CSV share one writer."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image
from shared_data import HAM_LABELS
from tiny_models import save_tiny_lesion_model

from dashboard.batch_export import table_csv
from dashboard.batch_job import BatchJob, record
from dermascan.cli import main
from dermascan.inference.batch import bytes_sources, run_batch
from dermascan.reviews import CaseRecord, Decision, ReviewStore
from dermascan.reviews.csvio import NOT_ANALYSED, csv_header, parse_csv, to_csv_bytes

BOM = "\ufeff".encode()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_tiny_lesion_model(tmp_path_factory.mktemp("model"))


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def rows_of(data: bytes) -> tuple[list[str], list[dict]]:
    assert data.startswith(BOM)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return list(reader.fieldnames), list(reader)


def review_log_export(tmp_path) -> bytes:
    store = ReviewStore(tmp_path / "log.sqlite3")
    store.add_case(CaseRecord(image_sha256="ab" * 32, top_label="mel", probabilities=dict.fromkeys(HAM_LABELS, 1 / 7),
                              decision=Decision(reviewer_agrees=True, management="excise")))
    return store.export_csv()


def batch_page_csv(model_path) -> bytes:
    import dermascan

    model = dermascan.load_model(model_path)
    sources = bytes_sources([("=lesion.png", png(1)), ("b.png", png(2)), ("broken.jpg", b"\xff\xd8 junk")])
    job = BatchJob(("sig",), total=3, labels=model.labels, with_cam=False)
    token = job.claim()
    for item in run_batch(model, sources, with_cam=False):
        assert record(job, item, token, "session")
    return table_csv(job.results, job.errors, job.labels, model.card, labels_by_id={"b": "nv"})


@pytest.fixture(scope="module")
def cli_csv(model_path, tmp_path_factory) -> bytes:
    """The CLI's batch CSV of two images and a damaged file (run once for the module)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "=lesion.png").write_bytes(png(1))
    (folder / "b.png").write_bytes(png(2))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 junk")
    out = tmp_path / "out.csv"
    assert main(["batch", str(folder), "--csv", str(out), "--model", str(model_path)]) == 0
    return out.read_bytes()


def test_the_three_writers_have_one_header(model_path, cli_csv, tmp_path):
    headers = {}
    for name, data in [("review log", review_log_export(tmp_path)), ("batch page", batch_page_csv(model_path)),
                       ("cli", cli_csv)]:
        headers[name], rows = rows_of(data)
        if name == "review log":
            continue
        by_file = {r["file_name"]: r for r in rows}
        assert set(by_file) == {"'=lesion.png", "b.png", "broken.jpg"}  # the formula-like name stays text
        good, bad = by_file["b.png"], by_file["broken.jpg"]
        assert good["model_version"] == "test-1" and good["preprocessing"] == "unit" and len(good["image_sha256"]) == 64
        assert abs(sum(float(good[f"p_{x}"]) for x in HAM_LABELS) - 1) < 1e-3
        assert bad["explanation"].startswith(NOT_ANALYSED) and bad["image_sha256"] == "" and bad["p_nv"] == ""
        assert bad["model_version"] == "test-1"  # a failed file still says which model ran
        if name == "batch page":
            assert good["dx"] == "nv" and by_file["'=lesion.png"]["dx"] == ""  # dx from the labels file
    assert headers["review log"] == headers["batch page"] == headers["cli"] == csv_header(HAM_LABELS)


def test_a_batch_csv_imports_into_the_review_log_and_its_failed_rows_are_refused_alone(cli_csv):
    from dermascan.reviews.csvio import ImportResult

    result = ImportResult()
    records = parse_csv(cli_csv, result)
    assert sorted(r.file_name for r in records) == ["=lesion.png", "b.png"]
    assert result.rejected == 1 and "image_sha256" in result.errors[0]
    assert to_csv_bytes(records).startswith(BOM)
