"""The sidebar every page shares: which model is loaded, a link to its card, the models on offer."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dermascan.config import models_dir, resolve_model_path
from dermascan.errors import DermascanError
from dermascan.model.folder import in_folder, list_models

from . import session
from .model_cache import ModelSlot, current_model, model_file_name
from .presentation import plain

MODEL_PAGE = "pages/model_card.py"
DEFAULT = ""  # the selectbox option that stands for the administrator's default model


def _remember_choice() -> None:
    # Copy the widget value into a plain key: widget state is dropped on pages that skip the widget.
    st.session_state[session.MODEL_CHOICE] = st.session_state.get(session.MODEL_SELECT, DEFAULT)


def _remember_ml_mode() -> None:
    st.session_state[session.ML_MODE] = st.session_state.get(session.ML_MODE_TOGGLE) is True


def _ml_mode_toggle() -> None:
    # Off by default and kept in a plain key (like the model choice), so it survives pages that skip the sidebar.
    st.session_state[session.ML_MODE_TOGGLE] = st.session_state.get(session.ML_MODE) is True
    st.toggle("ML mode", key=session.ML_MODE_TOGGLE, on_change=_remember_ml_mode,
              help="For ML users: offers preprocessing options that differ from the model card on Analyze. Their "
              "results are marked off-card and left out of triage statistics.")


def _model_options() -> tuple[list[str], str]:
    """The selectbox's options (DEFAULT first, then file names in the models folder) and the default's label."""
    folder = models_dir()
    names = list_models(folder)
    try:
        default = resolve_model_path(None)
    except DermascanError:
        return [DEFAULT, *names], "none installed"
    # The default shows as itself when the folder offers it, so it is not listed twice.
    twin = in_folder(folder, default)
    return [DEFAULT, *(n for n in names if n != twin)], Path(default).name


def _model_picker(options: list[str], default_label: str) -> None:
    st.session_state[session.MODEL_SELECT] = session.model_choice()
    st.selectbox(
        "Model",
        options,
        key=session.MODEL_SELECT,
        on_change=_remember_choice,
        format_func=lambda name: f"{default_label} (default)" if name == DEFAULT else name,
        help="The models this server offers. An administrator adds one by putting a .keras or .h5 file (and its "
        "<name>.card.json) in the models folder. Loaded once and shared by all sessions.",
    )


def render_sidebar() -> ModelSlot:
    """Draw the shared sidebar and return this session's model slot."""
    options, default_label = _model_options()
    if session.model_choice() not in options:  # the file left the folder: back to the default
        st.session_state[session.MODEL_CHOICE] = DEFAULT
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
            st.error("No model loaded. Choose another model below, or ask the administrator.",
                     icon=":material/error:")
        st.page_link(MODEL_PAGE, label="Model card", icon=":material/description:")
        _model_picker(options, default_label)
        _ml_mode_toggle()
        st.caption("AI second opinion only. Not a diagnosis.")
    return slot
