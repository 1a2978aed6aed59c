"""The Analyze page's malignancy score and triage block: a band, or "Indeterminate: retake or refer"."""

from __future__ import annotations

import streamlit as st

from .presentation import percent, plain, triage_style


def score_and_triage(score_column, triage_column, analysis) -> None:
    """The score metric in ``score_column`` and the triage in ``triage_column``; when the input gate failed, the
    score is marked unreliable and the gate's reasons replace the band (each shown as plain text)."""
    style = triage_style(analysis.triage)
    reliable = getattr(analysis, "score_reliable", True)
    score_column.metric("Malignancy score" if reliable else "Malignancy score (unreliable)",
                        percent(analysis.malignant_score),
                        help="Sum of the probabilities of the malignant or pre-malignant classes."
                        + ("" if reliable else " The input gate failed: do not rely on this number."))
    with triage_column:
        st.markdown("**Triage**")
        # A heading-sized badge: the band is the first thing a reader looks for (words and icon, not colour alone).
        # The title is one of presentation.TRIAGE_STYLES' own constants, never user text.
        st.markdown(f"### :{style.color}-badge[{style.icon} {style.title}]")
        st.caption(style.advice)
        gate = getattr(analysis, "gate", None)
        if gate is not None and not gate.ok:
            for reason in gate.reasons:
                st.caption(plain(reason))
