"""Put each analysed image into the review log once, as soon as it is analysed."""

from __future__ import annotations

import streamlit as st

from dermascan.analysis import Analysis
from dermascan.errors import DermascanError
from dermascan.reviews import CaseRecord

from . import session
from .results import Options
from .store import StoreSlot

SOURCE = "single"  # one image analysed on the Analyze page (batch analysis writes "batch")


def ensure_case(store_slot: StoreSlot, analysis: Analysis, *, model_key: str, options: Options,
                case_fields: dict) -> int | None:
    """The review-log id of this image's case, adding it now if this session has not yet.

    ``case_fields`` (patient_id, lesion_id, body_site, fitzpatrick, age, sex) go into the
    database only. Returns None (after a warning) when the store is unusable; the next
    rerun tries again, so the AI result is saved as soon as the database is back.
    """
    case_ids = session.bucket(session.CASE_IDS)
    key = (analysis.sha256, model_key, options)
    if key in case_ids:
        return case_ids[key]
    if store_slot.store is None:
        st.warning(f"This result is not in the review log yet: {store_slot.error}", icon=":material/sync_problem:")
        return None
    try:
        record = CaseRecord.from_analysis(analysis, session_id=session.session_id(), source=SOURCE, **case_fields)
        case_ids[key] = store_slot.store.add_case(record)
    except DermascanError as exc:
        st.warning(f"This result is not in the review log yet: {exc} It will be retried.",
                   icon=":material/sync_problem:")
        return None
    except ValueError as exc:  # a case field the store refuses (the message names the field, not the value)
        st.warning(f"This result is not in the review log yet: {exc}.", icon=":material/sync_problem:")
        return None
    session.bucket(session.CASE_FIELDS)[case_ids[key]] = dict(case_fields)
    return case_ids[key]


def fields_changed_since_saved(case_id: int | None, case_fields: dict) -> bool:
    """True when the case details typed now differ from those saved with the case."""
    saved = session.bucket(session.CASE_FIELDS).get(case_id)
    return saved is not None and saved != case_fields
