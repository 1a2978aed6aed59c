"""The subgroup table of the Batch page and the Review log (numbers: ``dermascan.evaluation.subgroups``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from dermascan.errors import DermascanError
from dermascan.evaluation.subgroups import (
    EXCLUSION_REASONS,
    FIELDS,
    SubgroupCase,
    SubgroupReport,
    from_labelled,
    from_record,
    subgroup_table,
)
from dermascan.model.card import DEFAULT_MALIGNANT, DEFAULT_THRESHOLDS
from dermascan.render.text import display_text
from dermascan.reviews import CaseQuery

from . import session
from .model_cache import current_model
from .presentation import FITZPATRICK, plain

TITLE = "Subgroups: sensitivity and specificity by patient group"


def subgroup_frame(report: SubgroupReport, thresholds: Mapping[str, float]) -> pd.DataFrame:
    """The report as a table: group, counts, and the rates (empty where the group is too small)."""
    bands = sorted(thresholds, key=lambda band: thresholds[band])
    rows = []
    for row in report.rows:
        group = row["group"]
        if row["field"] == "fitzpatrick":
            group = f"Type {FITZPATRICK.get(group, group)}"
        rows.append({
            "Field": FIELDS.get(row["field"], "All"),
            "Group": display_text(str(group)),  # body site and sex come from users' files
            "Cases": row["n"], "Malignant": row["malignant"], "Benign": row["benign"],
            **{f"{kind.title()} at {band} (≥ {thresholds[band]:.0%})": row[f"{kind}_{band}"]
               for band in bands for kind in ("sensitivity", "specificity")},
        })
    return pd.DataFrame(rows)


def subgroup_view(cases: Iterable[SubgroupCase], *, malignant_labels, thresholds: Mapping[str, float],
                  key: str, truth: str) -> SubgroupReport:
    """Draw the subgroup table of ``cases`` with what was left out and why; ``truth`` says where truth came from."""
    report = subgroup_table(cases, malignant_labels=malignant_labels, thresholds=thresholds)
    frame = subgroup_frame(report, thresholds)
    rates = [c for c in frame.columns if " at " in c]
    st.caption(f"Malignant ({', '.join(plain(m) for m in malignant_labels)}) vs benign; a case counts as flagged "
               f"when its malignancy score reaches the band's threshold. Truth: {truth}. Groups with fewer than "
               f"{report.min_n} cases show counts only: their rates would be noise.")
    if report.excluded:
        st.caption("Left out: " + "; ".join(f"{n} case(s): {EXCLUSION_REASONS[reason]}"
                                             for reason, n in sorted(report.excluded.items())) + ".")
    if report.counted == 0:
        st.info("No case has both a known true label and a normal triage, so there is nothing to break down.",
                icon=":material/groups:")
        return report
    if len(frame) == 1:
        st.caption("No Fitzpatrick type, body site, age or sex is known for these cases: only the total is shown.")
    st.dataframe(frame, hide_index=True, width="stretch", key=key, placeholder="—",
                 column_config={c: st.column_config.NumberColumn(c, format="percent") for c in rates})
    return report


def _card_numbers(card) -> tuple[list[str], dict[str, float]]:
    if card is None:
        return list(DEFAULT_MALIGNANT), dict(DEFAULT_THRESHOLDS)
    return list(card.malignant_labels or DEFAULT_MALIGNANT), dict(card.thresholds or DEFAULT_THRESHOLDS)


def batch_subgroups(results, label_rows: Mapping[str, Mapping[str, str]], card) -> None:
    """The Batch page's subgroup view: truth and groups from the labels file's rows (by file stem)."""
    malignant, thresholds = _card_numbers(card)
    cases = []
    for r in results:
        row = label_rows.get(PurePosixPath(r.name).stem)
        case = r.case
        cases.append(from_labelled(r.malignant_score, r.triage, row, off_card=getattr(case, "off_card", None),
                                   gate=getattr(case, "gate", None)))
    subgroup_view(cases, malignant_labels=malignant, thresholds=thresholds, key=session.BATCH_SUBGROUPS,
                  truth="the labels file's dx; groups from its age, sex, localization / body_site and fitzpatrick "
                  "columns when present")


def review_log_subgroups(store) -> None:
    """The Review log's subgroup view in an expander: every stored case, truth from ``dx`` or the decision.

    Opt-in: it reads every stored case (streamed a chunk at a time), which a page rerun must not do.
    """
    with st.expander(TITLE, icon=":material/groups:"):
        if not st.toggle("Compute over every stored case", key=session.LOG_SUBGROUPS_ON,
                         help="Reads the whole review log; on a large log this takes a while."):
            return
        slot = current_model()
        malignant, thresholds = _card_numbers(getattr(slot, "model", None) and slot.model.card)
        try:
            groups = [from_record(r) for r in store.iter_cases(CaseQuery(), chunk=1000)]
        except DermascanError as exc:
            st.error(f"The review log could not be read: {plain(exc)}", icon=":material/error:")
            return
        subgroup_view(groups, malignant_labels=malignant, thresholds=thresholds,
                      key=session.LOG_SUBGROUPS,
                      truth="dx when known, else the reviewer's diagnosis (agreeing: the AI's class); thresholds "
                      "of the model loaded now")
