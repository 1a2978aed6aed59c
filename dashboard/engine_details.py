"""Analyze's "Engine details" expander: how the engine produced this result, for ML users."""

from __future__ import annotations

import streamlit as st

from dermascan.inference.analysis import Analysis
from dermascan.inference.preprocessing import RESIZE_POLICIES, SCALINGS
from dermascan.inference.views import views_in_words
from dermascan.model.lesion import LesionModel

from .presentation import plain

ENGINE_DETAILS = "Engine details"


def engine_rows(model: LesionModel, analysis: Analysis) -> list[tuple[str, str]]:
    """(what, value) pairs, Markdown-safe: preprocessing, resize, CAM layer and method, loader, input size."""
    described = model.describe()
    scaling, resize = SCALINGS.get(analysis.preprocessing), RESIZE_POLICIES.get(analysis.resize)
    height, width = described["input_size"][:2]
    return [
        ("Pixel scaling", f"{plain(analysis.preprocessing)}" + (f": {plain(scaling.description)}" if scaling else "")),
        ("Resize", f"{plain(analysis.resize)}" + (f": {plain(resize.description)}" if resize else "")),
        ("The model card says", f"{plain(described['preprocessing'])} / {plain(described['resize'])}"),
        ("Test-time augmentation", views_in_words(analysis.tta)),
        ("Heatmap method", plain(described["cam_method"])),
        ("Heatmap layer", plain(analysis.cam_layer or "none (no layer a heatmap can explain)")),
        ("Model input", f"{height} x {width} px"),
        ("Rescales inside the model", "yes" if described["rescales_internally"] else "no"),
        ("Loader", plain(described["loader"])),
        ("Model", f"{plain(described['name'])}, version {plain(analysis.model_version)}"),
        ("Processing time", f"{analysis.processing_time_ms:.0f} ms"),
    ]


def engine_details(model: LesionModel, analysis: Analysis) -> None:
    """The collapsed "Engine details" expander for ``analysis``."""
    with st.expander(ENGINE_DETAILS, icon=":material/memory:"):
        st.markdown("\n".join(f"- **{what}:** {value}" for what, value in engine_rows(model, analysis)))
