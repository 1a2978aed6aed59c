"""One writer process of ``test_concurrent_writers``: ``python concurrent_writer.py URL WRITER N ACK_FILE``.

Adds N cases, each with its decision in the same transaction, and every 10th case also saves a decision on one
of the cases all writers share. After each call returns, the write is acknowledged: one line appended to ACK_FILE
(``case <key>`` or ``shared <index> <note>``), flushed, so it survives this process being killed.
"""

from __future__ import annotations

import hashlib
import sys

from dermascan.reviews import CaseRecord, Decision, ReviewStore

SHARED = 10


def case(writer: int, i: int) -> CaseRecord:
    """The i-th case of a writer (shared cases: writer -1)."""
    return CaseRecord(image_sha256=hashlib.sha256(f"{writer}-{i}".encode()).hexdigest(), top_label="nv",
                      created_at=f"2026-01-01T00:00:00.{i:06d}+00:00", session_id=f"w{writer}", model_version="1",
                      probabilities={"nv": 0.8, "mel": 0.2}, malignant_score=0.2, triage="low")


def main() -> None:
    url, writer, n, ack_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with ReviewStore(url, busy_timeout=30) as store, open(ack_path, "a", encoding="utf-8") as ack:
        shared_ids = [store.add_case(case(-1, i)) for i in range(SHARED)]
        for i in range(n):
            record = case(writer, i)
            record.decision = Decision(management="monitor", reviewer=f"w{writer}", note=f"case {i}")
            store.add_case(record)
            ack.write(f"case {record.image_sha256}\n")
            ack.flush()
            if i % 10 == 0:
                note = f"w{writer} on shared {i}"
                store.save_decision(shared_ids[(i // 10) % SHARED], Decision(management="biopsy", reviewer=f"w{writer}",
                                                                     note=note))
                ack.write(f"shared {(i // 10) % SHARED} {note}\n")
                ack.flush()


if __name__ == "__main__":
    main()
