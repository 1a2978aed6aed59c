"""The reviewer-decision form and saving it without ever losing what was typed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.render.text import display_text
from dermascan.reviews import MANAGEMENT_OPTIONS, Decision

from . import session
from .presentation import management_name, plain
from .review_store import StoreSlot

AGREE, OTHER = "agree", "other"


def decision_form(form_key: str, *, labels: Sequence[str], display_name: Callable[[str], str], ai_label: str,
                  existing: Decision | None) -> Decision | None:
    """Draw the decision form; return the submitted ``Decision`` (None until a valid submit).

    The model version and preprocessing the decision refers to live on its case (the store
    ties each decision to one case); ``decided_at`` is stamped when the Decision is built.
    """
    agreed = existing is None or existing.reviewer_agrees is not False
    labels = list(dict.fromkeys([*labels, ai_label]))  # an imported case may name a class the list lacks
    with st.form(form_key, border=True):
        st.markdown("**Your decision**")
        agree = st.radio(
            "Diagnosis",
            (AGREE, OTHER),
            index=0 if agreed else 1,
            format_func=lambda v: f"Agree with the AI: {plain(display_name(ai_label))}" if v == AGREE
            else "Another diagnosis (choose below)",
            key=f"{form_key}_agree",
        )
        chosen = existing.reviewer_diagnosis if existing and existing.reviewer_diagnosis in labels else ai_label
        diagnosis = st.selectbox("Other diagnosis", labels, index=labels.index(chosen),
                                 format_func=lambda label: display_text(display_name(label)),
                                 key=f"{form_key}_diagnosis", help="Used only when you do not agree with the AI.")
        management = st.radio(
            "Management",
            MANAGEMENT_OPTIONS,
            index=MANAGEMENT_OPTIONS.index(existing.management) if existing and existing.management else None,
            format_func=management_name,
            horizontal=True,
            key=f"{form_key}_management",
        )
        note = st.text_area("Note", value=existing.note if existing else "", key=f"{form_key}_note",
                            placeholder="Clinical reasoning, follow-up…")
        reviewer = st.text_input("Reviewer (optional)", value=(existing.reviewer or "") if existing else "",
                                 key=f"{form_key}_reviewer")
        submitted = st.form_submit_button("Save to review log", type="primary", icon=":material/save:")
    if not submitted:
        return None
    if management is None:
        st.error("Choose a management option before saving.")
        return None
    final = ai_label if agree == AGREE else diagnosis
    try:
        return Decision(
            reviewer_agrees=final == ai_label,  # picking the AI's own class under "another" is still agreement
            reviewer_diagnosis=final,
            management=management,
            note=note.strip(),
            reviewer=reviewer.strip() or None,
        )
    except ValueError as exc:  # e.g. a note over the store's length limit; the form keeps what was typed
        st.error(f"The decision was not saved: {plain(exc)}.")
        return None


def save_decision(store_slot: StoreSlot, case_id: int | None, decision: Decision, *, pending_key: str) -> bool:
    """Save ``decision``; on failure keep it in the session under ``pending_key`` for a retry and say why.

    ``pending_key`` names the form's subject independently of ``case_id``, which is None
    when the case itself could not be stored yet.
    """
    pending = session.bucket(session.PENDING_DECISIONS)
    if store_slot.store is None or case_id is None:
        pending[pending_key] = decision
        st.error(f"{plain(store_slot.error or 'This case is not in the review log yet.')} "
                 "Your decision is kept in this session; press **Retry saving** when the database is available.")
        return False
    try:
        store_slot.store.save_decision(case_id, decision)
    except DermascanError as exc:
        pending[pending_key] = decision
        st.error(f"{plain(exc)} Your decision is kept in this session; press **Retry saving** to try again.")
        return False
    pending.pop(pending_key, None)
    st.toast("Decision saved to the review log.", icon=":material/check_circle:")
    return True


def pending_decision(pending_key: str) -> Decision | None:
    """A decision typed under ``pending_key`` but not saved yet."""
    return session.bucket(session.PENDING_DECISIONS).get(pending_key)


def retry_button(store_slot: StoreSlot, case_id: int | None, *, pending_key: str) -> bool:
    """Offer to save again a decision that failed to save; True once it is saved."""
    decision = pending_decision(pending_key)
    if decision is None:
        return False
    st.warning("A decision for this case has not been saved yet.", icon=":material/sync_problem:")
    if st.button("Retry saving", key=f"retry_{pending_key}", icon=":material/refresh:") and save_decision(
        store_slot, case_id, decision, pending_key=pending_key
    ):
        st.success("Decision saved to the review log.", icon=":material/check_circle:")
        return True
    return False
