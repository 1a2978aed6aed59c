"""A batch that outlives its page: where its status is kept, and the note a returning user sees.

Leaving the Batch page or reloading it ends the script run that carries a batch (after the chunk in flight,
whose cases are still written); a reload also starts a new session, without the job. So each job's
``BatchStatus`` (counts and times only: no file names, no pixels) is kept per process under a random ref,
and the ref goes into the page's URL (``?batch=...``), which a reload keeps. The returning user is told
"a batch started at HH:MM is still running / finished: N results" instead of finding nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from . import session
from .batch_job import BatchJob, BatchStatus, status_of
from .presentation import plain

MAX_KEPT = 256  # statuses kept per process (a few hundred bytes each); the oldest go first


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: OrderedDict[str, BatchStatus] = OrderedDict()


@st.cache_resource(show_spinner=False)
def _registry() -> _Registry:
    return _Registry()


def publish(job: BatchJob, *, ended: bool = False) -> None:
    """Record ``job``'s status now (``ended``: no run carries it on any more)."""
    status = status_of(job, ended=ended)
    registry = _registry()
    with registry.lock:
        registry.statuses[job.ref] = status
        registry.statuses.move_to_end(job.ref)
        while len(registry.statuses) > MAX_KEPT:
            registry.statuses.popitem(last=False)


def lookup(ref: object) -> BatchStatus | None:
    """The status published under ``ref`` (a URL value: anything), if any."""
    if not isinstance(ref, str):
        return None
    registry = _registry()
    with registry.lock:
        return registry.statuses.get(ref)


def name_in_url(job: BatchJob) -> None:
    """Put the job's ref in the page's URL, so a reload can still report it."""
    st.query_params[session.BATCH_REF] = job.ref


def earlier_batch_note(job: BatchJob | None) -> None:
    """On the Batch page of a session without a batch (a reload): the batch the URL names, if it is known."""
    status = lookup(st.query_params.get(session.BATCH_REF)) if job is None else None
    if status is not None:
        st.info(f"{plain(status.sentence())} The page was reloaded, so its worklist is gone; its cases are in the "
                "review log (source: batch).", icon=":material/history:")


def returning_note(job: BatchJob) -> None:
    """Over the results of this session's batch once its files are no longer uploaded (the user left the page)."""
    status = status_of(job)
    rest = "" if job.finished else " Upload the files again to analyse the rest."
    st.info(f"{plain(status.sentence())} Its results are below and its cases in the review log.{rest}",
            icon=":material/history:")
