"""Subgroup view: sensitivity and specificity of the malignancy score, malignant vs benign, by patient group.

Groups are Fitzpatrick type, body site, age band and sex, each where the field is known. A case counts when its
true label is known (``dx`` from a labels file, else the reviewer's diagnosis) and it was triaged normally: cases
the input gate called indeterminate and off-card cases (fed with options other than the model card's) are left
out and counted, as the triage statistics leave them out. A group with fewer than ``MIN_N`` cases gets its
counts only: a rate over a handful of lesions reads as a finding when it is noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..inference.scoring import INDETERMINATE
from .metrics import AGE_BANDS, UNKNOWN_GROUP
from .metrics import age_band as metrics_age_band

MIN_N = 10
"""Fewest cases a group needs before its sensitivity and specificity are shown."""

FIELDS = {"fitzpatrick": "Fitzpatrick type", "body_site": "Body site", "age_band": "Age band", "sex": "Sex"}
"""The grouping fields, in display order, with their titles."""

ALL = ("all", "All cases")
OFF_CARD, NO_TRUTH, NO_SCORE = "off_card", "no_truth", "no_score"
EXCLUSION_REASONS = {
    INDETERMINATE: "the input gate called the image indeterminate",
    OFF_CARD: "analysed with options other than the model card's",
    NO_SCORE: "no finite malignancy score",
    NO_TRUTH: "no true label (no dx and no reviewer diagnosis)",
}
# Aliases of the grouping fields in a labels file (HAM10000's metadata names the body site "localization").
LABEL_COLUMNS = {
    "fitzpatrick": ("fitzpatrick", "fitzpatrick_type", "skin_type", "phototype"),
    "body_site": ("body_site", "localization", "location", "site", "anatom_site_general"),
    "age": ("age", "age_approx"),
    "sex": ("sex", "gender"),
}
_UNKNOWN = {"", "unknown", "n/a", "na", "none", "-", "?"}
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}


@dataclass(frozen=True)
class SubgroupCase:
    """One case as the subgroup view needs it; ``excluded`` says why it is left out (None: it counts)."""

    malignant_score: float | None
    truth: str | None
    fitzpatrick: int | None = None
    body_site: str | None = None
    age: int | None = None
    sex: str | None = None
    excluded: str | None = None


@dataclass
class SubgroupReport:
    """Rows (one per field and group, ``ALL`` first), how many cases counted, and the left-out ones by reason."""

    rows: list[dict[str, Any]]
    counted: int
    excluded: dict[str, int] = field(default_factory=dict)
    min_n: int = MIN_N


def age_band(age: int | None) -> str | None:
    """The age band of an age in years (``metrics.AGE_BANDS``, as the model's evaluation report uses; None: unknown)."""
    band = metrics_age_band(age)
    return None if band == UNKNOWN_GROUP else band


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    text = " ".join(str(value).split()).lower()
    return None if text in _UNKNOWN else text


def _whole(value: Any, low: int, high: int) -> int | None:
    text = _text(value)
    if text is None:
        return None
    if text in _ROMAN:
        return _ROMAN[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() and low <= number <= high else None


def _exclusion(score: Any, triage: str | None, off_card: bool | None, gate: str | None) -> str | None:
    if triage == INDETERMINATE or gate == INDETERMINATE:
        return INDETERMINATE
    if off_card:
        return OFF_CARD
    if score is None or not math.isfinite(float(score)):
        return NO_SCORE
    return None


def from_record(record: Any) -> SubgroupCase:
    """A stored case (``CaseRecord``): truth is ``dx``, else the reviewer's diagnosis (agreeing: the AI's label)."""
    truth = record.dx
    decision = record.decision
    if truth is None and decision is not None:
        truth = decision.reviewer_diagnosis or (record.top_label if decision.reviewer_agrees else None)
    truth = _text(truth)
    excluded = _exclusion(record.malignant_score, record.triage, record.off_card, record.gate)
    if excluded is None and truth is None:
        excluded = NO_TRUTH
    return SubgroupCase(record.malignant_score, truth, record.fitzpatrick, _text(record.body_site), record.age,
                        _text(record.sex), excluded)


def label_fields(row: Mapping[str, str] | None) -> dict[str, Any]:
    """The grouping fields of a labels-file row (any of ``LABEL_COLUMNS``' names), parsed; unknown -> None."""
    row = {str(k).strip().lower(): v for k, v in (row or {}).items()}

    def first(name: str) -> Any:
        return next((row[alias] for alias in LABEL_COLUMNS[name] if _text(row.get(alias)) is not None), None)

    return {"fitzpatrick": _whole(first("fitzpatrick"), 1, 6), "body_site": _text(first("body_site")),
            "age": _whole(first("age"), 0, 150), "sex": _text(first("sex"))}


def from_labelled(malignant_score: float | None, triage: str | None, row: Mapping[str, str] | None, *,
                  off_card: bool | None = None, gate: str | None = None) -> SubgroupCase:
    """A batch result with its labels-file row (``dx`` and any grouping columns)."""
    truth = _text((row or {}).get("dx"))
    excluded = _exclusion(malignant_score, triage, off_card, gate)
    if excluded is None and truth is None:
        excluded = NO_TRUTH
    return SubgroupCase(malignant_score, truth, excluded=excluded, **label_fields(row))


def _rates(cases: Sequence[SubgroupCase], malignant: set[str], thresholds: Mapping[str, float],
           min_n: int) -> dict[str, Any]:
    positive = [c.malignant_score for c in cases if c.truth in malignant]
    negative = [c.malignant_score for c in cases if c.truth not in malignant]
    row: dict[str, Any] = {"n": len(cases), "malignant": len(positive), "benign": len(negative)}
    for band, t in sorted(thresholds.items(), key=lambda kv: kv[1]):
        shown = len(cases) >= min_n
        row[f"sensitivity_{band}"] = sum(s >= t for s in positive) / len(positive) if shown and positive else None
        row[f"specificity_{band}"] = sum(s < t for s in negative) / len(negative) if shown and negative else None
    return row


def _group_order(name: str, group: Any) -> tuple:
    if name == "age_band":
        return (next(i for i, band in enumerate(AGE_BANDS) if band[2] == group),)
    return (group,)


def subgroup_table(cases: Iterable[SubgroupCase], *, malignant_labels: Iterable[str],
                   thresholds: Mapping[str, float], min_n: int = MIN_N) -> SubgroupReport:
    """Counts, and sensitivity / specificity at each triage threshold (score >= threshold flags), per group.

    Rates are None for a group under ``min_n`` cases, or without malignant (sensitivity) or benign (specificity)
    cases. Row keys: ``field``, ``group``, ``n``, ``malignant``, ``benign``, ``sensitivity_<band>``,
    ``specificity_<band>`` for each band of ``thresholds``.
    """
    malignant = {str(label).lower() for label in malignant_labels}
    counted: list[SubgroupCase] = []
    excluded: dict[str, int] = {}
    for case in cases:
        if case.excluded is None:
            counted.append(case)
        else:
            excluded[case.excluded] = excluded.get(case.excluded, 0) + 1
    rows = [{"field": ALL[0], "group": ALL[1], **_rates(counted, malignant, thresholds, min_n)}]
    for name in FIELDS:
        groups: dict[Any, list[SubgroupCase]] = {}
        for case in counted:
            value = age_band(case.age) if name == "age_band" else getattr(case, name)
            if value is not None:
                groups.setdefault(value, []).append(case)
        for group in sorted(groups, key=lambda g: _group_order(name, g)):
            rows.append({"field": name, "group": group, **_rates(groups[group], malignant, thresholds, min_n)})
    return SubgroupReport(rows, len(counted), excluded, min_n)
