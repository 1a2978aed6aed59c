"""Compare preprocessing: the same image(s) under several scalings, resize policies and TTA, side by side;
or one image's heatmap under every CAM method, with how much the maps agree.

Every result is cached per (image, model, option) in this session, so switching options
back and forth never calls the model again; the opacity slider only re-blends.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from dashboard import session
from dashboard.compare_cache import analyses_for, method_analyses, probabilities_for, uploads_from_sources
from dashboard.compare_view import aligned_table, identical_note, metrics_download, small_n_warning, true_label_note
from dashboard.explanation_panel import method_input, method_title
from dashboard.labels_input import labels_csv_input
from dashboard.model_cache import require_model
from dashboard.overlay_viewer import OPACITY_LABEL, opacity_slider
from dashboard.presentation import DISCLAIMER, DISPLAY_WIDTH, percent, plain, triage_style
from dashboard.uploads import UPLOAD_TYPES, collect
from dermascan.cam import METHOD_NAMES
from dermascan.errors import DermascanError, InvalidImage, InvalidModelOutput
from dermascan.evaluation import charts
from dermascan.evaluation.compare import (
    METRIC_NAMES,
    agreement,
    build_options,
    double_scales,
    metrics_table,
    notes,
)
from dermascan.evaluation.evaluate import metrics_for
from dermascan.evaluation.map_agreement import pairwise_agreement
from dermascan.inference.options import PreprocessingOption
from dermascan.inference.preprocessing import RESIZE_POLICIES, SCALINGS
from dermascan.inference.views import DEFAULT_TTA, TRANSFORMS, available_transforms
from dermascan.render.text import display_text

MAX_OPTIONS = 8  # more columns than this are unreadable side by side
MAPS_PER_ROW = 4
CARD_MARK = " ★ model card"


def options_input(model) -> list:
    """Scalings x resize policies (x TTA on/off) chosen by the user; the card's option preselected."""
    declared = PreprocessingOption.for_card(model.card)
    a, b, c = st.columns([1.2, 1.2, 1])
    scalings = a.multiselect(
        "Pixel scaling", list(SCALINGS), default=[declared.preprocessing], key=session.COMPARE_SCALINGS,
        format_func=lambda k: k + (CARD_MARK if k == declared.preprocessing else ""),
        help="\n".join(f"- **{k}**: {v.description}" for k, v in SCALINGS.items()),
    )
    resizes = b.multiselect(
        "Resize policy", list(RESIZE_POLICIES), default=[declared.resize], key=session.COMPARE_RESIZES,
        format_func=lambda k: k + (CARD_MARK if k == declared.resize else ""),
        help="\n".join(f"- **{k}**: {v.description}" for k, v in RESIZE_POLICIES.items()),
    )
    with c:
        tta_on = st.toggle("Add test-time augmentation", key=session.COMPARE_TTA,
                           help="Each option also runs averaged over flips / rotations (one batched call).")
        usable = available_transforms(model.input_size)
        transforms = st.multiselect("Augmentations", usable, default=[t for t in DEFAULT_TTA if t in usable],
                                    key=session.COMPARE_TTA_TRANSFORMS, disabled=not tta_on,
                                    format_func=lambda t: TRANSFORMS[t].description)
    # The card's own views (usually none) first; with the toggle on, also none and the chosen ones.
    tta_choices = list(dict.fromkeys([declared.tta, *(((), tuple(transforms)) if tta_on and transforms else ())]))
    options = build_options(scalings, resizes, tta_choices)
    if len(options) > MAX_OPTIONS:
        st.warning(f"{len(options)} combinations chosen; the first {MAX_OPTIONS} are compared.",
                   icon=":material/view_column:")
    return options[:MAX_OPTIONS]


def option_title(option, declared) -> str:
    """Column header: the option's name, marked when it is the model card's."""
    return option.label + (CARD_MARK if option == declared else "")


def side_by_side(slot, upload, options, labels_by_id=None, cam_method=None) -> None:
    """Score and heatmap (by ``cam_method``) for each option in its own column, the classes x options table, how
    much they agree."""
    model = slot.model
    try:
        results = analyses_for(slot, upload, options, cam_method)
    except (InvalidImage, InvalidModelOutput) as exc:
        st.error(f"{plain(upload.name)} cannot be analysed: {plain(exc)}", icon=":material/broken_image:")
        return
    declared = PreprocessingOption.for_card(model.card)
    true_label_note(upload.name, labels_by_id, model.card.display_name)
    agree = agreement(results)
    if agree.same_top:
        top_label = next(iter(agree.top_labels.values()))
        st.success(f"All options agree on the top class: {plain(model.card.display_name(top_label))}.",
                   icon=":material/check_circle:")
    else:
        st.warning("The options disagree on the top class: " + "; ".join(
            f"{o.label}: {plain(lbl)}" for o, lbl in agree.top_labels.items()), icon=":material/call_split:")
    if agree.shift_options:
        a, b = agree.shift_options
        st.caption(f"Largest probability shift: {percent(agree.max_shift, 1)} for "
                   f"{plain(model.card.display_name(agree.shift_label))} "
                   f"({a.label} vs {b.label}).")
    identical_note(model, results)
    alpha = opacity_slider(session.COMPARE_ALPHA, f"{OPACITY_LABEL} (all columns)")
    for column, (option, analysis) in zip(st.columns(len(options)), results.items()):
        with column:
            st.markdown(f"**{option_title(option, declared)}**")
            if double_scales(model, option):
                st.warning("Double scaling: the model already rescales inside.", icon=":material/warning:")
            top = analysis.predictions[0]
            st.metric("Top class", plain(top["label"]), help=plain(top["display_name"]),
                      delta=percent(top["probability"]), delta_color="off", delta_arrow="off")
            style = triage_style(analysis.triage)
            st.metric("Malignancy score", percent(analysis.malignant_score))
            st.badge(f"Triage {style.title}", icon=style.icon, color=style.color)
            st.image(analysis.overlay(alpha, max_width=DISPLAY_WIDTH), width="stretch",
                     caption=f"{method_title(analysis.cam_method)}: {plain(analysis.explained_label)}")
    aligned_table(results, model.card.display_name, lambda option: option_title(option, declared))


def methods_side_by_side(slot, upload) -> None:
    """One image's heatmap by every CAM method (the card's preprocessing), and a table of how much each pair agrees."""
    model = slot.model
    if model.target is None:
        st.info("This model has no layer a heatmap can explain, so there are no methods to compare.",
                icon=":material/hide_image:")
        return
    option = PreprocessingOption.for_card(model.card)
    try:
        results = method_analyses(slot, upload, option, METHOD_NAMES)
    except (InvalidImage, InvalidModelOutput) as exc:
        st.error(f"{plain(upload.name)} cannot be analysed: {plain(exc)}", icon=":material/broken_image:")
        return
    first = next(iter(results.values()))
    st.caption(f"Every method explains {plain(model.card.display_name(first.explained_label))} under {option.label} "
               "(the model card's preprocessing); the prediction is the same with each.")
    alpha = opacity_slider(session.COMPARE_ALPHA, f"{OPACITY_LABEL} (all maps)")
    names = list(results)
    for start in range(0, len(names), MAPS_PER_ROW):
        for column, name in zip(st.columns(MAPS_PER_ROW), names[start : start + MAPS_PER_ROW]):
            column.image(results[name].overlay(alpha, max_width=DISPLAY_WIDTH), width="stretch",
                         caption=method_title(name))
    st.markdown("**How much the maps agree**")
    rows = pairwise_agreement({name: a.heatmap for name, a in results.items()})
    st.dataframe(pd.DataFrame([{"Method": method_title(r["a"]), "Other method": method_title(r["b"]),
                                "Rank correlation": r["rank_correlation"], "Top-20% overlap": r["top_iou"]}
                               for r in rows]),
                 hide_index=True, width="stretch", key=session.COMPARE_AGREEMENT, column_config={
                     "Rank correlation": st.column_config.NumberColumn(
                         format="%.2f", help="Spearman correlation of the two maps' orderings (1: the same order)."),
                     "Top-20% overlap": st.column_config.NumberColumn(
                         format="%.2f", help="Intersection over union of the 20% each map highlights most "
                         "(1: the same region)."),
                 })


def metrics_section(slot, uploads, labels_by_id, options) -> None:
    """Per-option metrics on the labelled images: table with the best option marked, a chart, and cautions."""
    model = slot.model
    labelled = [u for u in uploads if PurePosixPath(u.name).stem in labels_by_id]
    st.subheader("Metrics per option")
    if not labelled:
        st.warning("None of the uploaded file names match an image_id in the labels CSV.", icon=":material/warning:")
        return
    with st.spinner(f"Scoring {len(labelled)} labelled images under {len(options)} options…"):
        readable, probs, unreadable = probabilities_for(slot, labelled, options)
    if unreadable:
        st.caption(f"{len(unreadable)} labelled file(s) could not be read and are left out.")
    if not readable:
        return
    y_true = [labels_by_id[PurePosixPath(u.name).stem] for u in readable]
    try:
        reports = {o: metrics_for(model, y_true, probs[o]) for o in options}
    except DermascanError as exc:
        st.error(plain(exc), icon=":material/error:")
        return
    rows = metrics_table(reports, PreprocessingOption.for_card(model.card))
    table = pd.DataFrame([{
        "Option": r["option"] + (CARD_MARK if r["model_card"] else ""),
        **{title: r[key] for key, title in METRIC_NAMES.items()},
        "Images": r["n"],
        "Best": "★ best" if r["best"] else "",
    } for r in rows])
    st.dataframe(
        table.style.apply(lambda row: ["background-color: #e3f1ee" if row["Best"] else "" for _ in row], axis=1)
        .format({title: "{:.3f}" for title in METRIC_NAMES.values()}, na_rep="—"),
        hide_index=True, width="stretch", key=session.COMPARE_METRICS,
    )
    metrics_download(rows, METRIC_NAMES)
    small_n_warning(y_true, model.card.display_name)
    st.altair_chart(charts.option_metrics_chart(charts.option_metrics_frame(rows, METRIC_NAMES)), width="stretch")
    for note in notes(model, options, reports):
        st.warning(plain(note), icon=":material/info:")


st.title("Compare preprocessing")
st.caption("See how the model's answer depends on how pixels are scaled, resized and augmented. " + DISCLAIMER)
slot = require_model()
model = slot.model

upload_col, labels_col = st.columns([2, 1], gap="large")
files = upload_col.file_uploader("Images (or a .zip of a labelled set)", type=UPLOAD_TYPES, accept_multiple_files=True,
                                 key=session.COMPARE_UPLOAD, help="Analysed in memory, never saved.")
labels_by_id = labels_csv_input(key=session.COMPARE_LABELS, container=labels_col,
                                help="Columns image_id,dx: turns on metrics per option.").by_id
options = options_input(model)
method_col, mode_col = st.columns([1.4, 1], vertical_alignment="bottom")
with method_col:
    cam_method = method_input(model.card.cam_method, key=session.COMPARE_CAM_METHOD)
methods_mode = mode_col.toggle("Methods side by side", key=session.COMPARE_METHODS_MODE,
                               help="Every heatmap method on one image (the model card's preprocessing), with how "
                               "much their maps agree.")

if not files:
    st.info("Upload one or more dermoscopic images to compare preprocessing options.", icon=":material/upload:")
    st.stop()
if not options:
    st.info("Choose at least one pixel scaling and one resize policy.", icon=":material/tune:")
    st.stop()

intake = collect(files)
for name, reason in intake.refused:
    st.error(f"{plain(name)}: {plain(reason)}", icon=":material/broken_image:")
uploads = uploads_from_sources(intake.sources)

if uploads:
    chosen = uploads[0]
    if len(uploads) > 1:
        index = st.selectbox("Image shown side by side", range(len(uploads)), key=session.COMPARE_IMAGE,
                             format_func=lambda i: display_text(uploads[i].name))
        chosen = uploads[index]
    if methods_mode:
        methods_side_by_side(slot, chosen)
    else:
        side_by_side(slot, chosen, options, labels_by_id, cam_method)
if labels_by_id:
    st.divider()
    metrics_section(slot, uploads, labels_by_id, options)
