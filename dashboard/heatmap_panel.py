"""Analyze's heatmap panel: class selector, opacity slider, the overlay beside the original, its legend.

It runs as an ``st.fragment``: moving the slider or choosing another class reruns this panel only, not
the page (no differential, chart or decision form redrawn), and the slider never reaches the model.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dermascan.errors import InvalidModelOutput
from dermascan.inference.analysis import Analysis
from dermascan.render.png import png_bytes
from dermascan.render.text import display_text

from . import analysis_cache as results
from . import session
from .case_details import CaseSubject
from .explanation_panel import method_title
from .model_cache import ModelSlot
from .overlay_viewer import overlay_viewer
from .presentation import DISPLAY_WIDTH, percent, plain

NEGLIGIBLE = 0.01  # below this probability a class's map explains something the model does not believe
LEGEND = "Heatmap colours: blue, little relevance to the class shown; red, the most relevance."
ENLARGE_LABEL = "Enlarge"


def class_probability(analysis: Analysis) -> float:
    """The probability the model gives the class ``analysis`` explains."""
    return float(analysis.probabilities[analysis.labels.index(analysis.explained_label)])


def overlay_caption(analysis: Analysis, display_name) -> str:
    """The overlay's caption (Markdown-safe): the method, the class explained and its probability."""
    return (f"{method_title(analysis.cam_method)}: {plain(display_name(analysis.explained_label))} "
            f"({percent(class_probability(analysis))} probability)")


def negligible_note(analysis: Analysis, display_name) -> str | None:
    """A warning (Markdown-safe) when the explained class is negligible, else None."""
    probability = class_probability(analysis)
    if probability >= NEGLIGIBLE:
        return None
    return (f"The model gives {plain(display_name(analysis.explained_label))} only {percent(probability)} "
            "(negligible): this map shows where the model would look for that class, not evidence of it.")


@st.fragment
def heatmap_panel(slot: ModelSlot, data: bytes, subject: CaseSubject, name: str, base: Analysis) -> None:
    """Original and Grad-CAM overlay with class, opacity and enlarge controls, the legend and the explanation."""
    model = slot.model
    labels = model.labels
    display_name = model.card.display_name
    pick, size = st.columns([3, 1], vertical_alignment="bottom")
    chosen = pick.selectbox("Heatmap for class", labels, index=labels.index(base.top_label),
                            format_func=lambda label: display_text(display_name(label)),
                            key=f"{session.CAM_CLASS_PREFIX}_{subject.token}",
                            help="See where the model looks for another class.")
    stacked = size.toggle(ENLARGE_LABEL, key=session.OVERLAY_ENLARGE,
                          help="Show the image and its heatmap one above the other, at full width. Each image "
                               "also has a full-screen button in its corner.")
    try:
        analysis = results.analyze(slot, data, sha256=subject.sha256, name=name, options=subject.options,
                                   class_label=chosen, cam_method=subject.cam_method)
    except InvalidModelOutput as exc:  # this class's map is broken; the top-class result still stands
        st.error(plain(exc), icon=":material/error:")
        analysis = base
    if analysis.heatmap is None:
        st.image(analysis.display_image(DISPLAY_WIDTH), width="stretch",
                 caption="Original (this model has no layer a heatmap can explain)")
    else:
        alpha = overlay_viewer(analysis.display_image(DISPLAY_WIDTH),
                               lambda a: analysis.overlay(a, max_width=DISPLAY_WIDTH), key=session.OVERLAY_ALPHA,
                               caption=overlay_caption(analysis, display_name), stacked=stacked, legend=LEGEND)
        note = negligible_note(analysis, display_name)
        if note is not None:
            st.warning(note, icon=":material/info:")
        # Deferred: the PNG is encoded only when the button is clicked, not on every slider move.
        st.download_button("Download overlay (PNG)", lambda: png_bytes(analysis.overlay(alpha)),
                           icon=":material/download:", mime="image/png", on_click="ignore",
                           file_name=f"{display_text(Path(name).stem)}_gradcam_{analysis.explained_label}.png")
    st.markdown(f"**Explanation.** {plain(analysis.explanation)}")
