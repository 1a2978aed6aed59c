"""Benchmark (not a test): the Review log at clinic scale, on SQLite (and PostgreSQL with ``--pg URL``).

    PYTHONPATH=. .venv/bin/python benchmarks/review_log.py [--sizes 1000,10000,100000] [--full] [--pg URL]

For each size (1k, 10k, 100k cases; 300k with ``--full``) a fresh review database is filled through
``ReviewStore.merge_cases`` with synthetic cases (7 labels, a band for most, a decision for a third, patient and
lesion ids, notes). Then, in this one process:

- **rerun**: the Review log page in AppTest (``streamlit_app.py`` with the database as ``DERMASCAN_REVIEW_DB``):
  the first render, then the median of ``--reruns`` reruns (what every click on the page costs);
- **queries**: the store's share of a rerun, ``count_matching`` + ``page_cases`` of the page's default query;
- **RSS growth**: the peak resident memory (VmHWM, reset before the page's first render) above the RSS before it;
- **import rows/s**: ``import_csv`` of an export of the database (at most ``MAX_IMPORT_ROWS`` rows) into an empty one;
- **export rows/s**: ``reviews export`` (``admin.export_bytes``) of every case.

Ratios are against the 1k run of the same backend in the same process. Goals (issue 14): rerun at 300k <= 1.5x the
1k rerun, RSS growth <= 50 MB, import >= 5,000 rows/s. The model is the bundled one (loaded once, before the first
measurement, so its memory is not counted). Writes ``benchmarks/results/review_log.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dermascan.config import BUNDLED_MODEL, MODEL_ENV, REVIEW_DB_ENV  # noqa: E402
from dermascan.reviews import MAX_IMPORT_ROWS, CaseQuery, CaseRecord, Decision, ReviewStore  # noqa: E402
from dermascan.reviews.admin import export_bytes  # noqa: E402

LABELS = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
PAGE = "pages/review_log.py"
FIRST = datetime(2025, 1, 1, tzinfo=UTC)  # case i is analysed i seconds later
GOALS = {"rerun_ratio": 1.5, "rss_growth_mb": 50.0, "import_rows_per_s": 5000.0}


def cases(n: int, start: int = 0):
    """``n`` synthetic cases (deterministic): varied scores and bands, a decision with a note for every third."""
    for i in range(start, start + n):
        score = None if i % 23 == 22 else (i * 7919 % 1000) / 1000
        band = None if score is None else "high" if score >= 0.5 else "medium" if score >= 0.2 else "low"
        label = LABELS[i % 7]
        probabilities = dict.fromkeys(LABELS, 0.02) | {label: 0.88}
        decision = (Decision(reviewer_agrees=i % 2 == 0, reviewer_diagnosis=label, management="monitor",
                             note=f"follow-up {i % 97}", reviewer=f"dr.{i % 5}",
                             decided_at=f"2025-06-{1 + i % 28:02d}T09:00:00+00:00") if i % 3 == 0 else None)
        yield CaseRecord(
            image_sha256=f"{i:064x}", top_label=label, top_probability=0.88, malignant_score=score, triage=band,
            probabilities=probabilities, model_name="bench", model_version="bench-1", session_id=f"s{i % 50}",
            file_name=f"ISIC_{i:07d}.jpg", patient_id=f"P-{i // 3:06d}", lesion_id=f"L{i % 4}",
            created_at=(FIRST + timedelta(seconds=i)).isoformat(), decision=decision)


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status")


def fill(db: str, n: int) -> float:
    """Fill ``db`` with ``n`` cases through ``merge_cases`` (chunks of 10k); the seconds it took."""
    started = time.perf_counter()
    with ReviewStore(db) as store:
        for start in range(0, n, 10_000):
            store.merge_cases(cases(min(10_000, n - start), start))
    return time.perf_counter() - started


def page_times(db: str, reruns: int) -> dict:
    """First render and median rerun of the Review log page on ``db``, and the peak RSS growth meanwhile."""
    from streamlit.testing.v1 import AppTest

    os.environ[REVIEW_DB_ENV] = db
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=600)
    before = status_mb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    at.switch_page(PAGE).run()
    first = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"the page failed: {[e.value for e in at.exception]}")
    times = []
    for _ in range(reruns):
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
    return {"first_render_s": first, "rerun_s": statistics.median(times),
            "rss_growth_mb": status_mb("VmHWM") - before, "rows_shown": len(at.dataframe[0].value)}


def query_time(db: str, reruns: int) -> dict:
    """The store's share of a rerun: ``count_matching`` + ``page_cases`` for the page's default query, median."""
    query = CaseQuery(session_first="a-new-session")
    times = []
    with ReviewStore(db) as store:
        for _ in range(reruns):
            started = time.perf_counter()
            store.count_matching(query)
            store.page_cases(query, offset=0, limit=50)
            times.append(time.perf_counter() - started)
    return {"query_s": statistics.median(times)}


def import_export(db: str, folder: Path) -> dict:
    """Export rows/s of every case; import rows/s of that export (capped at ``MAX_IMPORT_ROWS``) into a new file."""
    with ReviewStore(db) as store:
        started = time.perf_counter()
        data = export_bytes(store, CaseQuery())
        export_s = time.perf_counter() - started
        exported = store.count_cases()
    lines = data.split(b"\r\n")
    kept = min(exported, MAX_IMPORT_ROWS)
    data = b"\r\n".join(lines[:kept + 1]) + b"\r\n"
    target = folder / f"import-{exported}.sqlite3"
    with ReviewStore(target) as fresh:
        started = time.perf_counter()
        result = fresh.import_csv(data)
        import_s = time.perf_counter() - started
    target.unlink()
    if result.added != kept:
        raise RuntimeError(f"import added {result.added} of {kept} rows: {result.errors[:3]}")
    return {"export_rows_per_s": exported / export_s, "import_rows_per_s": kept / import_s, "import_rows": kept}


def warm_up(folder: Path) -> None:
    """Load the model and TensorFlow once (the page's sidebar does), so the first size does not pay for them."""
    db = str(folder / "warm.sqlite3")
    fill(db, 10)
    page_times(db, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated case counts")
    parser.add_argument("--full", action="store_true", help="also 300,000 cases")
    parser.add_argument("--pg", help="a PostgreSQL URL: every size again on that (emptied) database")
    parser.add_argument("--reruns", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([300_000] if args.full else [])
    os.environ.setdefault(MODEL_ENV, str(BUNDLED_MODEL))
    results: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="review-log-bench-") as tmp:
        folder = Path(tmp)
        warm_up(folder)
        backends = [("sqlite", lambda n: str(folder / f"log-{n}.sqlite3"))]
        if args.pg:
            backends.append(("postgresql", lambda n: args.pg))
        for backend, db_for in backends:
            runs = results.setdefault(backend, [])
            for n in sizes:
                db = db_for(n)
                if backend == "postgresql":
                    _empty_postgres(db)
                fill_s = fill(db, n)
                run = {"cases": n, "merge_rows_per_s": n / fill_s, **page_times(db, args.reruns),
                       **query_time(db, args.reruns), **import_export(db, folder)}
                base = runs[0] if runs else run
                run["rerun_ratio"] = run["rerun_s"] / base["rerun_s"]
                runs.append(run)
                print(f"{backend:10} {n:>7,} cases: first render {run['first_render_s']:6.2f} s, "
                      f"rerun {run['rerun_s']:6.3f} s ({run['rerun_ratio']:.2f}x 1k; queries {run['query_s']:.3f} s), "
                      f"RSS +{run['rss_growth_mb']:.0f} MB, merge {run['merge_rows_per_s']:,.0f} rows/s, "
                      f"import {run['import_rows_per_s']:,.0f} rows/s, export {run['export_rows_per_s']:,.0f} rows/s",
                      flush=True)
    out = REPO / "benchmarks" / "results" / "review_log.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"goals": GOALS, "runs": results}, indent=2))
    for backend, runs in results.items():
        last = runs[-1]
        print(f"{backend}: at {last['cases']:,} cases rerun {last['rerun_ratio']:.2f}x 1k (goal <= "
              f"{GOALS['rerun_ratio']}), RSS growth {max(r['rss_growth_mb'] for r in runs):.0f} MB (goal <= "
              f"{GOALS['rss_growth_mb']:.0f}), import {min(r['import_rows_per_s'] for r in runs):,.0f} rows/s "
              f"(goal >= {GOALS['import_rows_per_s']:,.0f})")
    return 0


def _empty_postgres(url: str) -> None:
    """Drop every case of the benchmark's PostgreSQL database (it must be one made for this benchmark)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        tables = [name for name in ("decision_history", "case_details_history", "decisions", "cases")
                  if sqlalchemy.inspect(conn).has_table(name)]
        if tables:
            conn.execute(sqlalchemy.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
