"""``python -m dermascan reviews``: stats, export, import, backup and migrate on real SQLite files."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys

import pytest
from shared_data import REPO

from dermascan.cli import main
from dermascan.reviews import SCHEMA_VERSION, CaseQuery, CaseRecord, Decision, ReviewStore
from dermascan.reviews.admin import display_url, export_bytes, export_file_name
from dermascan.reviews.query import matches

LABELS = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
# (patient, top label, score, band, decision note or None for undecided)
CASES = [
    ("P-1", "mel", 0.91, "high", "=HYPERLINK(\"x\") excise\nsoon"),
    ("P-2", "nv", 0.03, "low", None),
    ("P-3", "bcc", 0.64, "high", None),
    ("P-4", "bkl", 0.22, "medium", "seborrhoeic, monitor"),
    ("P-5", "nv", None, None, None),  # no score, no band (gated, or an older case)
]


def fill(store: ReviewStore) -> None:
    """The cases above, one day apart, two models."""
    for n, (patient, label, score, band, note) in enumerate(CASES):
        probabilities = dict.fromkeys(LABELS, 0.0) | {label: 1.0}
        decision = None if note is None else Decision(reviewer_agrees=n % 2 == 0, reviewer_diagnosis=label,
                                                      management="monitor", note=note, reviewer=f"dr.{n}",
                                                      decided_at=f"2025-02-0{n + 1}T09:00:00+00:00")
        store.add_case(CaseRecord(
            image_sha256=f"{n:02x}" * 32, top_label=label, top_probability=0.9, malignant_score=score, triage=band,
            probabilities=probabilities, model_name="tiny" if n < 3 else "other", model_version=f"v{n // 3}",
            file_name=f"lesion-{n}.jpg", session_id="s1", patient_id=patient,
            created_at=f"2025-01-0{n + 1}T10:00:00+00:00", decision=decision))


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.sqlite3"
    with ReviewStore(path) as store:
        fill(store)
    return path


def summary(store: ReviewStore) -> list[tuple]:
    """What an export and import must carry over: the case keys, details, results and current decisions."""
    return [(c.key, c.patient_id, c.file_name, c.triage, c.malignant_score, c.probabilities,
             None if c.decision is None else (c.decision.reviewer_agrees, c.decision.reviewer_diagnosis,
                                              c.decision.management, c.decision.note, c.decision.reviewer,
                                              c.decision.decided_at))
            for c in store.list_cases()]


def test_export_then_import_into_another_file_gives_the_same_cases_and_decisions(source, tmp_path, capsys):
    out, target = tmp_path / "log.csv", tmp_path / "target.sqlite3"
    assert main(["reviews", "--db", str(source), "export", "--csv", str(out)]) == 0
    assert "Wrote 5 case(s) (all)" in capsys.readouterr().err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with ReviewStore(source) as store:
        assert out.read_bytes() == store.export_csv()  # the page's and the store's format, byte for byte
        expected = summary(store)
    assert main(["reviews", "--db", f"sqlite:///{target}", "import", str(out)]) == 0
    assert "5 new case(s) imported" in capsys.readouterr().out
    with ReviewStore(target) as copy:
        assert summary(copy) == expected
        assert copy.export_csv() == out.read_bytes()
    assert main(["reviews", "--db", str(target), "import", str(out)]) == 0  # again: recognised, nothing added
    assert "0 new case(s) imported" in capsys.readouterr().out


def test_a_filtered_export_holds_exactly_the_matching_cases(source, tmp_path, capsys):
    out = tmp_path / "high.csv"
    assert main(["reviews", "--db", str(source), "export", "--csv", str(out), "--band", "high", "--undecided"]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert [r["patient_id"] for r in rows] == ["P-3"]
    assert main(["reviews", "--db", str(source), "export", "--csv", str(out), "--search", "monitor seborrhoeic"]) == 0
    assert [r["patient_id"] for r in csv.DictReader(io.StringIO(out.read_text("utf-8-sig")))] == ["P-4"]
    assert main(["reviews", "--db", str(source), "export", "--csv", str(out), "--band", "none"]) == 0
    assert [r["patient_id"] for r in csv.DictReader(io.StringIO(out.read_text("utf-8-sig")))] == ["P-5"]
    with ReviewStore(source) as store:  # the reference meaning of the filter, on the same cases
        query = CaseQuery(bands=("high", "medium"), decided=True)
        data = export_bytes(store, query)
        kept = [c.patient_id for c in store.list_cases() if matches(query, c)]
    assert sorted(r["patient_id"] for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))) == sorted(kept)
    assert kept and export_file_name(query).startswith("dermascan-review-log_high-medium_decided_")


def test_stats_and_migrate(source, capsys):
    assert main(["reviews", "--db", str(source), "stats"]) == 0
    out = capsys.readouterr().out
    assert "5 case(s): 2 decided, 3 undecided" in out
    assert "high 2, medium 1, low 1, indeterminate 0, none 1" in out
    assert "model tiny v0: 3" in out and "model other v1: 2" in out
    assert main(["reviews", "--db", str(source), "migrate"]) == 0
    assert capsys.readouterr().out.strip() == f"schema version {SCHEMA_VERSION}"


def test_backup_opens_as_a_store_with_the_same_cases_and_history(source, tmp_path, capsys):
    out = tmp_path / "backup.sqlite3"
    with ReviewStore(source) as store:  # the app keeps writing while it is backed up: the store stays open
        store.save_decision(1, Decision(reviewer_agrees=False, reviewer_diagnosis="mel", management="excise"))
        assert main(["reviews", "--db", str(source), "backup", str(out)]) == 0
        expected, history = summary(store), store.decision_history(1)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with ReviewStore(out) as copy:
        assert summary(copy) == expected
        assert copy.decision_history(1) == history and len(history) == 2
    before = out.read_bytes()
    assert main(["reviews", "--db", str(source), "backup", str(out)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before


def test_a_postgres_backup_names_pg_dump_without_the_password(tmp_path, capsys):
    url = "postgresql://clinic:s3cret-pw@db.example:5432/reviews?sslmode=verify-full"
    assert main(["reviews", "--db", url, "backup", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pg_dump" in err and "postgresql://clinic@db.example:5432/reviews" in err
    assert "s3cret" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert display_url("postgresql://db.example/reviews") == "postgresql://db.example/reviews"


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dermascan", "reviews", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("case", ["not a database", "a folder", "missing csv", "not our csv", "binary csv"])
def test_bad_input_gives_one_line_and_a_nonzero_exit(case, source, tmp_path):
    (tmp_path / "notes.txt").write_text("just some notes\n" * 50)
    (tmp_path / "other.csv").write_text("name,value\nx,1\n")
    (tmp_path / "blob.csv").write_bytes(bytes(range(256)) * 8)
    args = {
        "not a database": ("--db", str(tmp_path / "notes.txt"), "stats"),
        "a folder": ("--db", str(tmp_path), "stats"),
        "missing csv": ("--db", str(source), "import", str(tmp_path / "missing.csv")),
        "not our csv": ("--db", str(source), "import", str(tmp_path / "other.csv")),
        "binary csv": ("--db", str(source), "import", str(tmp_path / "blob.csv")),
    }[case]
    before = source.read_bytes()
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert source.read_bytes() == before  # nothing was imported
    assert (tmp_path / "notes.txt").read_text() == "just some notes\n" * 50  # a file that is not ours is untouched
