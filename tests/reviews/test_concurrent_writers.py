"""Four writer processes at once on one database (SQLite file, PostgreSQL), one killed with SIGKILL mid-burst.

Every write a writer saw acknowledged is there, nothing is duplicated, and the decision history of the cases all
writers decided on holds every acknowledged decision exactly once. No process lock: only the database's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import concurrent_writer as writer_script
from concurrent_writer import SHARED, case

from dermascan.reviews import ReviewStore

WRITERS, CASES, KILLED, KILL_AFTER = 4, 500, 0, 150
SCRIPT = Path(writer_script.__file__)
REPO = Path(__file__).resolve().parents[2]


def _acks(path: Path) -> list[str]:
    # A line cut by the kill was never acknowledged (the writer dies before its newline is written).
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [line for line in text.split("\n")[:-1] if line]


def test_concurrent_writers_lose_and_duplicate_nothing(new_db, tmp_path):
    url = str(new_db())
    ReviewStore(url).close()  # schema created once, so the writers race on data, not on migrations
    acks = [tmp_path / f"ack-{w}.txt" for w in range(WRITERS)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(SCRIPT.parent)])}
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), url, str(w), str(CASES), str(acks[w])], env=env,
                              stderr=subprocess.PIPE) for w in range(WRITERS)]
    try:
        while len(_acks(acks[KILLED])) < KILL_AFTER and procs[KILLED].poll() is None:
            time.sleep(0.02)
        os.kill(procs[KILLED].pid, signal.SIGKILL)
        for w, proc in enumerate(procs):
            _, err = proc.communicate(timeout=120)
            if w != KILLED:
                assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert procs[KILLED].returncode == -signal.SIGKILL

    with ReviewStore(url) as store:
        stored = list(store.iter_cases(store_query(), chunk=500))
        keys = Counter(c.image_sha256 for c in stored)
        assert all(count == 1 for count in keys.values())  # no duplicated case
        by_sha = {c.image_sha256: c for c in stored}
        shared_notes: Counter = Counter()
        for w in range(WRITERS):
            lines = _acks(acks[w])
            acked = [line.split(" ", 1)[1] for line in lines if line.startswith("case ")]
            if w != KILLED:
                assert len(acked) == CASES
            else:
                assert 0 < len(acked) < CASES  # really killed mid-burst
            for sha in acked:  # every acknowledged case is there, with its decision
                assert by_sha[sha].decision is not None and by_sha[sha].decision.reviewer == f"w{w}"
            shared_notes.update(line.split(" ", 2)[2] for line in lines if line.startswith("shared "))
        acked_cases = sum(1 for a in acks for line in _acks(a) if line.startswith("case "))
        # Nothing beyond the acknowledged, except the one case the kill may have cut after its commit.
        assert 0 <= len(stored) - SHARED - acked_cases <= 1
        history: Counter = Counter()
        for i in range(SHARED):
            shared = by_sha[case(-1, i).image_sha256]
            versions = store.decision_history(shared.case_id)
            history.update(d.note for d in versions)
            assert shared.decision.note == versions[-1].note  # the current one is the last saved
        assert all(count == 1 for count in history.values())  # no decision recorded twice
        assert set(shared_notes) <= set(history)  # every acknowledged decision is in the history
        assert len(history) - len(shared_notes) <= 1  # at most the one the kill cut before its acknowledgement


def store_query():
    from dermascan.reviews import CaseQuery
    return CaseQuery(sort="oldest")
