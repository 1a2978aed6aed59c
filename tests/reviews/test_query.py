"""``CaseQuery``: its reference meaning (``matches``, ``sort_key``) and the store's query methods agree with it."""

from __future__ import annotations

import pytest

from dermascan.reviews import CaseQuery, CaseRecord, Decision, ReviewStore
from dermascan.reviews.csvio import to_csv_bytes
from dermascan.reviews.query import NO_BAND, matches, sort_key


def _case(i: int, **fields) -> CaseRecord:
    base = dict(image_sha256=f"{i:064x}", top_label="bcc" if i % 3 == 0 else "nv",
                created_at=f"2026-01-{1 + i % 28:02d}T10:00:00+00:00", triage=("low", "medium", "high", None)[i % 4],
                malignant_score=None if i % 4 == 3 else (i % 10) / 10, patient_id=None if i % 5 == 0 else f"P-{i % 7}",
                session_id="s1" if i % 2 else "s2", file_name=f"img_{i}.jpg")
    return CaseRecord(**{**base, **fields})


@pytest.fixture()
def store(new_db):
    with ReviewStore(new_db()) as store:
        for i in range(40):
            case_id = store.add_case(_case(i))
            if i % 6 == 0:
                store.save_decision(case_id, Decision(reviewer="Dr Lee", note="recheck in 3 months"))
        yield store


QUERIES = [
    CaseQuery(),
    CaseQuery(bands=("high",)),
    CaseQuery(bands=("low", NO_BAND), sort="risk"),
    CaseQuery(decided=False, sort="oldest"),
    CaseQuery(text="basal carc"),
    CaseQuery(text="dr lee 3 MONTHS", sort="patient"),
    CaseQuery(text="p-3", session_first="s1"),
    CaseQuery(session_id="s2", sort="risk"),
    CaseQuery(text="nothing-matches-this"),
]


@pytest.mark.parametrize("query", QUERIES, ids=[q.describe() + "_" + q.sort for q in QUERIES])
def test_store_pages_follow_the_reference_meaning(store, query):
    every = store.list_cases(with_thumbnails=False)
    expected = [c.case_id for c in sorted((c for c in every if matches(query, c)), key=lambda c: sort_key(query, c))]
    assert store.count_matching(query) == len(expected)
    pages = [c.case_id for offset in range(0, 45, 7) for c in store.page_cases(query, offset=offset, limit=7)]
    assert pages == expected
    assert [c.case_id for c in store.iter_cases(query, chunk=5)] == expected


def test_search_words_match_display_names_and_decision_text():
    case = _case(3, decision=Decision(reviewer_diagnosis="mel", note="Pigment network"))
    assert matches(CaseQuery(text="melanoma network"), case)
    assert matches(CaseQuery(text="basal"), case)  # top_label bcc, by its display name
    assert not matches(CaseQuery(text="basal nevus"), case)


@pytest.mark.parametrize("bad", [dict(sort="DROP TABLE cases"), dict(text="x " * 11), dict(text="x" * 10_001)])
def test_bad_queries_are_refused(bad):
    with pytest.raises(ValueError):
        CaseQuery(**bad)


def test_describe_is_a_file_name_slug():
    assert CaseQuery().describe() == "all"
    assert CaseQuery(bands=("high", NO_BAND), decided=False, text="x").describe() == "high-none_undecided_search"


def test_search_takes_like_wildcards_literally_and_lowers_unicode(new_db):
    with ReviewStore(new_db("w")) as store:
        for i, name in enumerate(["100%_sure.jpg", "1000 sure.jpg", "back\\slash.jpg", "MÜLLER-ÉTÉ.jpg"]):
            store.add_case(_case(i, file_name=name))
        for text in ("0%_", "%", "_", "\\s", "müller-été", "ÉTÉ"):
            query = CaseQuery(text=text)
            expected = sorted(c.case_id for c in store.list_cases() if matches(query, c))
            assert sorted(c.case_id for c in store.page_cases(query, limit=10)) == expected, text
            assert store.count_matching(query) == len(expected)
        assert store.count_matching(CaseQuery(text="%")) == 1 and store.count_matching(CaseQuery(text="müller")) == 1


def test_the_streamed_export_is_the_export(new_db):
    with ReviewStore(new_db("e")) as store:
        for i in range(23):
            store.add_case(_case(i, probabilities={"nv": 0.5, f"x{i % 3}": 0.5}))
        chunks = list(store.iter_export_csv(chunk=5))
        assert len(chunks) == 1 + 5  # the header, then 5 + 5 + 5 + 5 + 3 rows
        oldest_first = sorted(store.list_cases(with_thumbnails=False), key=lambda c: (c.created_at, c.case_id))
        assert b"".join(chunks) == to_csv_bytes(oldest_first)  # the whole-list export of the same records
        assert chunks[0].decode("utf-8-sig").strip().count("p_x") == 3
