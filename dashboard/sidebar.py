"""The sidebar every page shares: which model is loaded, a link to its card, a path override."""

from __future__ import annotations

import streamlit as st

from . import session
from .model_cache import ModelSlot, current_model, model_file_name
from .presentation import plain

MODEL_PAGE = "pages/model_card.py"


def _remember_override() -> None:
    # Copy the widget value into a plain key: widget state is dropped on pages that skip the widget.
    st.session_state[session.MODEL_OVERRIDE] = st.session_state.get(session.MODEL_PATH_INPUT, "")


def render_sidebar() -> ModelSlot:
    """Draw the shared sidebar and return this session's model slot."""
    slot = current_model()
    with st.sidebar:
        st.markdown("### DermaScan Review")
        if slot.loaded:
            card = slot.model.card
            # Name and version come from the model file's card: escaped (a code span would not escape a backtick).
            st.markdown(f"**Model:** {plain(card.name or model_file_name(slot))}  \n"
                        f"**Version:** {plain(slot.model.version)}")
            if slot.model.warnings:
                st.caption(f":material/warning: {len(slot.model.warnings)} model warning(s); see the Model page.")
        else:
            st.error("No model loaded. Enter a model file below or set DERMASCAN_MODEL.", icon=":material/error:")
        st.page_link(MODEL_PAGE, label="Model card", icon=":material/description:")
        with st.expander("Model file (advanced)", expanded=not slot.loaded and bool(session.model_override())):
            if session.MODEL_PATH_INPUT not in st.session_state:
                st.session_state[session.MODEL_PATH_INPUT] = session.model_override()
            st.text_input(
                "Model file path",
                key=session.MODEL_PATH_INPUT,
                on_change=_remember_override,
                placeholder="default: $DERMASCAN_MODEL or the bundled model",
                help="A .keras or .h5 file readable by the server; a card JSON beside it (<name>.card.json) "
                "describes its classes. Loaded once and shared by all sessions. Leave empty for the default.",
            )
        st.caption("AI second opinion only. Not a diagnosis.")
    return slot
