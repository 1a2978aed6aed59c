"""Analyze: one dermoscopic image -> differential, malignancy score, Grad-CAM, reviewer decision."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import results
from dashboard.cases import ensure_case, fields_changed_since_saved
from dashboard.charts import DIFFERENTIAL_COLUMNS, DIFFERENTIAL_ORDER, differential_chart, differential_frame
from dashboard.decisions import decision_form, pending_decision, retry_button, save_decision
from dashboard.model_cache import HOW_TO_FIX, current_model
from dashboard.presentation import DISCLAIMER, FITZPATRICK, SEX_OPTIONS, percent, triage_style
from dashboard.store import get_store
from dermascan.errors import DermascanError, InvalidImage
from dermascan.intake import DEFAULT_MAX_BYTES, sha256_hex
from dermascan.overlay import DEFAULT_ALPHA, png_bytes
from dermascan.preprocessing import RESIZE_POLICIES, SCALINGS

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
MAX_UPLOAD_MB = DEFAULT_MAX_BYTES // (1024 * 1024)


def case_fields_input() -> dict:
    """Optional clinical context; only ever written to the review database."""
    with st.expander("Case details (optional)", icon=":material/assignment_ind:"):
        st.caption("Saved only in the review database, together with the case, when the image is analysed.")
        a, b = st.columns(2)
        fields = {
            "patient_id": a.text_input("Patient ID", key="case_patient_id"),
            "lesion_id": b.text_input("Lesion ID", key="case_lesion_id"),
            "body_site": a.text_input("Body site", key="case_body_site", placeholder="e.g. left upper back"),
            "fitzpatrick": b.selectbox("Fitzpatrick skin type", list(FITZPATRICK), index=None,
                                       format_func=FITZPATRICK.get, key="case_fitzpatrick", placeholder="not recorded"),
            "age": a.number_input("Age", min_value=0, max_value=120, value=None, step=1, key="case_age"),
            "sex": b.selectbox("Sex", SEX_OPTIONS, index=None, key="case_sex", placeholder="not recorded"),
        }
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in fields.items() if v not in (None, "")}


def options_input(card) -> results.Options:
    """Preprocessing overrides for ML users; the card's values by default."""
    with st.expander("Advanced: preprocessing", icon=":material/tune:"):
        scaling = st.selectbox("Pixel scaling", list(SCALINGS), index=list(SCALINGS).index(card.preprocessing),
                               format_func=lambda k: f"{k}: {SCALINGS[k].description}", key="opt_preprocessing")
        resize = st.selectbox("Resize", list(RESIZE_POLICIES), index=list(RESIZE_POLICIES).index(card.resize),
                              format_func=lambda k: f"{k}: {RESIZE_POLICIES[k].description}", key="opt_resize")
        st.caption(f"The model card says: {card.preprocessing} / {card.resize}.")
    return results.Options(scaling, resize)


def summary(analysis, display_name) -> None:
    """Most likely class, malignancy score and triage band (in words and colour)."""
    style = triage_style(analysis.triage)
    a, b, c = st.columns([2, 1, 1.4])
    with a:
        top = analysis.predictions[0]
        # Plain-language names are long; a metric would cut them off, a heading wraps.
        st.markdown(f"**Most likely** ({percent(top['probability'])})")
        st.markdown(f"#### {display_name(top['label'])}")
    b.metric("Malignancy score", percent(analysis.malignant_score),
             help="Sum of the probabilities of the malignant or pre-malignant classes.")
    with c:
        st.markdown("**Triage**")
        st.badge(style.title, icon=style.icon, color=style.color)
        st.caption(style.advice)


def heatmap_panel(slot, data: bytes, sha: str, name: str, options, base):
    """Original and Grad-CAM overlay side by side, with class and opacity controls."""
    model = slot.model
    labels = model.labels
    chosen = st.selectbox("Heatmap for class", labels, index=labels.index(base.top_label),
                          format_func=model.card.display_name, key=f"cam_class_{sha[:16]}",
                          help="See where the model looks for another class.")
    analysis = results.analyze(slot, data, sha256=sha, name=name, options=options, class_label=chosen)
    if analysis.heatmap is None:
        st.image(analysis.image, caption="Original (this model has no layer a heatmap can explain)", width="stretch")
        return analysis
    alpha = st.slider("Heatmap opacity", 0.0, 1.0, DEFAULT_ALPHA, 0.05, key="overlay_alpha")
    overlay = analysis.overlay(alpha)
    left, right = st.columns(2)
    left.image(analysis.image, caption="Original", width="stretch")
    right.image(overlay, caption=f"Grad-CAM: {model.card.display_name(analysis.explained_label)}", width="stretch")
    st.download_button("Download overlay (PNG)", png_bytes(overlay), icon=":material/download:",
                       file_name=f"{Path(name).stem}_gradcam_{analysis.explained_label}.png", mime="image/png",
                       on_click="ignore")
    return analysis


def stored_decision(store_slot, case_id):
    """The decision already saved for the case, if any (None when the store is unreadable)."""
    if case_id is None or store_slot.store is None:
        return None
    try:
        return store_slot.store.get_decision(case_id)
    except DermascanError:
        return None


def decision_section(slot, store_slot, case_id, base, options, fields) -> None:
    """The reviewer's decision on this image, saved to the review log."""
    card = slot.model.card
    if fields_changed_since_saved(case_id, fields):
        st.info("The case details were saved with the case when the image was analysed; later edits are not "
                "saved.", icon=":material/info:")
    pending_key = f"analyze:{base.sha256}:{slot.key}:{options}"
    retry_button(store_slot, case_id, pending_key=pending_key)
    decision = decision_form(
        f"decision_{base.sha256[:16]}_{options.preprocessing}_{options.resize}", labels=card.labels,
        display_name=card.display_name, ai_label=base.top_label,
        existing=pending_decision(pending_key) or stored_decision(store_slot, case_id),
    )
    if decision is not None and save_decision(store_slot, case_id, decision, pending_key=pending_key):
        st.success("Saved to the review log.", icon=":material/check_circle:")
        st.page_link("pages/review_log.py", label="Open the review log", icon=":material/fact_check:")


st.title("Analyze a lesion")
st.caption(DISCLAIMER)
slot = current_model()
if not slot.loaded:
    st.error(f"No model is loaded: {slot.error} {HOW_TO_FIX}", icon=":material/error:")
    st.stop()

upload_col, details_col = st.columns([1, 1], gap="large")
with upload_col:
    upload = st.file_uploader("Dermoscopic image", type=IMAGE_TYPES, max_upload_size=MAX_UPLOAD_MB,
                              key="analyze_upload", help=f"JPEG, PNG or WebP, up to {MAX_UPLOAD_MB} MB. "
                              "The image is analysed in memory and never saved.")
with details_col:
    fields = case_fields_input()
    options = options_input(slot.model.card)

if upload is None:
    st.info("Upload a dermoscopic image to get the AI's differential, malignancy score and heatmap.",
            icon=":material/upload:")
    st.stop()

data = upload.getvalue()
sha = sha256_hex(data)
try:
    base = results.analyze(slot, data, sha256=sha, name=upload.name, options=options)
except InvalidImage as exc:
    st.error(f"This file cannot be analysed: {exc} Try another JPEG, PNG or WebP image.",
             icon=":material/broken_image:")
    st.stop()

store_slot = get_store()
case_id = ensure_case(store_slot, base, model_key=slot.key, options=options, case_fields=fields)

st.divider()
summary(base, slot.model.card.display_name)
warnings = list(dict.fromkeys(base.warnings))  # model (load-time) warnings first, then this image's
if warnings:
    st.warning("\n".join(f"- {w}" for w in warnings) if len(warnings) > 1 else warnings[0], icon=":material/warning:")

image_col, table_col = st.columns([1.1, 1], gap="large")
with image_col:
    shown = heatmap_panel(slot, data, sha, upload.name, options, base)
with table_col:
    st.markdown(f"**Explanation.** {shown.explanation}")
    frame = differential_frame(base, slot.model.card.malignant_labels)
    st.dataframe(frame, hide_index=True, column_config=DIFFERENTIAL_COLUMNS, column_order=DIFFERENTIAL_ORDER,
                 width="stretch")
    st.altair_chart(differential_chart(frame), width="stretch")
    st.caption(f"Processed in {base.processing_time_ms:.0f} ms · model {base.model_version} · "
               f"preprocessing {base.preprocessing}, resize {base.resize} · Grad-CAM layer {base.cam_layer or 'none'}")

st.divider()
decision_section(slot, store_slot, case_id, base, options, fields)
