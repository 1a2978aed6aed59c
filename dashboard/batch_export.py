"""CSV downloads of the Batch page: the results table and the flattened metrics.

The table CSV has exactly ``dermascan.inference.batch.batch_columns`` (the CLI's ``batch`` output, plus
the faithfulness and stability columns when the batch measured them),
rows from ``batch_row``; every cell goes through ``csvsafe.safe_row`` because file names
come from users and a name like ``=HYPERLINK(...)`` must stay text in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from dermascan.csvsafe import safe_row
from dermascan.inference.batch import batch_columns

METRICS_COLUMNS = ["metric", "class", "value"]
_SCALARS = ("n", "accuracy", "balanced_accuracy", "macro_auc", "melanoma_auc", "ece", "mel_sensitivity_high")


def _csv(columns: list[str], rows: Iterable[dict]) -> bytes:
    out = io.StringIO()
    # CRLF, as RFC 4180: with "\n" alone a CR inside a cell was written unquoted, and spreadsheets start a new
    # row there, so "x\r=HYPERLINK(...)" in a file name became a row beginning with a live formula.
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(safe_row(row))
    return out.getvalue().encode("utf-8")


def table_csv(rows: Iterable[dict], labels: list[str], checks: bool = False) -> bytes:
    """UTF-8 CSV of ``batch_row`` dicts with the CLI's columns (``checks``: and faithfulness, stability)."""
    return _csv(batch_columns(labels, checks), rows)


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
    return _csv(METRICS_COLUMNS, metrics_rows(report))
