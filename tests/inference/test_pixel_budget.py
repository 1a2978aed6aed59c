"""The pixel budget: zips of pixel bombs through the Batch page's job stay within a memory bound; a reduced
decode gives the model the same input as a full one; the budget gates decodes without deadlocking."""

from __future__ import annotations

import io
import threading
import zipfile

import cv2
import numpy as np
import pytest
from memory_probe import needs_proc, peak_bytes, reset_peak
from PIL import Image
from shared_data import ham_sample, needs_shared
from tiny_models import keras_lib, save_model, tiny_cnn

import dermascan
from dashboard.batch_job import PREVIEW_PX, BatchJob, advance, decode_preview
from dashboard.uploads import collect
from dermascan.inference.batch import DEFAULT_CHUNK, bytes_sources, run_batch
from dermascan.inference.budget import BudgetClosed, PixelBudget
from dermascan.inference.preprocessing import prepare
from dermascan.intake.archive import DEFAULT_MAX_ENTRY_PIXELS
from dermascan.intake.images import SCREEN_MAX_PX, read_image
from dermascan.render.png import png_bytes

MB = 1024 * 1024
MEMORY_BOUND = 600 * MB  # peak RSS growth allowed for the whole bomb batch (it grew by ~3 GB before the budget)


class Upload(io.BytesIO):
    """Stands in for Streamlit's UploadedFile (a BytesIO with a name, id and size)."""

    def __init__(self, name: str, data: bytes):
        super().__init__(data)
        self.name, self.file_id, self.size = name, name, len(data)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional"), tmp_path_factory.mktemp("budget") / "m.keras")
    return dermascan.load_model(path, preprocessing="unit")


def header_only_jpeg(width: int, height: int) -> bytes:
    """A valid JPEG header claiming ``width`` x ``height`` followed by a few bytes of scan data: a pixel bomb."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 150, 120)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    sos = data.index(b"\xff\xda")
    return bytes(data[: sos + 20])


def solid(fmt: str, size: tuple[int, int]) -> bytes:
    """A real, highly compressible image of ``size`` (width, height) pixels."""
    buf = io.BytesIO()
    Image.new("RGB", size, (180, 120, 90)).save(buf, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    return buf.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def run_job(model, uploads) -> BatchJob:
    intake = collect(uploads)
    job = BatchJob(("budget",), total=len(intake.sources), labels=model.labels, with_cam=True)
    advance(job, model, intake.sources, job.claim(), session_id="budget", chunk_size=DEFAULT_CHUNK)
    return job


@needs_proc
def test_a_zip_of_pixel_bombs_through_the_batch_page_job_stays_within_memory(model):
    bomb = header_only_jpeg(10000, 9999)  # 100 MP claimed, 300 MB if decoded at full size
    photo = solid("JPEG", (5000, 4000))  # 20 MP, real pixels
    scan = solid("PNG", (5000, 4000))  # 20 MP; PNG cannot be decoded at a reduced scale
    entries = {f"bomb{i}.jpg": bomb for i in range(6)}
    entries |= {f"photo{i:02d}.jpg": photo for i in range(40)}
    entries |= {f"scan{i}.png": scan for i in range(4)}
    archive = make_zip(entries)
    assert len(archive) < 200 * 1024  # a small upload
    uploads = [Upload("bombs.zip", archive), Upload("loose_bomb.jpg", bomb)]
    run_job(model, [Upload("warm.png", png_bytes(np.full((40, 40, 3), 90, np.uint8)))])  # TF and allocator warm

    start = reset_peak()
    job = run_job(model, uploads)
    growth = peak_bytes() - start

    assert job.done == job.total == 51 and job.finished
    errors = {row["file"]: row["error"] for row in job.errors}
    assert set(errors) == {f"bomb{i}.jpg" for i in range(6)} | {"loose_bomb.jpg"}
    assert all("\n" not in e and e.endswith(".") for e in errors.values())  # one line each
    # In the zip: refused from its header by the per-entry limit. Loose (100 MP allowed): decoded at 1/8 scale,
    # where its missing scan data shows.
    assert all("10000 x 9999 pixels" in errors[f"bomb{i}.jpg"] for i in range(6))
    assert "incomplete" in errors["loose_bomb.jpg"]
    assert len(job.results) == 44
    preview = decode_preview(job.results[0].preview_jpeg)
    assert max(preview.shape[:2]) <= PREVIEW_PX and job.results[0].heatmap is not None
    assert growth < MEMORY_BOUND, f"peak RSS grew by {growth / MB:.0f} MB"


def test_an_entry_over_the_per_entry_limit_is_refused_but_the_same_file_loose_is_analysed(model):
    side = int(DEFAULT_MAX_ENTRY_PIXELS**0.5) + 50  # just over 40 MP, under the 100 MP of a single upload
    photo = solid("JPEG", (side, side))
    job = run_job(model, [Upload("one.zip", make_zip({"big.jpg": photo})), Upload("big.jpg", photo)])
    assert [r["file"] for r in job.errors] == ["big.jpg"] and "40 megapixels" in job.errors[0]["error"]
    assert [r.name for r in job.results] == ["big.jpg"]


@needs_shared
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_reduced_decode_gives_the_model_the_same_input_as_a_full_one(fmt):
    real = read_image(ham_sample(1)[0].read_bytes())
    large = cv2.resize(real, (3000, 2250), interpolation=cv2.INTER_CUBIC)  # a real lesion at camera size
    buf = io.BytesIO()
    Image.fromarray(large).save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {"compress_level": 1}))
    data = buf.getvalue()

    full = read_image(data)
    reduced = read_image(data, max_side=SCREEN_MAX_PX)
    assert full.shape == (2250, 3000, 3)
    assert reduced.shape == (1095, SCREEN_MAX_PX, 3) and reduced.flags.c_contiguous
    x_full = prepare(full, (224, 224), "unit", "squash")
    x_reduced = prepare(reduced, (224, 224), "unit", "squash")
    diff = np.abs(x_full - x_reduced)
    assert float(diff.mean()) < 1.5 / 255 and float(np.percentile(diff, 99)) < 8 / 255


def test_small_images_are_not_touched_by_max_side():
    small = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(png_bytes(small), max_side=SCREEN_MAX_PX), small)
    tall = read_image(solid("PNG", (300, 3000)), max_side=SCREEN_MAX_PX)
    assert tall.shape == (SCREEN_MAX_PX, 146, 3)  # fits the square, aspect ratio kept


def test_a_tight_budget_slows_the_batch_but_every_image_comes_out_in_order(model):
    rng = np.random.default_rng(3)
    images = [(f"img{i:02d}.png", png_bytes(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8))) for i in range(11)]
    per_image = 60 * 50 + 32 * 32
    budget = PixelBudget(3 * per_image)  # one chunk of two fits, the next chunk's decodes must wait
    items = list(run_batch(model, bytes_sources(images), chunk_size=2, budget=budget))
    assert [it.name for it in items] == [name for name, _ in images]
    assert all(it.error is None for it in items)
    assert budget.peak <= budget.limit and budget.used == 0
    unbudgeted = list(run_batch(model, bytes_sources(images), chunk_size=2))
    for a, b in zip(items, unbudgeted):
        np.testing.assert_allclose(a.analysis.probabilities, b.analysis.probabilities, atol=1e-6)


def test_a_decode_waits_only_for_earlier_chunks_and_a_closed_budget_wakes_it():
    budget = PixelBudget(100)
    assert budget.acquire(80, chunk=0) == 80
    assert budget.acquire(80, chunk=0) == 80  # its own chunk: waiting could free nothing, so it goes ahead
    assert budget.acquire(500, chunk=0) == 100  # capped at the budget
    budget.release(260, chunk=0)
    assert budget.used == 0

    budget.acquire(90, chunk=0)
    got = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(50, chunk=1)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and got == []  # chunk 0 still holds 90 of 100
    budget.release(90, chunk=0)
    waiter.join(5)
    assert got == [50]

    budget.acquire(60, chunk=1)
    errors = []

    def blocked():
        try:
            budget.acquire(60, chunk=2)
        except BudgetClosed:
            errors.append("closed")

    waiter = threading.Thread(target=blocked)
    waiter.start()
    budget.close()
    waiter.join(5)
    assert errors == ["closed"]


def test_a_consumer_that_stops_early_does_not_hang_the_batch(model):
    rng = np.random.default_rng(4)
    images = [(f"i{i}.png", png_bytes(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8))) for i in range(12)]
    items = run_batch(model, bytes_sources(images), chunk_size=3, budget=PixelBudget(2 * (50 * 50 + 32 * 32)))
    first = next(items)
    items.close()  # decodes of the next chunk may be waiting for pixels: closing must release them
    assert first.error is None
