"""The review log as tables: AI result and reviewer decision side by side, and one case's decision history.

Times are shown in the server's time zone, named in the column header: the browser's zone is not known to the
server, and an unlabelled time would be read as the reader's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dermascan.render.text import display_text

from .presentation import management_name, triage_style

# Typed or imported text: shown without bidi controls or line breaks (the store keeps it as it was given).
_TEXT_COLUMNS = ("Patient", "Lesion", "File", "AI diagnosis", "Triage", "Reviewer diagnosis", "Management", "Note",
                 "Reviewer", "Source")


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    for column in _TEXT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].map(lambda v: display_text(v) if isinstance(v, str) else v)
    return frame


_UTC_NAMES = {"UTC", "UCT", "Universal", "Zulu"}


def server_zone() -> str:
    """The server's IANA time zone (``$TZ``, else the ``/etc/localtime`` link), or ``"UTC"`` when it is unknown."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    try:
        target = str(Path("/etc/localtime").resolve())
        candidates.append(target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else "")
    except OSError:
        pass
    for name in filter(None, candidates):
        try:
            ZoneInfo(name)
        except (ValueError, OSError):  # not an IANA name (a POSIX TZ string, a path)
            continue
        return "UTC" if name.removeprefix("Etc/") in _UTC_NAMES else name
    return "UTC"


ZONE = server_zone()


def _when(value: str | None) -> str | None:
    return value or None  # parsed by ``_local``, a column at a time


def _local(column: pd.Series) -> pd.Series:
    # One parse per column with the format named: guessing it per cell cost more than the rest of the table.
    return pd.to_datetime(column, utc=True, format="ISO8601", errors="coerce").dt.tz_convert(ZONE)


def log_frame(cases: Sequence, *, session_id: str, display_name: Callable[[str], str]) -> pd.DataFrame:
    """One row per case, in the order given."""
    rows = []
    for case in cases:
        decision = case.decision
        rows.append({
            "Case": case.case_id,
            "Patient": case.patient_id or "",
            "Lesion": case.lesion_id or "",
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
        frame[column] = _local(frame[column])
    return _shown(frame)


_TIME_FORMAT = "YYYY-MM-DD HH:mm"

# Who and when first, then AI result and reviewer decision side by side; bookkeeping columns last.
LOG_COLUMNS = {
    "Case": st.column_config.NumberColumn("Case", format="%d", width=60),
    "Patient": st.column_config.TextColumn("Patient", width=100),
    "Lesion": st.column_config.TextColumn("Lesion", width=80),
    "Analysed": st.column_config.DatetimeColumn(f"Analysed ({ZONE})", format=_TIME_FORMAT, width=140,
                                                help=f"When the image was analysed, in the server's zone ({ZONE})"),
    "AI diagnosis": st.column_config.TextColumn("AI diagnosis", width=190),
    "Malignancy score": st.column_config.ProgressColumn("Malignancy score", format="percent", min_value=0.0,
                                                        max_value=1.0, width=120),
    "Triage": st.column_config.TextColumn("Triage", width=90),
    "Off-card": st.column_config.CheckboxColumn("Off-card", width=70, help="Analysed with preprocessing options that "
                                                "differ from the model card (ML mode); left out of triage statistics"),
    "Reviewer diagnosis": st.column_config.TextColumn("Reviewer diagnosis", width=190),
    "Agrees": st.column_config.CheckboxColumn("Agrees", width=70, help="The reviewer agrees with the AI"),
    "Management": st.column_config.TextColumn("Management", width=150),
    "Reviewer": st.column_config.TextColumn("Reviewer", width="small"),
    "Decided": st.column_config.DatetimeColumn(f"Decided ({ZONE})", format=_TIME_FORMAT, width=140),
    "File": st.column_config.TextColumn("File", width=140),
    "AI probability": st.column_config.ProgressColumn("AI probability", format="percent", min_value=0.0,
                                                      max_value=1.0, width="small"),
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
    frame["Decided"] = _local(frame["Decided"])
    return _shown(frame)


HISTORY_COLUMNS = {
    "Decided": st.column_config.DatetimeColumn(f"Decided ({ZONE})", format=_TIME_FORMAT, width=140),
    "Reviewer diagnosis": st.column_config.TextColumn("Reviewer diagnosis", width=190),
    "Agrees": st.column_config.CheckboxColumn("Agrees", width=70, help="The reviewer agreed with the AI"),
    "Management": st.column_config.TextColumn("Management", width=150),
    "Note": st.column_config.TextColumn("Note", width="medium"),
    "Reviewer": st.column_config.TextColumn("Reviewer", width="small"),
}
