"""Model: the loaded model's card, written for people, plus what the engine detected."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.card_tables import metric_tables, subgroup_tables
from dashboard.model_cache import HOW_TO_FIX, current_model, model_file_name
from dashboard.presentation import percent, plain
from dermascan.inference.preprocessing import RESIZE_POLICIES, SCALINGS
from dermascan.inference.views import views_in_words
from dermascan.render.text import display_text


def text_or_dash(value) -> str:
    """A value for display (one line, no invisible characters), or an em dash when the card leaves it empty."""
    return display_text(value) if value not in (None, "", [], {}) else "—"


def key_values(data: dict) -> pd.DataFrame:
    """A two-column table of a flat-ish dict (nested values shown as text)."""
    return pd.DataFrame([{"Field": display_text(k), "Value": text_or_dash(v)} for k, v in data.items()])


def classes_table(card) -> None:
    """The classes in output order with plain-language names and malignant flags."""
    frame = pd.DataFrame(
        [{"Code": display_text(label), "Diagnosis": display_text(card.display_name(label)),
          "Malignant": label in card.malignant_labels}
         for label in card.labels]
    )
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "Code": st.column_config.TextColumn("Code", width="small"),
        "Diagnosis": st.column_config.TextColumn("Diagnosis", width="large"),
        "Malignant": st.column_config.CheckboxColumn("Counts in malignancy score"),
    })


def metrics_tables(metrics: dict) -> None:
    """The card's evaluation metrics, one small table per group."""
    for title, table in metric_tables(metrics):
        st.markdown(f"*{plain(title)}*")
        st.dataframe(table, hide_index=table.index.dtype.kind == "i", width="stretch")


def subgroups_section(metrics: dict) -> None:
    """Test results by sex, age band and body site, when the card's evaluation has them."""
    tables = subgroup_tables(metrics)
    if not tables:
        return
    st.markdown("#### Subgroups (test split)")
    st.caption("Where the model is weaker. Small groups give noisy numbers: read them with their image counts. "
               "n/a: fewer than 2 classes (balanced accuracy) or no malignant image (sensitivity).")
    for title, table in tables:
        st.markdown(f"*{plain(title)}*")
        st.dataframe(table, hide_index=True, width="stretch")


def detected(model) -> None:
    """What the engine found by inspecting the model file itself."""
    info = model.describe()
    st.dataframe(
        pd.DataFrame([
            {"Field": "Loader", "Value": info["loader"]},
            {"Field": "Input size (h × w)", "Value": " × ".join(map(str, info["input_size"]))},
            {"Field": "Outputs", "Value": f"{info['n_outputs']} ({text_or_dash(info['output_kind'])})"},
            {"Field": "Grad-CAM layer", "Value": text_or_dash(info["cam_layer"])},
            {"Field": "Rescales pixels inside", "Value": display_text(", ".join(info["rescaling_layers"]) or "no")},
            {"Field": "Card file", "Value": text_or_dash(info["card_file"])},
            {"Field": "Out-of-distribution check reads",
             "Value": display_text(", ".join(info["ood_layers"]) or "off (no gate statistics)")},
        ]),
        hide_index=True, width="stretch",
    )
    for warning in info["warnings"]:
        st.warning(plain(warning), icon=":material/warning:")


st.title("Model")
slot = current_model()
if not slot.loaded:
    st.info(f"No model is loaded, so there is no model card to show. {plain(slot.error)} {HOW_TO_FIX}",
            icon=":material/info:")
    st.stop()

model = slot.model
card = model.card
st.subheader(f"{plain(card.name or model_file_name(slot))} · version {plain(model.version)}")
# Card text comes from whoever made the model file: shown as the characters it is, never as Markdown.
st.markdown(plain(card.description) if card.description else "_The model card has no description._")

left, right = st.columns(2, gap="large")
with left:
    st.markdown("#### Classes")
    classes_table(card)
    st.markdown("#### Intended use")
    st.markdown(plain(card.intended_use) if card.intended_use else "_Not stated in the card._")
    st.markdown("#### Limitations")
    st.markdown("\n".join(f"- {plain(item)}" for item in card.limitations) or "_None listed in the card._")
with right:
    st.markdown("#### Metrics")
    if card.metrics:
        metrics_tables(card.metrics)
        subgroups_section(card.metrics)
    else:
        st.caption("The card reports no metrics.")
    st.markdown("#### Input and calibration")
    # Bullets, not a table: the one-line descriptions are long and must wrap, not be cut off.
    st.markdown("\n".join([
        f"- **Preprocessing:** `{card.preprocessing}`: {SCALINGS[card.preprocessing].description}",
        f"- **Resize:** `{card.resize}`: {RESIZE_POLICIES[card.resize].description}",
        f"- **Input size:** {model.input_size[0]} × {model.input_size[1]} pixels",
        f"- **Test-time augmentation:** {views_in_words(card.tta)}",
        f"- **Temperature:** {card.temperature:g} (softmax temperature that calibrates probabilities; 1 = none)",
        f"- **Triage thresholds:** medium from a malignancy score of {percent(card.thresholds['medium'], 0)}, "
        f"high from {percent(card.thresholds['high'], 0)}"
        + (f". {plain(card.thresholds_note)}" if card.thresholds_note else ""),
    ]))
    st.markdown("#### Backbone, license and training data")
    provenance = {**card.backbone, **{f"training data: {k}": v for k, v in card.training_data.items()},
                  **{f"provenance: {k}": v for k, v in card.provenance.items()}}
    if provenance:
        st.dataframe(key_values(provenance), hide_index=True, width="stretch")
    else:
        st.caption("The card gives no backbone, license or training-data credit.")

st.markdown("#### What the engine detected")
detected(model)
