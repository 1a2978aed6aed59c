"""The review log as tables: AI result and reviewer decision side by side, and one case's decision history."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from dermascan.render.text import display_text

from .presentation import management_name, triage_style

# Typed or imported text: shown without bidi controls or line breaks (the store keeps it as it was given).
_TEXT_COLUMNS = ("File", "AI diagnosis", "Triage", "Reviewer diagnosis", "Management", "Note", "Reviewer",
                 "Source")


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    for column in _TEXT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].map(lambda v: display_text(v) if isinstance(v, str) else v)
    return frame


def _when(value: str | None) -> pd.Timestamp | None:
    return pd.to_datetime(value, utc=True, errors="coerce") if value else None


def log_frame(cases: Sequence, *, session_id: str, display_name: Callable[[str], str]) -> pd.DataFrame:
    """One row per case, in the order given (this session's cases first)."""
    rows = []
    for case in cases:
        decision = case.decision
        rows.append({
            "Case": case.case_id,
            "This session": case.session_id == session_id,
            "File": case.file_name or "—",
            "Analysed": _when(case.created_at),
            "AI diagnosis": display_name(case.top_label) if case.top_label else "—",
            "AI probability": case.top_probability,
            "Malignancy score": case.malignant_score,
            "Triage": triage_style(case.triage).title,
            "Off-card": case.off_card is True,
            "Reviewer diagnosis": display_name(decision.reviewer_diagnosis) if decision and
            decision.reviewer_diagnosis else "",
            "Agrees": (decision.reviewer_agrees if decision else None),
            "Management": management_name(decision.management) if decision else "",
            "Reviewer": (decision.reviewer or "") if decision else "",
            "Decided": _when(decision.decided_at) if decision else None,
            "Source": case.source,
        })
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    for column in ("Analysed", "Decided"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return _shown(frame)


# AI result and reviewer decision first and side by side; bookkeeping columns last.
LOG_COLUMNS = {
    "Case": st.column_config.NumberColumn("Case", format="%d", width=60),
    "File": st.column_config.TextColumn("File", width=140),
    "AI diagnosis": st.column_config.TextColumn("AI diagnosis", width=190),
    "Malignancy score": st.column_config.ProgressColumn("Malignancy score", format="percent", min_value=0.0,
                                                        max_value=1.0, width=120),
    "Triage": st.column_config.TextColumn("Triage", width=70),
    "Off-card": st.column_config.CheckboxColumn("Off-card", width=70, help="Analysed with preprocessing options that "
                                                "differ from the model card (ML mode); left out of triage statistics"),
    "Reviewer diagnosis": st.column_config.TextColumn("Reviewer diagnosis", width=190),
    "Agrees": st.column_config.CheckboxColumn("Agrees", width=70, help="The reviewer agrees with the AI"),
    "Management": st.column_config.TextColumn("Management", width=150),
    "Reviewer": st.column_config.TextColumn("Reviewer", width="small"),
    "Decided": st.column_config.DatetimeColumn("Decided (UTC)", format="YYYY-MM-DD HH:mm", width="small"),
    "AI probability": st.column_config.ProgressColumn("AI probability", format="percent", min_value=0.0,
                                                      max_value=1.0, width="small"),
    "Analysed": st.column_config.DatetimeColumn("Analysed (UTC)", format="YYYY-MM-DD HH:mm", width="small"),
    "This session": st.column_config.CheckboxColumn("This session", width=90),
    "Source": st.column_config.TextColumn("Source", width=70),
}


def history_frame(history: Sequence, *, display_name: Callable[[str], str]) -> pd.DataFrame:
    """One row per saved version of a case's decision, in the order given (the store's: oldest first)."""
    rows = [{
        "Decided": _when(decision.decided_at),
        "Reviewer diagnosis": display_name(decision.reviewer_diagnosis) if decision.reviewer_diagnosis else "",
        "Agrees": decision.reviewer_agrees,
        "Management": management_name(decision.management),
        "Note": decision.note,
        "Reviewer": decision.reviewer or "",
    } for decision in history]
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["Decided"] = pd.to_datetime(frame["Decided"], utc=True)
    return _shown(frame)


HISTORY_COLUMNS = {
    "Decided": st.column_config.DatetimeColumn("Decided (UTC)", format="YYYY-MM-DD HH:mm", width="small"),
    "Reviewer diagnosis": st.column_config.TextColumn("Reviewer diagnosis", width=190),
    "Agrees": st.column_config.CheckboxColumn("Agrees", width=70, help="The reviewer agreed with the AI"),
    "Management": st.column_config.TextColumn("Management", width=150),
    "Note": st.column_config.TextColumn("Note", width="medium"),
    "Reviewer": st.column_config.TextColumn("Reviewer", width="small"),
}


# How the reviewer can order the log; the store's own order (this session first, newest first) is the default.
ORDERS = {"session": "This session first", "risk": "Highest malignancy score first", "oldest": "Oldest first"}


def sort_cases(cases: Sequence, order: str) -> list:
    """``cases`` in the ``order`` named by an ``ORDERS`` key; ties keep the store's order."""
    cases = list(cases)
    if order == "risk":  # a case without a score (an import with an empty cell) goes last
        return sorted(cases, key=lambda c: -c.malignant_score if c.malignant_score is not None else float("inf"))
    if order == "oldest":
        return sorted(cases, key=lambda c: (c.created_at or "", c.case_id or 0))
    if order != "session":
        raise ValueError(f"unknown order {order!r}")
    return cases
