"""How the map was made and how far to trust it: the CAM method choice, faithfulness and stability in words."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dermascan.cam import METHOD_INFO, METHOD_NAMES
from dermascan.evaluation.faithfulness import WEAK_DROP
from dermascan.inference.analysis import Analysis
from dermascan.inference.views import TRANSFORMS
from dermascan.render.text import display_text

from .presentation import percent, plain

STABILITY_HELP = ("Runs the model on the image mirrored left-right, top-bottom and rotated 180° and says whether "
                  "the top class and malignancy score hold (about twice the analysis' time). Saved with the case "
                  "when it is on before the image is analysed.")
METHOD_HELP = "\n".join(f"- **{name}**: {info[2]}" for name, info in METHOD_INFO.items())
FAITHFULNESS_HELP = ("Blurs out the 20% of the image the map highlights most (filled in from the pixels around it) "
                     "and measures how much the probability of the explained class falls (several analyses' time). "
                     "Saved with the case when it is on before the image is analysed.")


def method_label(name: str) -> str:
    """A method's one-line description (``METHOD_INFO``), e.g. "Score-CAM: ... (slower)"."""
    return METHOD_INFO[name][2]


def method_title(name: str | None) -> str:
    """A method's short name for captions ("Grad-CAM", "Score-CAM"); "Heatmap" without one."""
    return METHOD_INFO[name][2].split(":", 1)[0] if name in METHOD_INFO else "Heatmap"


def explanation_inputs(card, *, method_key: str, faithfulness_key: str, stability_key: str) -> tuple[str, bool, bool]:
    """The CAM method (the card's by default) and whether to test faithfulness and stability (both opt-in: each
    costs about as much as the analysis itself, see ``benchmarks/explanations.py``)."""
    left, right = st.columns([1.4, 1], vertical_alignment="bottom")
    with left:
        method = method_input(card.cam_method, key=method_key)
    with right:
        faithful = faithfulness_toggle(key=faithfulness_key)
        stable = st.toggle("Test stability under flips and rotations", key=stability_key, help=STABILITY_HELP)
    return method, faithful, stable


def method_input(default: str, *, key: str, label: str = "Heatmap method") -> str:
    """A select box of every CAM method, one line of help each, starting at ``default`` (the card's)."""
    return st.selectbox(label, METHOD_NAMES, index=METHOD_NAMES.index(default), key=key, format_func=method_label,
                        help="How the heatmap is computed; the prediction is the same with every method.\n\n"
                        + METHOD_HELP)


def faithfulness_toggle(*, key: str) -> bool:
    """Whether to measure how much the prediction depends on the highlighted region."""
    return st.toggle("Test the heatmap's faithfulness", key=key, help=FAITHFULNESS_HELP)


def trust_notes(shown: Analysis, base: Analysis) -> None:
    """Beside the map: the faithfulness sentence of the map shown and the stability of the image's answer."""
    if shown.faithfulness_sentence:
        icon = ":material/verified:" if (shown.faithfulness or 0.0) >= WEAK_DROP else ":material/help:"
        st.markdown(f"{icon} **Faithfulness.** {plain(shown.faithfulness_sentence)}")
    if base.stability_sentence:
        icon = ":material/check_circle:" if base.stability == 1.0 else ":material/sync_problem:"
        st.markdown(f"{icon} **Stability.** {plain(base.stability_sentence)}")
        with st.expander("Each view's answer", icon=":material/flip:"):
            # A static table: the page's first dataframe stays the differential.
            st.table(pd.DataFrame([{
                "View": TRANSFORMS[v.view].description, "Top class": display_text(base.display_names[v.top_label]),
                "Malignancy score": percent(v.malignant_score)} for v in base.stability_views]).set_index("View"))
