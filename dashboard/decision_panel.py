"""Analyze's decision panel: the reviewer's decision on one case, saved with any unsaved case-detail edits.

It runs as an ``st.fragment``, so choosing options in the form never reruns the page; a save reruns the
whole page (``st.rerun(scope="app")``) because what the rest of it shows changes too (the case details'
saved state), and its confirmation is kept in the session to be shown by that rerun.
"""

from __future__ import annotations

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.inference.analysis import Analysis

from . import session
from .case_details import CaseSubject, save_typed_details, typed_in_widgets, unsaved_details
from .decision_form import decision_form, pending_decision, retry_button, save_decision
from .model_cache import ModelSlot
from .review_store import StoreSlot

SAVED = "Saved to the review log."
SAVED_WITH_DETAILS = "Decision and case details saved to the review log."


def stored_decision(store_slot: StoreSlot, case_id: int | None):
    """The decision already saved for the case, if any (None when the store is unreadable)."""
    if case_id is None or store_slot.store is None:
        return None
    try:
        return store_slot.store.get_decision(case_id)
    except DermascanError:
        return None


@st.fragment
def decision_panel(slot: ModelSlot, store_slot: StoreSlot, subject: CaseSubject, case_id: int | None,
                   base: Analysis, fields: dict) -> None:
    """The reviewer's decision on ``subject``'s case, saved to the review log (with unsaved case-detail edits)."""
    # A fragment rerun gets the arguments of the last full run; the inputs' state is what the browser sent now.
    typed = typed_in_widgets(subject.details_prefix)
    changes = unsaved_details(store_slot, case_id, fields if typed is None else typed)
    if changes:
        st.caption(":material/edit_note: Your changes to the case details will be saved with the decision.")
    pending_key = subject.pending_key
    retry_button(store_slot, case_id, pending_key=pending_key)
    card = slot.model.card
    decision = decision_form(
        f"{session.DECISION_PREFIX}_{subject.token}", labels=card.labels,
        display_name=card.display_name, ai_label=base.top_label,
        existing=pending_decision(pending_key) or stored_decision(store_slot, case_id),
    )
    if decision is not None and save_decision(store_slot, case_id, decision, pending_key=pending_key):
        # A clinician expects "Save" to keep everything on the page; a failure here shows its own retry.
        if changes and not save_typed_details(store_slot, case_id, changes):
            return
        st.session_state[session.ANALYZE_SAVED] = (subject.token, bool(changes))
        st.rerun(scope="app")
    confirmed = st.session_state.pop(session.ANALYZE_SAVED, None)
    if confirmed is not None and confirmed[0] == subject.token:
        st.success(SAVED_WITH_DETAILS if confirmed[1] else SAVED, icon=":material/check_circle:")
        st.page_link("pages/review_log.py", label="Open the review log", icon=":material/fact_check:")
