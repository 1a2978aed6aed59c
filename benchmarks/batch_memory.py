"""Benchmark (not a test): RSS growth of a Batch-page run over 500 real images.

    PYTHONPATH=. .venv/bin/python benchmarks/batch_memory.py [--images 500] [--model PATH] [--no-cam]

Runs exactly the Batch page's code path, without a browser: in-memory uploads (as Streamlit
holds them) -> ``dashboard.uploads.collect`` -> ``BatchJob`` + ``dashboard.batch_job.advance``
(``run_batch`` underneath, with Grad-CAM) -> cases merged into a throw-away ReviewStore each
chunk. Reads VmRSS from /proc/self/status (Linux). The model is ``--model``, else
$DERMASCAN_MODEL / the bundled one, else an untrained MobileNetV2 at 224 px (the bundled
model's architecture; memory and speed do not depend on the weights).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from memory import rss_mb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HAM = REPO.parent / "shared" / "data" / "ham10000_224" / "images"
HAM_LABELS = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]



class Upload(io.BytesIO):
    """Stands in for Streamlit's UploadedFile (a BytesIO with a name, id and size)."""

    def __init__(self, name: str, data: bytes):
        super().__init__(data)
        self.name, self.file_id, self.size = name, name, len(data)


def load(model_arg: str | None, folder: Path):
    import json

    import dermascan
    from dermascan.errors import DermascanError

    try:
        return dermascan.load_model(model_arg), "given/bundled model"
    except DermascanError:
        if model_arg:
            raise
    from dermascan._tf import keras

    net = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=len(HAM_LABELS))
    path = folder / "mnv2.keras"
    net.save(path)
    path.with_name("mnv2.card.json").write_text(json.dumps({"labels": HAM_LABELS, "preprocessing": "tf",
                                                            "version": "bench"}))
    return dermascan.load_model(path), "untrained MobileNetV2 224 px"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-cam", action="store_true")
    args = parser.parse_args()
    if not HAM.is_dir():
        sys.exit("../shared/data/ham10000_224 is not present")

    from dashboard.batch_job import BatchJob, advance, flush_cases
    from dashboard.uploads import collect
    from dermascan.inference.batch import DEFAULT_CHUNK
    from dermascan.reviews import ReviewStore

    with tempfile.TemporaryDirectory() as tmp:
        model, which = load(args.model, Path(tmp))
        store = ReviewStore(Path(tmp) / "reviews.sqlite3")
        paths = sorted(HAM.glob("ISIC_*.jpg"))[: args.images]
        uploads = [Upload(p.name, p.read_bytes()) for p in paths]
        upload_mb = sum(u.size for u in uploads) / 2**20
        # Warm up the allocator and TF on one chunk, outside the measurement.
        warm = BatchJob(("warm",), total=DEFAULT_CHUNK, labels=model.labels, with_cam=not args.no_cam)
        advance(warm, model, collect(uploads[:DEFAULT_CHUNK]).sources, warm.claim(), session_id="bench",
                chunk_size=DEFAULT_CHUNK)
        del warm

        start_rss, peak = rss_mb(), 0.0
        intake = collect(uploads)
        job = BatchJob(("bench",), total=len(intake.sources), labels=model.labels, with_cam=not args.no_cam)
        marks = []

        def on_chunk(j):
            nonlocal peak
            flush_cases(j, store)
            peak = max(peak, rss_mb())
            if j.done % 100 < DEFAULT_CHUNK or j.finished:
                marks.append((j.done, rss_mb()))

        t0 = time.perf_counter()
        advance(job, model, intake.sources, job.claim(), session_id="bench", chunk_size=DEFAULT_CHUNK,
                on_chunk=on_chunk)
        seconds = time.perf_counter() - t0
        end_rss = rss_mb()
        kept = sum(len(r.thumbnail) + len(r.preview_jpeg) + (r.heatmap.nbytes if r.heatmap is not None else 0)
                   + r.probabilities.nbytes for r in job.results) / 2**20

        print(f"model: {which}; Grad-CAM {'off' if args.no_cam else 'on'}; {len(uploads)} real images "
              f"({upload_mb:.1f} MB of uploads, held as Streamlit would)")
        print(f"time: {seconds:.1f} s ({len(uploads) / seconds:.1f} images/s); review cases saved: "
              f"{store.count_cases()}; errors: {len(job.errors)}")
        for done, rss in marks:
            print(f"  after {done:>5} images: RSS {rss:8.1f} MB  (+{rss - start_rss:6.1f} MB)")
        print(f"RSS before the batch {start_rss:.1f} MB, after {end_rss:.1f} MB, peak {peak:.1f} MB: "
              f"growth {end_rss - start_rss:.1f} MB ({(end_rss - start_rss) / len(uploads) * 1024:.0f} kB/image)")
        print(f"kept per job: {kept:.1f} MB of thumbnails, previews and heatmaps "
              f"({kept / max(len(job.results), 1) * 1024:.0f} kB/image)")
        store.close()


if __name__ == "__main__":
    main()
