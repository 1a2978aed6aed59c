"""The Batch page's run state machine, without Streamlit: a real tiny model over real images.

idle (no job) -> running -> done, or -> stopped -> running again; a script run that lost the job
(another run claimed it) cannot change it; a new upload stops the job it replaces.
"""

from __future__ import annotations

import pytest
from shared_data import HAM_LABELS
from tiny_models import load_tiny_lesion_model

from dashboard.batch_job import DONE, RUNNING, STOPPED, BatchJob, advance, record, start_control
from dermascan.inference.batch import BatchItem, file_sources

SIG, OTHER = ("files-a", "model", True), ("files-b", "model", True)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_tiny_lesion_model(tmp_path_factory.mktemp("batch_job_model"))


@pytest.fixture
def sources(ham_paths):
    return file_sources(ham_paths[:4])


def new_job(total: int, signature=SIG, **kwargs) -> BatchJob:
    return BatchJob.start(signature, total=total, labels=HAM_LABELS, with_cam=False, **kwargs)


def test_idle_then_running_then_done(model, sources):
    assert start_control(None, SIG, has_files=True) == (False, None)  # no job yet: Analyse starts one
    assert start_control(None, SIG, has_files=False)[0]  # nothing uploaded that could be analysed
    job = new_job(len(sources))
    assert job.status == RUNNING and not job.has_results and start_control(job, SIG, has_files=True)[0]
    chunks = []
    advance(job, model, sources, job.claim(), session_id="s", chunk_size=2, on_chunk=lambda j: chunks.append(j.done))
    assert job.status == DONE and job.finished and job.has_results and chunks == [2, 4]
    assert [r.name for r in job.results] == [name for name, _ in sources] and len(job.pending_cases) == 4
    assert start_control(job, SIG, has_files=True) == (True, "Already analysed with these settings.")
    assert not job.should_process(SIG)


def test_a_job_with_every_file_refused_is_done_at_once():
    job = new_job(0, errors=[{"file": "huge.jpg", "error": "too large"}])
    assert job.status == DONE and job.has_results and job.errors[0]["file"] == "huge.jpg"


def test_stop_while_running_keeps_the_results_and_resume_finishes(model, sources):
    job = new_job(len(sources))
    # The Stop button's callback runs while the first chunk is being drawn.
    advance(job, model, sources, job.claim(), session_id="s", chunk_size=2, on_chunk=lambda j: j.stop())
    assert job.status == STOPPED and job.done == 2 and len(job.results) == 2 and job.has_results
    assert not job.should_process(SIG)
    assert start_control(job, SIG, has_files=True) == (False, None)  # a stopped job can be started afresh
    job.resume()
    assert job.status == RUNNING and job.should_process(SIG)
    advance(job, model, sources, job.claim(), session_id="s", chunk_size=2)
    assert job.status == DONE and [r.index for r in job.results] == [0, 1, 2, 3]


def test_resume_after_the_last_file_leaves_the_job_done():
    job = new_job(1)
    assert record(job, BatchItem("a.jpg", error="bad"), job.claim(), "s") and job.status == DONE
    job.resume()
    job.stop()  # a late click on Stop
    assert job.status == DONE


def test_a_rerun_that_lost_the_job_cannot_change_it(model, sources):
    job = new_job(len(sources))
    old = job.claim()
    newer = []
    # A click: the next script run claims the job while the old run is between chunks.
    advance(job, model, sources, old, session_id="s", chunk_size=2, on_chunk=lambda j: newer.append(j.claim()))
    assert job.done == 2 and job.status == RUNNING  # the old run's next items were dropped
    assert not record(job, BatchItem("late.jpg", error="bad"), old, "s") and job.done == 2
    advance(job, model, sources, newer[0], session_id="s", chunk_size=2)  # the new run carries on
    assert job.status == DONE and [r.name for r in job.results] == [name for name, _ in sources]


def test_a_new_upload_stops_the_running_job_it_replaces(model, sources):
    job = new_job(len(sources))
    assert job.is_for(SIG) and not job.is_for(OTHER)
    assert not job.should_process(OTHER) and job.status == STOPPED  # the remaining files are not these
    assert start_control(job, OTHER, has_files=True) == (False, None)
    replacement = new_job(2, OTHER)
    advance(replacement, model, sources[:2], replacement.claim(), session_id="s", chunk_size=2)
    assert replacement.status == DONE and job.done == 0 and job.status == STOPPED
