"""``DynamicBatcher``: gather concurrent requests for a few milliseconds, run them as ONE compiled call.

As TF Serving and Triton do: each request's images are decoded and preprocessed on the request's own
thread, then queued here; one worker thread takes the first job, keeps gathering jobs while others are
still being decoded (at most ``max_wait_ms``, at most ``max_batch`` images), and runs them through the
engine's compiled probability + Grad-CAM pass (``LesionModel.explain_prepared``) in one call, then wraps
each image's outputs with ``LesionModel.make_analysis``. A lone request never waits: the worker waits for
company only while another request is on its way, so one client pays no batching delay.

The queue is bounded: a full queue refuses new work at once (``QueueFull``, 503) instead of letting
latency grow without end. The worker is the only thread that calls the model.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..errors import DermascanError
from ..inference.aligned import empty_aligned
from ..inference.analysis import Analysis

log = logging.getLogger(__name__)

_POLL_S = 0.0005  # how often a gathering worker re-checks whether more requests are still on their way
_RECENT_BATCHES = 1000  # batch sizes kept for the stats (tests and the benchmark read them)


class QueueFull(DermascanError):
    """Too many requests are already waiting for the model."""


@dataclass
class Prepared:
    """One decoded image ready for the model: its pixels, its model-ready tensor and what the record needs."""

    image: np.ndarray
    x: np.ndarray
    sha256: str
    name: str | None
    class_index: int = -1  # -1: explain the top class
    cam_method: str | None = None  # None: the model card's


@dataclass
class _Job:
    items: list[Prepared]
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """What the batcher did: compiled calls, images through them, recent batch sizes."""

    calls: int = 0
    images: int = 0
    largest: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=_RECENT_BATCHES))

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return {"engine_calls": self.calls, "images": self.images, "largest_batch": self.largest,
                "mean_batch": round(self.images / self.calls, 3) if self.calls else 0.0}


class DynamicBatcher:
    """Serialise a model's compiled calls behind a bounded queue, batching what arrives together."""

    def __init__(self, model, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 64):
        self.model = model
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=int(max_queue))
        self._arriving = 0  # requests being decoded that will submit soon
        self._lock = threading.Lock()
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._run, name="dermascan-batcher", daemon=True)
        self._thread.start()

    # -- request side ---------------------------------------------------------------------------------------
    def arriving(self) -> _Arrival:
        """Context manager a request holds while it decodes, so the worker knows to wait for it."""
        return _Arrival(self)

    def submit(self, items: list[Prepared]) -> Future:
        """Queue one request's images; the future resolves to one ``Analysis`` or exception per image."""
        job = _Job(list(items))
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull("The server is busy (too many requests waiting for the model); retry shortly.") from None
        return job.future

    def close(self) -> None:
        """Stop the worker after the jobs already queued (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)

    # -- worker side ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = self._gather(first)
            stop = jobs[-1] is None
            jobs = [j for j in jobs if j is not None]
            try:
                self._serve(jobs)
            except BaseException as exc:  # never leave a request waiting forever
                log.warning("Batch failed (%s)", type(exc).__name__)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
            if stop:
                return

    def _gather(self, first: _Job) -> list[_Job | None]:
        jobs: list[_Job | None] = [first]
        count = len(first.items)
        deadline = time.perf_counter() + self.max_wait_s
        while count < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                # Wait only while someone is still decoding and the deadline allows: a lone request goes at once.
                if self._arriving <= 0 or time.perf_counter() >= deadline:
                    break
                time.sleep(_POLL_S)
                continue
            jobs.append(job)
            if job is None:
                break
            count += len(job.items)
        return jobs

    def _serve(self, jobs: list[_Job]) -> None:
        items = [(job, i, item) for job in jobs for i, item in enumerate(job.items)]
        results: dict[tuple[int, int], Analysis | BaseException] = {}
        for start in range(0, len(items), self.max_batch):
            chunk = items[start : start + self.max_batch]
            for (job, i, _), outcome in zip(chunk, self._outcomes([it for _, _, it in chunk]), strict=True):
                results[id(job), i] = outcome
        for job in jobs:
            job.future.set_result([results[id(job), i] for i in range(len(job.items))])

    def _outcomes(self, chunk: list[Prepared]) -> list[Analysis | BaseException]:
        try:
            return self._analyse(chunk)
        except Exception as exc:
            if len(chunk) == 1:
                return [exc]
            # One image must not cost the others their result: retry one by one (as dermascan.inference.batch does).
            log.warning("Batch of %d failed (%s); retrying one by one", len(chunk), type(exc).__name__)
            return [self._outcomes([item])[0] for item in chunk]

    def _analyse(self, chunk: list[Prepared]) -> list[Analysis | BaseException]:
        methods = list(dict.fromkeys(item.cam_method for item in chunk))
        if len(methods) > 1:  # one compiled call per CAM method, results back in arrival order
            out: list = [None] * len(chunk)
            for method in methods:
                rows = [i for i, item in enumerate(chunk) if item.cam_method == method]
                for i, outcome in zip(rows, self._analyse([chunk[i] for i in rows]), strict=True):
                    out[i] = outcome
            return out
        model, method = self.model, methods[0]
        start = time.perf_counter()
        x = np.stack([item.x for item in chunk], out=empty_aligned((len(chunk), *chunk[0].x.shape)))
        views = model.views_for(None)  # the card's test-time augmentation (usually none)
        # A model with no spatial layer still predicts (and says why there is no map).
        probs, cams, chosen, features = model.infer_prepared(x, [item.class_index for item in chunk],
                                                             cam_method=method, views=views)
        per_image_ms = (time.perf_counter() - start) * 1000.0 / len(chunk)
        self._count(len(chunk))
        out: list[Analysis | BaseException] = []
        for i, item in enumerate(chunk):
            try:
                out.append(model.make_analysis(item.image, probs[i], None if cams is None else cams[i], int(chosen[i]),
                                               sha256=item.sha256, name=item.name, processing_time_ms=per_image_ms,
                                               features=features[i], cam_method=method, tta=views))
            except DermascanError as exc:  # e.g. InvalidModelOutput for this image only
                out.append(exc)
        return out

    def _count(self, n: int) -> None:
        stats = self.stats
        stats.calls += 1
        stats.images += n
        stats.largest = max(stats.largest, n)
        stats.recent.append(n)


class _Arrival:
    """A request on its way to the queue; ``submit`` through it, so the worker stops waiting for it on time."""

    def __init__(self, batcher: DynamicBatcher):
        self._batcher = batcher
        self._counted = False

    def __enter__(self) -> _Arrival:
        self._change(+1)
        self._counted = True
        return self

    def submit(self, items: list[Prepared]) -> Future:
        """Stop counting as arriving, then queue (in this order: a worker never waits for its own job)."""
        self._leave()
        return self._batcher.submit(items)

    def __exit__(self, *exc_info) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._counted:
            self._counted = False
            self._change(-1)

    def _change(self, delta: int) -> None:
        with self._batcher._lock:
            self._batcher._arriving += delta
