"""An image already in the review log: continue its case, or say how it was reviewed before.

Same image (sha256), same model version and the same options: the analysis is the one already stored,
so Analyze continues that case (its id, details and decision) instead of adding a duplicate. The same
image under another model version (or other options) is a new case, with a note of the earlier reviews.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.inference.options import PreprocessingOption
from dermascan.reviews import CaseRecord

from . import session
from .case_details import continue_case
from .presentation import management_name, plain
from .review_store import StoreSlot

MAX_EARLIER_SHOWN = 3


@dataclass(frozen=True)
class PriorReviews:
    """What the review log holds of one image: the case to continue (if any) and the image's other cases."""

    continued: CaseRecord | None
    earlier: tuple[CaseRecord, ...] = ()


def same_analysis(case: CaseRecord, model_version: str, options: PreprocessingOption, cam_method: str,
                  card_method: str) -> bool:
    """True when ``case`` is the image analysed by this model version with these (resolved) options and CAM
    method; another method is another case (``CaseSubject``), and a case stored without one used ``card_method``."""
    return (case.model_version == model_version and case.preprocessing == options.preprocessing
            and case.resize == options.resize and (case.cam_method or card_method) == cam_method)


def look_up(store_slot: StoreSlot, subject, model) -> PriorReviews:
    """The image's cases in the review log, newest first; registers the case to continue for ``subject``.

    A case continued this way counts as this session's case of ``subject`` (``CaseSubject.case_id``), with
    its stored details as what the page last saved, so the inputs show them and nothing is written twice.
    """
    if store_slot.store is None:
        return PriorReviews(None)
    options = subject.options.resolve(model.card)
    try:
        cases = store_slot.store.find_cases(subject.sha256)
    except DermascanError:  # an unreadable log: the page goes on, ensure_case reports the store's trouble
        return PriorReviews(None)
    case_ids = session.bucket(session.CASE_IDS)
    mine = case_ids.get(subject.store_key)
    if mine is None:
        card_method = model.card.cam_method
        method = subject.cam_method or card_method
        match = next((c for c in cases if same_analysis(c, model.version, options, method, card_method)), None)
        if match is not None:
            mine = continue_case(subject, match)
            session.bucket(session.PRIOR_CASES)[mine] = True
    continued = next((c for c in cases if c.case_id == mine), None)
    if continued is not None and not session.bucket(session.PRIOR_CASES).get(continued.case_id):
        continued = None  # this session's own new case: nothing to announce
    earlier = tuple(c for c in cases if c.case_id != mine)
    return PriorReviews(continued, earlier)


def decision_words(case: CaseRecord, display_name) -> str:
    """The case's current decision in words ("no decision yet" without one)."""
    decision = case.decision
    if decision is None:
        return "no decision yet"
    words = display_name(decision.reviewer_diagnosis) if decision.reviewer_diagnosis else "no diagnosis"
    if decision.reviewer_agrees:
        words += " (agreed with the AI)"
    if decision.management:
        words += f", {management_name(decision.management).lower()}"
    return words + (f", by {decision.reviewer}" if decision.reviewer else "")


def _day(case: CaseRecord) -> str:
    moment = case.decision.decided_at if case.decision is not None else case.created_at
    return (moment or "")[:10]


def show(prior: PriorReviews, display_name) -> None:
    """Say which earlier case this analysis continues, and how the image was reviewed with other models."""
    if prior.continued is not None:
        case = prior.continued
        st.info(f"This image is already in the review log: case {case.case_id}, analysed {plain(case.created_at[:10])} "
                f"with the same model version and options. Decision: {plain(decision_words(case, display_name))}. "
                "This page continues that case: your decision and case details below edit it.",
                icon=":material/history:")
    for case in prior.earlier[:MAX_EARLIER_SHOWN]:
        model = f"{case.model_name or 'a model'} v{case.model_version}"
        options = f" (options {case.preprocessing} / {case.resize})" if case.preprocessing else ""
        st.caption(f":material/history: Reviewed before with model {plain(model)}{plain(options)} on "
                   f"{plain(_day(case))} (case {case.case_id}): {plain(decision_words(case, display_name))}.")
    if len(prior.earlier) > MAX_EARLIER_SHOWN:
        st.caption(f"… and {len(prior.earlier) - MAX_EARLIER_SHOWN} earlier case(s) of this image in the review log.")
