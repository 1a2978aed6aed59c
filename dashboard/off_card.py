"""Options that differ from the model card: only in ML mode, and loud wherever their results show.

The model card's preprocessing is the model's validated behaviour. Another scaling or resize policy can
flip the answer (a melanoma read as benign keratosis, triage Low), so the clinician's path never offers
one: the options live behind the sidebar's "ML mode" toggle, a result made with them carries a banner and
``off_card=True`` in its case, and such cases are left out of triage statistics (``in_triage_statistics``).
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from dermascan.inference.options import PreprocessingOption
from dermascan.inference.preprocessing import RESIZE_POLICIES, SCALINGS

from . import session
from .presentation import plain

BANNER_TAIL = "this result is not the model's validated behaviour and is left out of triage statistics."


def ml_mode() -> bool:
    """Whether this session has turned ML mode on in the sidebar (off by default)."""
    return st.session_state.get(session.ML_MODE) is True


def is_off_card(options: PreprocessingOption, card) -> bool:
    """True when ``options`` feed the model otherwise than its card declares (scaling, resize or TTA)."""
    return options.resolve(card) != PreprocessingOption.for_card(card)


def options_input(card) -> PreprocessingOption:
    """The Analyze page's preprocessing: the card's, or in ML mode what the sidebar's selectors say.

    The selectors are drawn (where the caller is drawing) only in ML mode, so their state is dropped when it is
    turned off: the options come back to the card's then, and start from the card's when it is turned on again.
    """
    declared = PreprocessingOption.for_card(card)
    if not ml_mode():
        return declared
    with st.expander("ML mode: preprocessing", expanded=True, icon=":material/tune:"):
        scaling = st.selectbox("Pixel scaling", list(SCALINGS), index=list(SCALINGS).index(declared.preprocessing),
                               format_func=lambda k: f"{k}: {SCALINGS[k].description}", key=session.OPT_PREPROCESSING)
        resize = st.selectbox("Resize", list(RESIZE_POLICIES), index=list(RESIZE_POLICIES).index(declared.resize),
                              format_func=lambda k: f"{k}: {RESIZE_POLICIES[k].description}", key=session.OPT_RESIZE)
        st.caption(f"The model card says: {declared.preprocessing} / {declared.resize}. Anything else is off-card.")
    return PreprocessingOption(scaling, resize)


def describe(options: PreprocessingOption, card) -> str:
    """What differs from the card, e.g. ``pixel scaling unit (card: imagenet)``."""
    mine, declared = options.resolve(card), PreprocessingOption.for_card(card)
    parts = []
    if mine.preprocessing != declared.preprocessing:
        parts.append(f"pixel scaling {mine.preprocessing} (card: {declared.preprocessing})")
    if mine.resize != declared.resize:
        parts.append(f"resize {mine.resize} (card: {declared.resize})")
    if mine.tta != declared.tta:
        parts.append(f"test-time augmentation ×{len(mine.tta)} (card: ×{len(declared.tta)})" if mine.tta
                     else f"no test-time augmentation (card: ×{len(declared.tta)})")
    return ", ".join(parts)


def banner(options: PreprocessingOption, card) -> None:
    """The Analyze page's warning over a result made with off-card options (nothing when on the card)."""
    if is_off_card(options, card):
        st.error(f"Off-card options: {plain(describe(options, card))} — {BANNER_TAIL}", icon=":material/science:")


def in_triage_statistics(case) -> bool:
    """Whether a stored case counts in triage statistics (band counts, metrics): not when made off-card."""
    return case.off_card is not True


def triage_statistics_cases(cases: Iterable) -> list:
    """The cases of ``cases`` that triage statistics are computed over (see ``in_triage_statistics``)."""
    return [case for case in cases if in_triage_statistics(case)]
