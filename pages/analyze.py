"""Analyze: one dermoscopic image -> differential, malignancy score, Grad-CAM, reviewer decision."""

from __future__ import annotations

import streamlit as st

from dashboard import analysis_cache as results
from dashboard import off_card, prior_review, session
from dashboard.case_details import (
    DRAFT,
    RETRY_LABEL,
    CaseSubject,
    detail_inputs,
    details_for_image,
    details_prefix,
    ensure_case,
    note_image_change,
    pending_case_details,
    release_details,
    remember_typed,
    save_typed_details,
    typed_details,
    unsaved_details,
    unsaved_for_image,
)
from dashboard.decision_panel import decision_panel
from dashboard.differential import DIFFERENTIAL_COLUMNS, DIFFERENTIAL_ORDER, differential_chart, differential_frame
from dashboard.engine_details import engine_details
from dashboard.explanation_panel import explanation_inputs, trust_notes
from dashboard.heatmap_panel import heatmap_panel
from dashboard.model_cache import require_model
from dashboard.presentation import DISCLAIMER, percent, plain
from dashboard.review_store import get_store
from dashboard.triage_block import score_and_triage
from dermascan.errors import InvalidImage, InvalidModelOutput
from dermascan.intake.images import DEFAULT_MAX_BYTES, sha256_hex

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
MAX_UPLOAD_MB = DEFAULT_MAX_BYTES // (1024 * 1024)


def case_fields_input(store_slot, sha):
    """Optional clinical context of the image ``sha``, only ever written to the review database.

    Returns (fields, status box). The inputs are this image's own (keyed by its hash) and start from what
    is stored for its case. The status box, under the inputs, is filled at the end of the run
    (``case_details_status``), once the case is known and the decision form has had its chance to save.
    """
    with st.expander("Case details (optional)", icon=":material/assignment_ind:"):
        st.caption("Saved only in the review database: with the case when the image is analysed; later edits "
                   "with **Save case details** or together with your decision.")
        prefix = details_prefix(sha)
        fields = detail_inputs(prefix, typed_details(DRAFT) if sha is None else details_for_image(store_slot, sha))
        remember_typed(prefix, fields)
        status = st.container()
    return fields, status


def case_details_status(box, store_slot, subject, case_id, fields) -> None:
    """Under the case details: whether edits made after the analysis are saved, and a button to save them."""
    if case_id is None:  # the case itself is not stored yet; it will be, with the details typed then
        return
    with box:
        note, action = st.empty(), st.empty()
        changes = unsaved_details(store_slot, case_id, fields)
        retrying = pending_case_details(case_id) is not None
        if changes and details_button(action, subject, retry=retrying):
            if save_typed_details(store_slot, case_id, changes):
                changes = {}
                action.empty()
            elif not retrying:
                details_button(action, subject, retry=True)  # the error below names the retry button; show it now
        if changes:
            note.warning("The case details were changed after the analysis and are not saved yet.",
                         icon=":material/edit_note:")
        else:
            note.caption(f":material/check: Case details saved with case {case_id}.")


def details_button(slot, subject, *, retry: bool) -> bool:
    """The save (or, after a failure, retry) button for ``subject``'s case details, drawn in ``slot``."""
    # One key per label and case: a click on the retry button must be read by the run that draws it again,
    # and never by a run that shows another case.
    if retry:
        return slot.button(RETRY_LABEL, key=f"{session.CASE_DETAILS_RETRY_PREFIX}_{subject.token}",
                           icon=":material/refresh:")
    return slot.button("Save case details", key=f"{session.CASE_DETAILS_SAVE_PREFIX}_{subject.token}",
                       icon=":material/save:")


def summary(analysis, display_name) -> None:
    """Most likely class, malignancy score and triage band (in words and colour)."""
    a, b, c = st.columns([2, 1, 1.4])
    with a:
        top = analysis.predictions[0]
        # Plain-language names are long; a metric would cut them off, a heading wraps.
        st.markdown(f"**Most likely** ({percent(top['probability'])})")
        st.markdown(f"#### {plain(display_name(top['label']))}")
    score_and_triage(b, c, analysis)  # "Indeterminate: retake or refer" with its reasons when the gate failed


st.title("Analyze a lesion")
st.caption(DISCLAIMER)
slot = require_model()

upload_col, details_col = st.columns([1, 1], gap="large")
with upload_col:
    upload = st.file_uploader("Dermoscopic image", type=IMAGE_TYPES, max_upload_size=MAX_UPLOAD_MB,
                              key=session.ANALYZE_UPLOAD, help=f"JPEG, PNG or WebP, up to {MAX_UPLOAD_MB} MB. "
                              "The image is analysed in memory and never saved.")
    options = off_card.options_input(slot.model.card)  # the card's, unless ML mode is on (sidebar toggle)
    cam_method, faithful, stable = explanation_inputs(slot.model.card, method_key=session.ANALYZE_CAM_METHOD,
                                                      faithfulness_key=session.ANALYZE_FAITHFULNESS,
                                                      stability_key=session.ANALYZE_STABILITY)
upload_sha = sha256_hex(upload.getvalue()) if upload is not None else None
store_slot = get_store()
# The one source of every per-case key and of the case id; an image reviewed before continues its case.
subject = CaseSubject(upload_sha, slot.key, options, cam_method) if upload_sha is not None else None
prior = prior_review.look_up(store_slot, subject, slot.model) if subject is not None else None
previous = note_image_change(upload_sha)
with details_col:
    if previous is not None and unsaved_for_image(previous):
        st.warning("New image: the case details typed for the previous image are not saved; they stay with that "
                   "image (upload it again to save them). Enter this lesion's details below.",
                   icon=":material/person_search:")
    elif previous is not None:
        st.info("New image: the case details below are this image's own; the previous image keeps its details.",
                icon=":material/person_search:")
    fields, details_box = case_fields_input(store_slot, upload_sha)

if upload is None:
    st.info("Upload a dermoscopic image to get the AI's differential, malignancy score and heatmap.",
            icon=":material/upload:")
    st.stop()

data = upload.getvalue()
sha = upload_sha
try:
    base = results.analyze(slot, data, sha256=sha, name=upload.name, options=options, cam_method=cam_method,
                           faithfulness=faithful, stability=stable)
except InvalidImage as exc:
    release_details(sha)
    st.error(f"This file cannot be analysed: {plain(exc)} Try another JPEG, PNG or WebP image.",
             icon=":material/broken_image:")
    st.stop()
except InvalidModelOutput as exc:
    st.error(plain(exc), icon=":material/error:")
    st.stop()

case_id = ensure_case(store_slot, base, subject, case_fields=fields,
                      off_card=off_card.is_off_card(options, slot.model.card))

st.divider()
off_card.banner(options, slot.model.card)
prior_review.show(prior, slot.model.card.display_name)
summary(base, slot.model.card.display_name)
warnings = list(dict.fromkeys(base.warnings))  # model (load-time) warnings first, then this image's
if warnings:
    st.warning("\n".join(f"- {plain(w)}" for w in warnings) if len(warnings) > 1 else plain(warnings[0]),
               icon=":material/warning:")

image_col, table_col = st.columns([1.6, 1], gap="large")
with image_col:
    heatmap_panel(slot, data, subject, upload.name, base)  # a fragment: its controls rerun only the panel
with table_col:
    trust_notes(base, base)  # beside the map: faithfulness and stability of the top-class analysis
    frame = differential_frame(base, slot.model.card.malignant_labels)
    st.dataframe(frame, hide_index=True, column_config=DIFFERENTIAL_COLUMNS, column_order=DIFFERENTIAL_ORDER,
                 width="stretch")
    st.altair_chart(differential_chart(frame), width="stretch")
    st.caption(f"Processed in {base.processing_time_ms:.0f} ms · model {plain(base.model_version)}")
    engine_details(slot.model, base)

st.divider()
decision_panel(slot, store_slot, subject, case_id, base, fields)  # a fragment; a save reruns the page
case_details_status(details_box, store_slot, subject, case_id, fields)  # last, so it reflects a save with the decision
