"""CSV downloads of the Batch page: the results table and the flattened metrics.

The table CSV is the Review log export's format, written by the same writer (``dermascan.reviews.csvio``: its
columns, BOM, formula-safe cells), as the CLI's ``batch`` output is: one row per result from its case record, with
``dx`` from the labels file when one was given, then one row per file that could not be analysed. The metrics CSV
goes through ``csvsafe.safe_row`` too: option and class names come from users' files.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable
from pathlib import PurePosixPath

from dermascan.csvsafe import safe_row
from dermascan.reviews.csvio import failure_row, run_context, write_csv

METRICS_COLUMNS = ["metric", "class", "value"]
_SCALARS = ("n", "accuracy", "balanced_accuracy", "macro_auc", "melanoma_auc", "ece", "mel_sensitivity_high")


def safe_csv(columns: list[str], rows: Iterable[dict]) -> bytes:
    """UTF-8 CSV of ``rows`` with ``columns``, every text cell formula-safe (``csvsafe.safe_row``)."""
    out = io.StringIO()
    # CRLF, as RFC 4180: with "\n" alone a CR inside a cell was written unquoted, and spreadsheets start a new
    # row there, so "x\r=HYPERLINK(...)" in a file name became a row beginning with a live formula.
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(safe_row(row))
    return out.getvalue().encode("utf-8")


def table_csv(results: Iterable, errors: Iterable[dict], labels: list[str], card, *,
              labels_by_id: dict[str, str] | None = None) -> bytes:
    """The batch results (``BatchResult``s, in the order given) and failed files (``batch_row`` dicts with ``file``
    and ``error``) in the Review log export's format; ``dx`` from ``labels_by_id`` (by file stem) when given."""
    context = run_context(card, source="batch")
    records, failures = [], []
    for result in results:
        if result.case is None:
            failures.append(failure_row(result.name, "The result could not be recorded (a field is out of range).",
                                        **context))
            continue
        dx = (labels_by_id or {}).get(PurePosixPath(result.name).stem)
        records.append(dataclasses.replace(result.case, dx=dx) if dx else result.case)
    failures += [failure_row(e["file"], e["error"], **context) for e in errors]
    return write_csv(records, labels=labels, failures=failures)


def metrics_rows(report: dict) -> list[dict]:
    """One row per metric and class: overall scalars, per-class precision/recall/F1/support,
    malignant-vs-benign AUC and sensitivity/specificity per triage threshold, confusion counts."""
    rows = [{"metric": key, "class": "", "value": report.get(key)} for key in _SCALARS if key in report]
    for label, per in report.get("per_class", {}).items():
        rows.extend({"metric": name, "class": label, "value": per.get(name)}
                    for name in ("precision", "recall", "f1", "support"))
    malignant = report.get("malignant", {})
    rows.append({"metric": "malignant_auc", "class": "", "value": malignant.get("auc")})
    for band, row in malignant.get("at_thresholds", {}).items():
        for name in ("threshold", "sensitivity", "specificity"):
            rows.append({"metric": f"malignant_{name}_{band}", "class": "", "value": row.get(name)})
    confusion = report.get("confusion_matrix", {})
    for true, counts in zip(confusion.get("labels", []), confusion.get("matrix", [])):
        for predicted, count in zip(confusion["labels"], counts):
            rows.append({"metric": f"confusion_predicted_{predicted}", "class": true, "value": count})
    return [{**r, "value": "" if r["value"] is None else r["value"]} for r in rows]


def metrics_csv(report: dict) -> bytes:
    """UTF-8 CSV (metric, class, value) of an evaluation report."""
    return safe_csv(METRICS_COLUMNS, metrics_rows(report))
