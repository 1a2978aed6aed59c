"""The subgroup view's numbers on a hand-made set, where every count and rate is worked out by hand."""

from __future__ import annotations

import pytest

from dermascan.evaluation.subgroups import (
    INDETERMINATE,
    NO_TRUTH,
    OFF_CARD,
    SubgroupCase,
    age_band,
    from_labelled,
    from_record,
    label_fields,
    subgroup_table,
)
from dermascan.reviews import CaseRecord, Decision

THRESHOLDS = {"medium": 0.2, "high": 0.5}
MALIGNANT = ["mel", "bcc", "akiec"]


def hand_made() -> list[SubgroupCase]:
    """Fitzpatrick II: 12 cases (4 malignant, 8 benign); Fitzpatrick V: 3 cases; 3 left out."""
    cases = [
        # Type II malignant: scores 0.9, 0.6, 0.3, 0.1 -> at 0.5: 2 of 4 flagged; at 0.2: 3 of 4.
        *(SubgroupCase(s, "mel", fitzpatrick=2, sex="female", age=50) for s in (0.9, 0.6, 0.3, 0.1)),
        # Type II benign: 8 cases, scores below 0.2 for 5, 0.2-0.5 for 2, above 0.5 for 1.
        *(SubgroupCase(s, "nv", fitzpatrick=2, sex="male", age=35) for s in (0.0, 0.05, 0.1, 0.15, 0.19)),
        *(SubgroupCase(s, "bkl", fitzpatrick=2, sex="male", age=80) for s in (0.2, 0.4, 0.7)),
        # Type V: 1 malignant (0.8), 2 benign (0.1, 0.3).
        SubgroupCase(0.8, "bcc", fitzpatrick=5, body_site="back"),
        SubgroupCase(0.1, "nv", fitzpatrick=5, body_site="back"),
        SubgroupCase(0.3, "nv", fitzpatrick=5),
        # Left out, each for its own reason.
        SubgroupCase(0.9, "mel", fitzpatrick=2, excluded=INDETERMINATE),
        SubgroupCase(0.9, "mel", fitzpatrick=2, excluded=OFF_CARD),
        SubgroupCase(0.9, None, fitzpatrick=5, excluded=NO_TRUTH),
    ]
    return cases


def test_rates_per_group_are_exact_and_small_groups_show_counts_only():
    report = subgroup_table(hand_made(), malignant_labels=MALIGNANT, thresholds=THRESHOLDS)
    rows = {(r["field"], r["group"]): r for r in report.rows}
    assert report.counted == 15 and report.excluded == {INDETERMINATE: 1, OFF_CARD: 1, NO_TRUTH: 1}

    everyone = rows[("all", "All cases")]
    assert (everyone["n"], everyone["malignant"], everyone["benign"]) == (15, 5, 10)
    assert everyone["sensitivity_high"] == pytest.approx(3 / 5)  # 0.9, 0.6, 0.8
    assert everyone["sensitivity_medium"] == pytest.approx(4 / 5)  # + 0.3
    assert everyone["specificity_high"] == pytest.approx(9 / 10)  # only 0.7 flagged
    assert everyone["specificity_medium"] == pytest.approx(6 / 10)  # 0.2, 0.4, 0.7, 0.3 flagged

    two = rows[("fitzpatrick", 2)]
    assert (two["n"], two["malignant"], two["benign"]) == (12, 4, 8)
    assert two["sensitivity_high"] == pytest.approx(2 / 4) and two["sensitivity_medium"] == pytest.approx(3 / 4)
    assert two["specificity_high"] == pytest.approx(7 / 8) and two["specificity_medium"] == pytest.approx(5 / 8)

    five = rows[("fitzpatrick", 5)]
    assert (five["n"], five["malignant"], five["benign"]) == (3, 1, 2)
    assert all(five[k] is None for k in ("sensitivity_high", "specificity_high", "sensitivity_medium",
                                         "specificity_medium"))  # n < 10: counts only

    assert rows[("body_site", "back")]["n"] == 2 and ("body_site", None) not in rows  # unknown: not a group
    assert [r["group"] for r in report.rows if r["field"] == "age_band"] == ["30-49", "50-69", ">=70"]
    assert rows[("sex", "male")]["n"] == 8 and rows[("sex", "male")]["sensitivity_high"] is None  # no malignant
    assert rows[("sex", "female")]["n"] == 4


def test_truth_and_exclusions_from_stored_cases_and_labels_rows():
    sha = "ab" * 32
    dx = CaseRecord(image_sha256=sha, top_label="nv", malignant_score=0.7, triage="high", dx="mel", fitzpatrick=3)
    agrees = CaseRecord(image_sha256=sha, top_label="bcc", malignant_score=0.7, triage="high",
                        decision=Decision(reviewer_agrees=True, management="excise"))
    other = CaseRecord(image_sha256=sha, top_label="mel", malignant_score=0.7, triage="high",
                       decision=Decision(reviewer_agrees=False, reviewer_diagnosis="nv", management="reassure"))
    undecided = CaseRecord(image_sha256=sha, top_label="mel", malignant_score=0.7, triage="high")
    gated = CaseRecord(image_sha256=sha, top_label="mel", malignant_score=0.7, triage="indeterminate", dx="mel")
    ml_mode = CaseRecord(image_sha256=sha, top_label="mel", malignant_score=0.7, triage="high", dx="mel",
                         off_card=True)
    assert [from_record(r).truth for r in (dx, agrees, other)] == ["mel", "bcc", "nv"]
    assert from_record(dx).fitzpatrick == 3
    assert [from_record(r).excluded for r in (undecided, gated, ml_mode)] == [NO_TRUTH, INDETERMINATE, OFF_CARD]

    fields = label_fields({"image_id": "x", "dx": "mel", "Localization": "lower extremity", "age": "45.0",
                           "sex": "unknown", "fitzpatrick": "IV"})
    assert fields == {"fitzpatrick": 4, "body_site": "lower extremity", "age": 45, "sex": None}
    assert label_fields({"age": "=1+1", "fitzpatrick": "9"}) == {"fitzpatrick": None, "body_site": None, "age": None,
                                                               "sex": None}
    assert from_labelled(0.4, "medium", {"dx": "MEL"}).truth == "mel"
    assert from_labelled(float("nan"), "medium", {"dx": "mel"}).excluded == "no_score"
    assert [age_band(a) for a in (None, 0, 29, 30, 75, 150)] == [None, "<30", "<30", "30-49", ">=70", ">=70"]
