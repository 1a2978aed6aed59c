"""Tables and charts of an analysis's differential diagnosis."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dermascan.inference.analysis import Analysis
from dermascan.render.text import display_text

MALIGNANT_GROUP, BENIGN_GROUP = "Malignant / pre-malignant", "Benign"
GROUP_COLOURS = ["#b4544c", "#3f8a8f"]  # muted red, muted teal: readable with the light theme


def differential_frame(analysis: Analysis, malignant_labels: list[str]) -> pd.DataFrame:
    """One row per class, most likely first: plain name, code, probability, group."""
    return pd.DataFrame(
        [
            {
                "Diagnosis": display_text(p["display_name"]),  # the card's text, shown in the table and on the axis
                "Code": display_text(p["label"]),
                "Probability": p["probability"],
                "Group": MALIGNANT_GROUP if p["label"] in malignant_labels else BENIGN_GROUP,
            }
            for p in analysis.predictions
        ]
    )


DIFFERENTIAL_ORDER = ("Diagnosis", "Probability", "Code")  # the group is shown by the chart's colours
DIFFERENTIAL_COLUMNS = {
    "Diagnosis": st.column_config.TextColumn("Diagnosis", width="medium"),
    "Probability": st.column_config.ProgressColumn("Probability", format="percent", min_value=0.0, max_value=1.0,
                                                   width="small"),
    "Code": st.column_config.TextColumn("Code", width="small", help="The model's class label"),
}


def differential_chart(frame: pd.DataFrame) -> alt.Chart:
    """Horizontal bars of the differential, coloured (and labelled) by malignant group."""
    return (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("Probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", title="Probability")),
            # Long plain-language names would squeeze the bars; the table beside shows them in full.
            y=alt.Y("Diagnosis:N", sort="-x", title=None, axis=alt.Axis(labelLimit=170)),
            color=alt.Color("Group:N", scale=alt.Scale(domain=[MALIGNANT_GROUP, BENIGN_GROUP], range=GROUP_COLOURS),
                            legend=alt.Legend(orient="top", direction="horizontal", title=None)),
            tooltip=["Diagnosis", "Code", alt.Tooltip("Probability:Q", format=".1%"), "Group"],
        )
        .properties(height=alt.Step(26))
    )
