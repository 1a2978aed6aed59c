"""A resumable batch job: what has been analysed so far, kept small enough for 1,000 images.

Each result keeps only what the Batch page shows: the numbers, a 64 px thumbnail (PNG
data URI for the table), a downscaled JPEG preview (<= 384 px) and the Grad-CAM heatmap
at the model's feature-map resolution (float16) for the overlay. The uploaded bytes and
decoded pixels (already no larger than ``SCREEN_MAX_PX``: ``run_batch`` never holds a full-size
photo) are dropped as soon as a file is analysed.

``advance`` processes the files not done yet and records every item before anything is
drawn, so an interrupted script run loses nothing and the next run resumes.

The run state machine lives here, not in the page, so it is tested without Streamlit:
``BatchJob.start`` makes a job (running, or done at once when every file was refused),
``stop`` / ``resume`` move it between running and stopped, ``record`` moves it to done after the
last file, ``should_process`` stops a running job whose uploads or settings changed, and
``start_control`` says when Analyse would only redo the job in hand.

Threads: when the user clicks anything, Streamlit 1.67 starts the new script run at once
while the old run's thread keeps going until its next element call. So a job has an
owner: every script run ``claim``s the job first, and an item from a run that no longer
owns it is dropped (and that run's ``run_batch`` stops after its chunk). All changes go
through one lock, so the new run never draws a half-updated job.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from dermascan.inference.batch import BatchItem, Source, batch_row, run_batch
from dermascan.render.overlay import fit_within
from dermascan.render.png import png_data_uri
from dermascan.reviews import CaseRecord

THUMBNAIL_PX = 64
PREVIEW_PX = 384
PREVIEW_JPEG_QUALITY = 90
RUNNING, STOPPED, DONE = "running", "stopped", "done"


@dataclass
class BatchResult:
    """One analysed file, without its full-size pixels."""

    index: int  # position in the upload order
    name: str
    sha256: str
    top_label: str
    malignant_score: float
    triage: str
    probabilities: np.ndarray  # float32, in the model's label order
    explained_label: str
    thumbnail: str  # data:image/png;base64,... (<= 64 px)
    preview_jpeg: bytes  # <= 384 px, for the overlay
    heatmap: np.ndarray | None  # float16 at the CAM layer's resolution
    csv_row: dict  # dermascan.inference.batch.batch_row, computed while the Analysis was at hand
    faithfulness: float | None = None  # Analysis.faithfulness (None: not measured)
    stability: float | None = None  # Analysis.stability (None: not measured)
    case: CaseRecord | None = None  # its review-log case (None: a field the store refuses); add_case gives its id

    @property
    def case_id(self) -> int | None:
        """The review-log id of this result's case, once known (``ReviewStore.add_case`` sets it)."""
        return None if self.case is None else self.case.case_id


@dataclass
class BatchJob:
    """Progress and results of one batch; lives in ``st.session_state``."""

    signature: tuple  # what was uploaded and how it is analysed: a new signature is a new job
    total: int
    labels: list[str]
    with_cam: bool
    status: str = RUNNING
    done: int = 0
    results: list[BatchResult] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # batch_row dicts of the files that failed
    pending_cases: list[CaseRecord] = field(default_factory=list)  # not yet in the review log
    logged: int = 0
    reused: int = 0  # results whose case was already in the review log (same image, model version, options)
    unloggable: int = 0
    seconds: float = 0.0
    stability: bool = False  # measured per image
    faithfulness: bool = False  # measured per image (with heatmaps)
    started_at: float = field(default_factory=time.time)  # epoch seconds, for "a batch started at HH:MM"
    ref: str = field(default_factory=lambda: secrets.token_urlsafe(9))  # names the job in the URL (no data)
    owner: int = 0  # token of the script run allowed to change the job
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def start(cls, signature: tuple, *, total: int, labels: list[str], with_cam: bool,
              errors: Sequence[dict] = (), stability: bool = False, faithfulness: bool = False) -> BatchJob:
        """A new job over ``total`` files; with nothing to analyse (every file refused: ``errors``) it is done."""
        return cls(signature, total=total, labels=list(labels), with_cam=with_cam,
                   status=RUNNING if total else DONE, errors=list(errors), stability=stability,
                   faithfulness=faithfulness)

    @property
    def finished(self) -> bool:
        """True when every file has been processed."""
        return self.done >= self.total

    def claim(self) -> int:
        """Make the calling script run the job's only writer; returns its token."""
        with self.lock:
            self.owner += 1
            return self.owner

    def stop(self) -> None:
        """Stop after the chunk in flight (called from the Stop button's callback)."""
        with self.lock:
            self.owner += 1  # whichever run is processing loses the job now
            if self.status == RUNNING:
                self.status = STOPPED

    def resume(self) -> None:
        """Carry on with the files not processed yet."""
        with self.lock:
            if not self.finished:
                self.status = RUNNING

    def is_for(self, signature: tuple) -> bool:
        """True when the job is over the files uploaded now, with the settings chosen now."""
        return self.signature == signature

    def should_process(self, signature: tuple) -> bool:
        """Whether this script run carries the job on: it is running, over the files uploaded now.

        A running job whose uploads or settings changed is stopped: its remaining files are no longer the same.
        """
        if self.status != RUNNING:
            return False
        if not self.is_for(signature):
            self.stop()
            return False
        return True

    @property
    def has_results(self) -> bool:
        """True once the job has stopped or is done: its results section can be drawn."""
        return self.status in (DONE, STOPPED)


def start_control(job: BatchJob | None, signature: tuple, *, has_files: bool) -> tuple[bool, str | None]:
    """``(disabled, help)`` of the Analyse button for the files uploaded now (``signature``).

    Disabled when there is nothing to start (``has_files``: no file accepted or refused) or when the job in
    hand already runs or ran over these very files and settings; a stopped one can be started afresh.
    """
    same = job is not None and job.is_for(signature)
    disabled = (same and job.status in (RUNNING, DONE)) or not has_files
    return disabled, "Already analysed with these settings." if same and job.status == DONE else None


def thumbnail_data_uri(image: np.ndarray, max_px: int = THUMBNAIL_PX) -> str:
    """A small PNG data URI of an RGB image (for ``st.column_config.ImageColumn``)."""
    return png_data_uri(fit_within(image, max_px, max_px))


def preview_jpeg(image: np.ndarray, max_px: int = PREVIEW_PX) -> bytes:
    """A downscaled JPEG of an RGB image, enough for an overlay on screen."""
    bgr = cv2.cvtColor(fit_within(image, max_px, max_px), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
    return buf.tobytes() if ok else b""


def decode_preview(data: bytes) -> np.ndarray:
    """RGB pixels of a preview made by ``preview_jpeg``."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def compact(item: BatchItem, index: int, labels: list[str]) -> BatchResult:
    """Keep what the page needs from a successful item and let its full-size image go."""
    a = item.analysis
    return BatchResult(
        index=index, name=item.name, sha256=a.sha256, top_label=a.top_label, malignant_score=float(a.malignant_score),
        triage=a.triage, probabilities=np.asarray(a.probabilities, dtype=np.float32),
        explained_label=a.explained_label, thumbnail=thumbnail_data_uri(a.image), preview_jpeg=preview_jpeg(a.image),
        heatmap=None if a.heatmap is None else np.asarray(a.heatmap, dtype=np.float16),
        csv_row=batch_row(item, labels), faithfulness=a.faithfulness, stability=a.stability,
    )


def advance(job: BatchJob, model, sources: Sequence[Source], token: int, *, session_id: str, chunk_size: int,
            on_chunk: Callable[[BatchJob], None] | None = None) -> None:
    """Analyse ``sources[job.done:]`` through ``run_batch`` on behalf of the run holding ``token``.

    ``on_chunk(job)`` runs after every ``chunk_size`` items (and at the end): the place to
    save cases and draw progress. Returns early once another run claims the job or it is stopped.
    """
    start = time.perf_counter()
    items = run_batch(model, list(sources[job.done :]), with_cam=job.with_cam, chunk_size=chunk_size,
                      stability=job.stability, faithfulness=job.faithfulness,
                      should_stop=lambda: job.owner != token or job.status != RUNNING)
    for item in items:
        if not record(job, item, token, session_id, time.perf_counter() - start):
            return
        start = time.perf_counter()
        if on_chunk is not None and (job.done % chunk_size == 0 or job.finished):
            on_chunk(job)


def record(job: BatchJob, item: BatchItem, token: int, session_id: str, seconds: float = 0.0) -> bool:
    """Add one item's outcome to ``job`` if the run holding ``token`` still owns it; False otherwise."""
    result = case = None
    if item.error is None:  # the slow part (thumbnail, preview) happens outside the lock
        result = compact(item, -1, job.labels)
        try:
            case = CaseRecord.from_analysis(item.analysis, session_id=session_id, source="batch")
        except ValueError:  # a field the store refuses (e.g. an over-long file name): the result still shows
            case = None
    with job.lock:
        if job.owner != token or job.status != RUNNING:
            return False
        if result is None:
            job.errors.append(batch_row(item, job.labels))
        else:
            result.index = job.done
            result.case = case
            job.results.append(result)
            if case is None:
                job.unloggable += 1
            else:
                job.pending_cases.append(case)
        job.done += 1
        job.seconds += seconds
        if job.finished:
            job.status = DONE
    return True


def analysis_key(case: CaseRecord) -> tuple:
    """What makes two cases the same analysis: image, model version and the options it was fed with."""
    return case.image_sha256, case.model_version, case.preprocessing, case.resize


def stored_match(case: CaseRecord, store) -> CaseRecord | None:
    """The review-log case holding the same analysis as ``case`` (image, model version, options), if any."""
    key = analysis_key(case)
    return next((c for c in store.find_cases(case.image_sha256, case.model_version) if analysis_key(c) == key), None)


def new_cases(cases: Sequence[CaseRecord], store) -> list[CaseRecord]:
    """The cases of ``cases`` whose analysis is not in the review log yet (nor earlier in ``cases``).

    A re-run of the same files, or the same files with Grad-CAM toggled, reuses the cases already there
    (with their decisions) instead of adding duplicates.
    """
    fresh, seen = [], set()
    for case in cases:
        key = analysis_key(case)
        if key in seen:
            continue
        seen.add(key)
        if stored_match(case, store) is None:
            fresh.append(case)
    return fresh


def flush_cases(job: BatchJob, store) -> int:
    """Write the pending cases that are new to the review store in one transaction; returns how many were written.

    Cases already in the log count as ``job.reused``. Afterwards every flushed case carries the id of its stored
    case (the reused one for a re-run), so a decision typed on a batch row goes to the case the log shows.
    On failure the cases go back to the pending list and the store's error propagates.
    """
    with job.lock:
        cases, job.pending_cases = job.pending_cases, []
    if not cases:
        return 0
    try:
        fresh = new_cases(cases, store)
        if fresh:
            store.merge_cases(fresh)
        for case in cases:
            stored = stored_match(case, store)
            case.case_id = None if stored is None else stored.case_id
    except Exception:
        with job.lock:
            job.pending_cases[:0] = cases
        raise
    with job.lock:
        job.logged += len(fresh)
        job.reused += len(cases) - len(fresh)
    return len(fresh)


@dataclass(frozen=True)
class BatchStatus:
    """How far a batch got: counts and times only (no names, no pixels), so another session may read it."""

    started_at: float
    total: int
    done: int
    results: int
    errors: int
    state: str  # RUNNING, STOPPED or DONE (a run that ended before the last file: STOPPED)

    def sentence(self) -> str:
        """E.g. "A batch started at 14:05 is still running: 64 of 300 images analysed"."""
        start = f"A batch started at {time.strftime('%H:%M', time.localtime(self.started_at))}"
        failed = f" ({self.errors} could not be analysed)" if self.errors else ""
        if self.state == DONE:
            return f"{start} finished: {self.results} results{failed}."
        if self.state == RUNNING:
            return f"{start} is still running: {self.done} of {self.total} images analysed{failed}."
        return f"{start} stopped after {self.done} of {self.total} images: {self.results} results{failed}."


def status_of(job: BatchJob, *, ended: bool = False) -> BatchStatus:
    """``job``'s status; ``ended``: no script run carries it on any more (its page was left or reloaded)."""
    with job.lock:
        state = STOPPED if ended and job.status == RUNNING else job.status
        return BatchStatus(job.started_at, job.total, job.done, len(job.results), len(job.errors), state)
