"""Prior cases without Streamlit: the store's lookup by image and model version, the batch's reuse of cases,
and the sentence a returning user reads about a batch that outlived its page."""

from __future__ import annotations

import time

from dashboard.batch_job import DONE, RUNNING, STOPPED, BatchJob, BatchStatus, flush_cases, status_of
from dermascan.reviews import CaseRecord, ReviewStore

SHA_A, SHA_B = "a" * 64, "b" * 64


def case(sha: str, version: str = "1.0", created: str = "2025-01-01T00:00:00+00:00", preprocessing="imagenet"):
    return CaseRecord(image_sha256=sha, top_label="nv", model_version=version, created_at=created,
                      preprocessing=preprocessing, resize="squash", probabilities={"nv": 1.0})


def test_find_cases_is_by_image_and_optionally_model_version_newest_first(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite3")
    old = store.add_case(case(SHA_A, "1.0", "2025-01-01T00:00:00+00:00"))
    new = store.add_case(case(SHA_A, "2.0", "2025-02-01T00:00:00+00:00"))
    store.add_case(case(SHA_B))
    assert [c.case_id for c in store.find_cases(SHA_A)] == [new, old]
    assert [c.case_id for c in store.find_cases(SHA_A, "1.0")] == [old]
    assert store.find_cases(SHA_A, "3.0") == [] and store.find_cases("c" * 64) == []


def test_a_batch_rerun_reuses_the_cases_already_in_the_log(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite3")
    store.add_case(case(SHA_A))  # analysed before (Analyze, or an earlier batch)
    job = BatchJob.start(("sig",), total=4, labels=["nv"], with_cam=True)
    job.pending_cases = [case(SHA_A, created="2025-03-01T00:00:00+00:00"),  # the same analysis again
                         case(SHA_B, created="2025-03-01T00:00:01+00:00"),
                         case(SHA_B, created="2025-03-01T00:00:02+00:00"),  # the same file twice in one upload
                         case(SHA_A, created="2025-03-01T00:00:03+00:00", preprocessing="unit")]  # other options
    assert flush_cases(job, store) == 2
    assert (job.logged, job.reused, store.count_cases()) == (2, 2, 3)
    job.pending_cases = [case(SHA_B, created="2025-04-01T00:00:00+00:00")]
    assert flush_cases(job, store) == 0 and store.count_cases() == 3


def test_the_status_sentence_says_how_far_a_batch_got():
    start = time.mktime((2026, 5, 4, 14, 5, 0, 0, 0, -1))
    assert BatchStatus(start, 30, 30, 28, 2, DONE).sentence() == (
        "A batch started at 14:05 finished: 28 results (2 could not be analysed).")
    assert BatchStatus(start, 300, 64, 64, 0, RUNNING).sentence() == (
        "A batch started at 14:05 is still running: 64 of 300 images analysed.")
    job = BatchJob.start(("sig",), total=3, labels=["nv"], with_cam=True)
    assert status_of(job).state == RUNNING and status_of(job, ended=True).state == STOPPED
    assert "stopped after 0 of 3 images" in status_of(job, ended=True).sentence()
