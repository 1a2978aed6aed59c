"""The Batch page's stability and faithfulness: worklist and CSV columns and the review log, equal to the engine."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from app_helpers import HAM, HAM_LABELS, batch_page, downloaded, upload_and_run

import dermascan
from dermascan.evaluation import trust
from dermascan.reviews import ReviewStore
from dermascan.reviews.csvio import csv_header


@pytest.fixture
def images():
    if not HAM.is_dir():
        pytest.skip("../shared/data/ham10000_224 is not present")
    return sorted((HAM / "images").glob("ISIC_*.jpg"))[:4]


def run_batch_page(files, **toggles):
    """The Batch page run on real image files with ``toggles`` set first."""
    return upload_and_run(batch_page(), [(p.name, p.read_bytes()) for p in files], **toggles)


def csv_rows(at, media) -> list[dict]:
    """The table download's rows (the Review log export's columns, faithfulness and stability among them)."""
    button = next(b for b in at.get("download_button") if b.proto.id.endswith("batch_table_csv"))
    reader = csv.DictReader(io.StringIO(downloaded(media, button).decode("utf-8").removeprefix("\ufeff"), newline=""))
    assert reader.fieldnames == csv_header(HAM_LABELS) and {"faithfulness", "stability"} <= set(reader.fieldnames)
    return list(reader)


def test_stability_and_faithfulness_columns_match_the_engine(app_env, images, media, tiny_model):
    at = run_batch_page(images, batch_stability=True, batch_faithfulness=True)
    frame = at.dataframe(key="batch_table").value
    assert frame["Stability"].between(0, 1).all() and frame["Faithfulness"].between(-1, 1).all()
    rows = {r["file_name"]: r for r in csv_rows(at, media)}
    model = dermascan.load_model(tiny_model)
    expected = trust.check(model, model.analyze_many([p.read_bytes() for p in images]))
    for path, a in zip(images, expected):
        assert float(rows[path.name]["stability"]) == pytest.approx(a.stability)
        assert float(rows[path.name]["faithfulness"]) == pytest.approx(a.faithfulness, abs=1e-3)
    stored = {c.file_name: c for c in ReviewStore().list_cases()}
    assert [stored[p.name].stability for p in images] == pytest.approx([a.stability for a in expected])
    assert np.allclose([stored[p.name].faithfulness for p in images], [a.faithfulness for a in expected], atol=1e-3)


def test_stability_alone_leaves_faithfulness_empty(app_env, images, media):
    at = run_batch_page(images[:2], batch_stability=True)
    frame = at.dataframe(key="batch_table").value
    assert frame["Stability"].between(0, 1).all() and frame["Faithfulness"].isna().all()
    rows = csv_rows(at, media)
    assert all(r["faithfulness"] == "" and r["stability"] != "" for r in rows)


def test_by_default_the_check_cells_are_empty(app_env, images, media):
    at = run_batch_page(images[:2])
    assert at.dataframe(key="batch_table").value["Stability"].isna().all()
    assert all(r["stability"] == "" and r["faithfulness"] == "" for r in csv_rows(at, media))
    assert all(c.stability is None and c.faithfulness is None for c in ReviewStore().list_cases())
