"""Batch runner: order, per-file errors, isolation of a failing image, stopping early."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import keras_lib, save_model, tiny_cnn

import dermascan
from dermascan.inference.batch import batch_columns, batch_row, bytes_sources, run_batch
from dermascan.render.png import png_bytes


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional"), tmp_path_factory.mktemp("batch") / "m.keras")
    return dermascan.load_model(path, preprocessing="unit")


def sources(n: int, bad_at=()):
    rng = np.random.default_rng(2)
    items = []
    for i in range(n):
        data = b"garbage" if i in bad_at else png_bytes(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8))
        items.append((f"img{i:02d}.png", data))
    return bytes_sources(items)


@pytest.mark.parametrize("with_cam", [True, False])
def test_every_file_yields_one_item_in_order(model, with_cam):
    items = list(run_batch(model, sources(21, bad_at={3, 17}), with_cam=with_cam, chunk_size=8))
    assert [it.name for it in items] == [f"img{i:02d}.png" for i in range(21)]
    assert [i for i, it in enumerate(items) if it.error] == [3, 17]
    good = [it.analysis for it in items if it.error is None]
    assert all((a.heatmap is not None) == with_cam for a in good)
    if not with_cam:
        assert "heatmap" not in good[0].explanation


def test_batch_matches_single_image_analysis(model):
    src = sources(5)
    batch = [it.analysis for it in run_batch(model, src, chunk_size=2)]
    for (name, read), a in zip(src, batch):
        single = model.analyze(read(), name=name)
        np.testing.assert_allclose(a.probabilities, single.probabilities, atol=1e-6)
        np.testing.assert_allclose(a.heatmap, single.heatmap, atol=1e-5)
        assert a.sha256 == single.sha256


def test_an_exception_inside_one_image_costs_only_that_image(model, monkeypatch):
    real = model.explain_prepared
    poison = 127 / 255

    def fails_on_the_flat_image(x, *args, **kwargs):
        # Fault injection: the model call fails whenever the flat grey image is in the batch.
        if np.any(np.all(np.isclose(x, poison), axis=(1, 2, 3))):
            raise RuntimeError("simulated kernel failure")
        return real(x, *args, **kwargs)

    monkeypatch.setattr(model, "explain_prepared", fails_on_the_flat_image)
    src = sources(4)
    src[2] = ("flat.png", lambda: png_bytes(np.full((24, 30, 3), 127, np.uint8)))
    items = list(run_batch(model, src, chunk_size=4))
    assert [it.error for it in items] == [None, None, "The model could not analyse this image.", None]
    assert all(items[i].analysis.heatmap is not None for i in (0, 1, 3))


def test_should_stop_ends_after_the_current_chunk(model):
    seen = []
    items = run_batch(model, sources(40), chunk_size=8, should_stop=lambda: len(seen) >= 8)
    for it in items:
        seen.append(it)
    assert len(seen) == 8


def test_rows_have_the_documented_columns(model):
    items = list(run_batch(model, sources(2, bad_at={1})))
    rows = [batch_row(it, model.labels) for it in items]
    assert list(rows[0]) == batch_columns(model.labels)
    assert rows[1]["error"] and rows[1]["top_label"] == ""
    assert sum(rows[0][f"p_{label}"] for label in model.labels) == pytest.approx(1.0, abs=1e-4)
