"""``dermascan.reviews.filters.filter_cases``: the review log's filters, without Streamlit."""

from __future__ import annotations

import hashlib

from dermascan.reviews import CaseRecord, Decision
from dermascan.reviews.filters import filter_cases


def case(name: str, triage: str, top: str, decision: str | None = None) -> CaseRecord:
    return CaseRecord(image_sha256=hashlib.sha256(name.encode()).hexdigest(), top_label=top, file_name=name,
                      triage=triage, decision=Decision(reviewer_agrees=decision == top, reviewer_diagnosis=decision,
                                        management="monitor") if decision else None)


CASES = [case("a.jpg", "high", "mel"), case("b.jpg", "low", "nv", decision="nv"),
         case("c.png", "medium", "bkl", decision="mel")]


def names(cases) -> list[str]:
    return [c.file_name for c in cases]


def test_no_filter_keeps_everything_in_order():
    assert names(filter_cases(CASES)) == ["a.jpg", "b.jpg", "c.png"]


def test_bands_and_decided():
    assert names(filter_cases(CASES, bands=["high", "medium"])) == ["a.jpg", "c.png"]
    assert names(filter_cases(CASES, decided=True)) == ["b.jpg", "c.png"]
    assert names(filter_cases(CASES, decided=False)) == ["a.jpg"]


def test_text_matches_file_names_codes_and_plain_names_of_both_diagnoses():
    assert names(filter_cases(CASES, text="PNG")) == ["c.png"]
    assert names(filter_cases(CASES, text="melanoma")) == ["a.jpg", "c.png"]  # AI for a, reviewer for c
    assert names(filter_cases(CASES, text="nevus mole")) == ["b.jpg"]
    assert names(filter_cases(CASES, text="nevus zzz")) == []
    assert names(filter_cases(CASES, text="mel", display_name=lambda label: label.upper())) == ["a.jpg", "c.png"]
