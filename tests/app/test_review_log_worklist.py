"""The Review log as a worklist (issue 17): pages, search, order, the export's name, a selection across pages."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date
from pathlib import Path

from app_helpers import assert_no_exception, downloaded, new_app

from dermascan.reviews import CaseRecord, Decision, ReviewStore

LOG = "pages/review_log.py"
LABELS = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def worklist(n: int, *, notes: dict[int, str] | None = None) -> list[CaseRecord]:
    """``n`` cases of another session, case i analysed i minutes after the first; every 7th has no score/band."""
    notes = notes or {}
    records = []
    for i in range(n):
        score = None if i % 7 == 6 else round((i * 37 % 100) / 100, 2)
        band = None if score is None else "high" if score >= 0.5 else "medium" if score >= 0.2 else "low"
        label = LABELS[i % 7]
        decision = (Decision(reviewer_agrees=True, reviewer_diagnosis=label, management="monitor", note=notes[i],
                             reviewer="dr.k", decided_at="2025-02-01T09:00:00+00:00") if i in notes else None)
        records.append(CaseRecord(
            image_sha256=f"{i:064x}", top_label=label, top_probability=0.9, malignant_score=score, triage=band,
            probabilities=dict.fromkeys(LABELS, 0.0) | {label: 1.0}, model_version="test-1", session_id="elsewhere",
            file_name=f"img_{i:04d}.jpg", patient_id=f"P-{i:04d}", lesion_id=f"L{i % 3}",
            created_at=f"2025-01-01T{i // 60:02d}:{i % 60:02d}:00+00:00", decision=decision))
    return records


def open_log(n: int, **kwargs):
    """A Review log session over a fresh database of ``worklist(n)``."""
    ReviewStore().merge_cases(worklist(n, **kwargs))
    at = new_app()
    at.switch_page(LOG).run()
    assert_no_exception(at)
    return at


def table(at):
    return at.dataframe[0].value


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def select_row(at, row: int):
    at.session_state["log_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def panel_case(at) -> int | None:
    heads = [h.value for h in at.subheader if h.value.startswith("Case ")]
    return int(heads[0].split()[1]) if heads else None


def ticked(at) -> list[int]:
    rows = at.session_state["log_table"]["selection"]["rows"]
    return [int(table(at)["Case"].iloc[r]) for r in rows]


def test_pages_of_50_with_counts_and_a_page_past_the_end(app_env, monkeypatch):
    callers = []
    list_cases = ReviewStore.list_cases

    def recording(self, *args, **kwargs):
        callers.append(Path(sys._getframe(1).f_code.co_filename).name)
        return list_cases(self, *args, **kwargs)

    monkeypatch.setattr(ReviewStore, "list_cases", recording)
    at = open_log(120)
    assert len(table(at)) == 50 and "Cases 1–50 of 120" in captions(at)
    assert "120 case(s), this session's first" in captions(at)
    first_page = list(table(at)["Case"])
    at.number_input(key="log_page").set_value(3).run()
    assert_no_exception(at)
    assert len(table(at)) == 20 and "Cases 101–120 of 120" in captions(at)
    assert not set(table(at)["Case"]) & set(first_page)
    at.selectbox(key="log_page_size").set_value(100).run()  # page 3 of 100 does not exist: the last page
    assert "Cases 101–120 of 120" in captions(at) and len(table(at)) == 20
    at.pills(key="log_bands").set_value(["high"]).run()  # a new filter starts at page 1
    assert at.number_input(key="log_page").value == 1
    assert set(table(at)["Triage"]) == {"High"} and "matching the filters" in captions(at)
    at.pills(key="log_bands").set_value(["none"]).run()  # cases without a band
    assert len(table(at)) == 120 // 7 and set(table(at)["Malignancy score"].isna()) == {True}
    # The page reads through the store's queries; only their provisional bodies (store.py) may load every case.
    assert set(callers) <= {"store.py"}


def test_search_by_patient_id_and_by_note_and_sort_by_risk(app_env):
    at = open_log(30, notes={4: "Asymmetric network, excise", 9: "stable since 2019"})
    at.text_input(key="log_search").input("p-0017").run()
    assert list(table(at)["Patient"]) == ["P-0017"]
    at.text_input(key="log_search").input("excise asymmetric").run()  # words of a note, in any order
    assert list(table(at)["Patient"]) == ["P-0004"]
    at.text_input(key="log_search").input("L2 dr.k").run()  # lesion id and reviewer
    assert list(table(at)["Patient"]) == []  # cases 4 and 9 are lesions L1 and L0
    at.text_input(key="log_search").input("L0 dr.k").run()
    assert list(table(at)["Patient"]) == ["P-0009"]
    at.text_input(key="log_search").input("").run()

    at.selectbox(key="log_order").set_value("risk").run()
    scores = list(table(at)["Malignancy score"])
    scored = [s for s in scores if s == s]  # NaN: no score
    assert scored == sorted(scored, reverse=True) and len(scored) < len(scores)
    assert all(s != s for s in scores[len(scored):])  # the cases without a score come last
    top = max((r for r in worklist(30) if r.malignant_score is not None),
              key=lambda r: (r.malignant_score, r.created_at))  # ties: the newest first
    assert (table(at)["Patient"].iloc[0], table(at)["Lesion"].iloc[0]) == (top.patient_id, top.lesion_id)


def test_export_is_built_on_click_and_its_name_says_which_filter_it_holds(app_env, media):
    at = open_log(40, notes={0: "ok", 3: "ok"})
    at.pills(key="log_bands").set_value(["high"])
    at.segmented_control(key="log_status").set_value("Undecided").run()
    [button] = [b for b in at.get("download_button") if "CSV" in b.proto.label]
    export = media[button.proto.deferred_file_id]
    assert export.calls == 0  # drawing the page did not build the file
    assert export.filename == f"dermascan-review-log_high_undecided_{date.today():%Y-%m-%d}.csv"
    rows = list(csv.DictReader(io.StringIO(downloaded(media, button).decode("utf-8-sig"))))
    expected = [r for r in worklist(40, notes={0: "ok", 3: "ok"}) if r.triage == "high" and r.decision is None]
    assert [r["patient_id"] for r in rows] == [r.patient_id for r in expected]  # oldest first, only the filter
    assert f"{len(expected)} matching case(s)" in button.proto.label


def test_the_selection_survives_a_page_change_and_a_filter_change(app_env):
    at = open_log(70)
    select_row(at, 3)
    chosen = panel_case(at)
    assert chosen is not None and ticked(at) == [chosen]
    at.number_input(key="log_page").set_value(2).run()  # its row is not on this page
    assert_no_exception(at)
    assert chosen not in set(table(at)["Case"])
    assert panel_case(at) == chosen and ticked(at) == []  # no row of page 2 is ticked in its place
    assert any("on another page" in i.value for i in at.info)

    select_row(at, 0)  # a case of page 2
    other = panel_case(at)
    assert other != chosen and ticked(at) == [other]
    band = ReviewStore().get_case(other).triage or "none"
    hiding = next(b for b in ("high", "medium", "low", "none") if b != band)
    at.pills(key="log_bands").set_value([hiding]).run()  # a filter that leaves it out
    assert_no_exception(at)
    assert other not in set(table(at)["Case"]) and ticked(at) == []
    assert panel_case(at) == other and any("hidden by the current filter" in i.value for i in at.info)
    at.pills(key="log_bands").set_value([]).run()  # back to page 1, where the case is not: still the same case
    assert panel_case(at) == other and other not in set(table(at)["Case"]) and ticked(at) == []
    at.number_input(key="log_page").set_value(2).run()
    assert panel_case(at) == other and ticked(at) == [other]
