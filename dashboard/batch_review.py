"""A reviewer's decision on one Batch result, saved to the review log on that result's own case.

The form is keyed by the case (a token of its image hash, time and model version), never by a table row,
so sorting or filtering the worklist can never send a decision to another image. Saving goes through
``ReviewStore.add_case`` (idempotent on the case's key: it returns the case already stored by the batch, or
stores it now when the batch's own write has not happened yet) and then ``save_decision`` on that id.
"""

from __future__ import annotations

import contextlib
import hashlib

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.reviews import Decision

from . import session
from .decision_form import decision_form, pending_decision, retry_button, save_decision
from .review_store import StoreSlot


def case_token(case) -> str:
    """A short, stable token of a case's key (image hash, created_at, model version) for widget keys."""
    return hashlib.sha256("\x1f".join(case.key).encode("utf-8")).hexdigest()[:16]


def form_key(case) -> str:
    """The widget key of the decision form of ``case``."""
    return f"{session.BATCH_DECISION_PREFIX}_{case_token(case)}"


def case_id_of(store_slot: StoreSlot, case) -> int | None:
    """The case's id in the review log, storing the case first if needed (None: the store is unavailable)."""
    if case.case_id is not None:
        return case.case_id
    if store_slot.store is None:
        return None
    try:
        return store_slot.store.add_case(case)  # sets case.case_id
    except DermascanError:
        return None


def save_batch_decision(store_slot: StoreSlot, result, decision: Decision) -> bool:
    """Save ``decision`` on ``result``'s case; on failure it is kept in the session for a retry (and says why)."""
    case = result.case
    saved = save_decision(store_slot, case_id_of(store_slot, case), decision, pending_key=form_key(case))
    if saved:
        case.decision = decision
    return saved


def current_decision(store_slot: StoreSlot, case) -> Decision | None:
    """The case's current decision: the stored one (another page may have changed it), else the one saved here."""
    if case.case_id is not None and store_slot.store is not None:
        with contextlib.suppress(DermascanError):
            stored = store_slot.store.get_decision(case.case_id)
            if stored is not None:
                case.decision = stored
    return case.decision


def decision_panel(store_slot: StoreSlot, result, labels, display_name) -> None:
    """The decision form of one batch result (agree / other diagnosis / management, note, reviewer)."""
    case = result.case
    if case is None:
        st.info("This result could not be recorded in the review log (a field is out of range), so it cannot take "
                "a decision.", icon=":material/info:")
        return
    key = form_key(case)
    if pending_decision(key) is not None:  # only then is the case stored ahead of the batch's own write
        retry_button(store_slot, case_id_of(store_slot, case), pending_key=key)
    decision = decision_form(key, labels=labels, display_name=display_name, ai_label=result.top_label,
                             existing=current_decision(store_slot, case))
    if decision is not None and save_batch_decision(store_slot, result, decision):
        st.rerun()  # the worklist above was drawn before the save: redraw it with the decision (the toast stays)
