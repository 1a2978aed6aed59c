"""Batch: many images (or .zip archives) -> a risk-sorted worklist, charts, CSV, metrics with labels.

How Stop works in Streamlit: a click on any widget while this script runs asks for a rerun,
and Streamlit stops the running script at its next element call (here: the progress update
after each chunk). The job in ``st.session_state`` already holds every result of the chunks
done, so nothing is lost: the Stop button's callback marks the job stopped before the next
run starts, and any other click simply resumes where the job was.
"""

from __future__ import annotations

import contextlib
from pathlib import PurePosixPath

import streamlit as st

from dashboard import batch_status, session
from dashboard.batch_export import metrics_csv, table_csv
from dashboard.batch_job import STOPPED, BatchJob, advance, decode_preview, flush_cases, start_control
from dashboard.batch_review import decision_panel
from dashboard.batch_table import ROW_ID, Filters, apply_filters, column_config, labelled, results_frame, row_ids
from dashboard.labels_input import labels_csv_input
from dashboard.model_cache import require_model
from dashboard.overlay_viewer import overlay_viewer
from dashboard.presentation import DISCLAIMER, TRIAGE, percent, plain
from dashboard.review_store import get_store
from dashboard.selection import clear_selection, follow_table
from dashboard.subgroup_view import batch_subgroups
from dashboard.uploads import UPLOAD_TYPES, collect, signature
from dermascan.errors import DermascanError
from dermascan.evaluation import charts
from dermascan.evaluation.evaluate import metrics_for
from dermascan.inference.batch import DEFAULT_CHUNK, batch_columns
from dermascan.render.overlay import blend, colorize
from dermascan.render.text import display_text


def empty_error_row(name: str, reason: str, labels: list[str]) -> dict:
    """A CSV error row for a file refused before analysis (e.g. too large inside a zip)."""
    return {**dict.fromkeys(batch_columns(labels), ""), "file": name, "error": reason}


def save_cases(job: BatchJob, labels_by_id: dict[str, str] | None) -> None:
    """Put the job's new cases into the review log (one transaction), with their ``dx`` when a labels file gives
    one; retried on the next chunk if it fails."""
    store_slot = get_store()
    if store_slot.store is None:
        return
    with job.lock:
        for case in job.pending_cases:
            case.dx = case.dx or (labels_by_id or {}).get(PurePosixPath(case.file_name or "").stem)
    # On failure the cases stay in job.pending_cases; the results section says they are not saved yet.
    with contextlib.suppress(DermascanError):
        flush_cases(job, store_slot.store)


def process(job: BatchJob, model, sources, token: int, labels_by_id: dict[str, str] | None) -> None:
    """Run the job to its end (or until another run claims it), drawing progress after each chunk."""
    holder = st.empty()  # progress and Stop disappear together when the run ends
    with holder.container():
        bar = st.progress(job.done / max(job.total, 1), text=f"Analysing {job.total} images…")
        st.button("Stop", key=session.BATCH_STOP, icon=":material/stop_circle:", on_click=job.stop,
                  help="Stops after the images in flight; the results so far are kept.")

    def on_chunk(j: BatchJob) -> None:
        save_cases(j, labels_by_id)  # before drawing: Streamlit may end this run inside the next element call
        batch_status.publish(j)
        bar.progress(j.done / max(j.total, 1), text=f"Analysed {j.done} of {j.total} images"
                     f" · {len(j.errors)} could not be analysed")

    try:
        advance(job, model, sources, token, session_id=session.session_id(), chunk_size=DEFAULT_CHUNK,
                on_chunk=on_chunk)
        save_cases(job, labels_by_id)
    finally:  # also when the user leaves or reloads the page: a returning user is told how far it got
        batch_status.publish(job, ended=job.owner == token)
    holder.empty()


def filters_input(labels, display_name) -> Filters:
    """Triage band, predicted class and minimum score filters."""
    a, b, c = st.columns([1.2, 1.6, 1])
    bands = a.multiselect("Triage band", list(TRIAGE), key=session.BATCH_FILTER_BANDS,
                          format_func=lambda b: TRIAGE[b].title, placeholder="all bands")
    classes = b.multiselect("Predicted class", labels, key=session.BATCH_FILTER_CLASSES,
                            format_func=lambda label: display_text(display_name(label)),
                            placeholder="all classes")
    min_score = c.slider("Minimum malignancy score", 0.0, 1.0, 0.0, 0.05, key=session.BATCH_MIN_SCORE,
                         format="percent")
    return Filters(tuple(bands), tuple(classes), float(min_score))


def overlay_panel(job: BatchJob, row: int, display_name) -> None:
    """The selected image with its Grad-CAM; the slider only re-blends (no model call)."""
    result = job.results[row]
    cache = st.session_state.get(session.BATCH_COLOURED)
    if cache is None or cache[0] != (job.signature, row):
        image = decode_preview(result.preview_jpeg)
        coloured = None if result.heatmap is None else colorize(result.heatmap.astype("float32"), image.shape[:2])
        cache = ((job.signature, row), image, coloured)
        st.session_state[session.BATCH_COLOURED] = cache
    _, image, coloured = cache
    st.markdown(f"**{plain(result.name)}** · {plain(display_name(result.top_label))} · "
                f"malignancy {percent(result.malignant_score)}")
    overlay_viewer(image, None if coloured is None else (lambda alpha: blend(image, coloured, alpha)),
                   key=session.BATCH_ALPHA, caption=f"Grad-CAM: {plain(display_name(result.explained_label))}",
                   original_caption="Original (preview)", missing="No heatmap: this batch ran without Grad-CAM.")


def selected_row(job: BatchJob, selected, frame) -> int | None:
    """The job's result index of the selected row; a note when the filters hide it (it stays shown, as on the
    Review log: narrowing the worklist must not close the image the reviewer is looking at)."""
    if selected is None or selected[0] != job.signature:  # a selection made in an earlier batch
        return None
    row = selected[1]
    if row not in set(frame[ROW_ID]):
        note, close = st.columns([4, 1], vertical_alignment="center")
        note.info(f"{job.results[row].name} is hidden by the current filter; it stays shown below until you select "
                  "another row or close it.", icon=":material/filter_alt:")
        close.button("Close image", key=session.BATCH_CLOSE_ROW, icon=":material/close:", on_click=clear_selection,
                     args=(session.BATCH_SELECTION,))
    return row


def metrics_section(job: BatchJob, labels_by_id: dict[str, str], labels_key, model) -> None:
    """Metrics against the labels CSV: the CLI's numbers, charts and a CSV."""
    y_true, probs, unmatched = labelled(job.results, labels_by_id)
    st.subheader("Metrics against the labels")
    if not y_true:
        st.warning("None of the analysed file names match an image_id in the labels CSV.", icon=":material/warning:")
        return
    cache = st.session_state.setdefault(session.BATCH_METRICS, {})
    key = (job.signature, job.done, labels_key)
    if key not in cache:
        try:
            cache.clear()
            cache[key] = metrics_for(model, y_true, probs)
        except DermascanError as exc:
            st.error(plain(exc), icon=":material/error:")
            return
    report = cache[key]
    if unmatched:
        st.caption(f"{unmatched} analysed image(s) have no label and are left out of the metrics.")
    cols = st.columns(5)
    for col, (name, title) in zip(cols, [("n", "Images"), ("accuracy", "Accuracy"),
                                         ("balanced_accuracy", "Balanced accuracy"), ("macro_auc", "Macro AUC"),
                                         ("ece", "ECE")]):
        value = report.get(name)
        col.metric(title, "—" if value is None else (str(value) if name == "n" else f"{value:.3f}"))
    a, b = st.columns(2)
    a.altair_chart(charts.confusion_heatmap(charts.confusion_frame(report)), width="stretch")
    b.altair_chart(charts.recall_bars(charts.recall_frame(report)), width="stretch")
    roc = charts.roc_frame(y_true, probs, model.labels, model.card.malignant_labels)
    if roc.empty:
        a.info("No ROC curve: the labelled images are all malignant or all benign.", icon=":material/info:")
    else:
        a.altair_chart(charts.roc_chart(roc, report["malignant"]["auc"]), width="stretch")
    b.altair_chart(charts.reliability_chart(charts.reliability_frame(report["reliability"])), width="stretch")
    st.download_button("Download metrics (CSV)", metrics_csv(report), file_name="batch_metrics.csv", mime="text/csv",
                       icon=":material/download:", key=session.BATCH_METRICS_CSV, on_click="ignore")


def results_section(job: BatchJob, model, labels) -> None:
    """Summary, errors, the filtered worklist with its overlay and decision, charts, downloads and metrics."""
    display_name = model.card.display_name
    labels_by_id = labels.by_id
    high = sum(r.triage == "high" for r in job.results)
    a, b, c, d = st.columns(4)
    a.metric("Analysed", f"{len(job.results)} of {job.total}")
    b.metric("Could not be analysed", len(job.errors))
    c.metric("High triage band", high)
    d.metric("Time", f"{job.seconds:.1f} s")
    if job.status == STOPPED and not job.finished:
        st.warning(f"Stopped after {job.done} of {job.total} files.", icon=":material/stop_circle:")
        st.button("Resume", key=session.BATCH_RESUME, icon=":material/play_arrow:", on_click=job.resume)
    if job.pending_cases:
        st.warning(f"{len(job.pending_cases)} result(s) are not in the review log yet: "
                   f"{plain(get_store().error or 'the review database is busy')}", icon=":material/sync_problem:")
    elif job.logged or job.reused:
        reused = f"; {job.reused} already there, kept with their decisions" if job.reused else ""
        st.caption(f"{job.logged} case(s) added to the review log (source: batch){reused}.")
    if job.errors:
        with st.expander(f"{len(job.errors)} file(s) could not be analysed", icon=":material/broken_image:",
                         expanded=True):
            st.dataframe([{"File": display_text(e["file"]), "Problem": display_text(e["error"])} for e in job.errors],
                         hide_index=True, width="stretch", key=session.BATCH_ERRORS)
    if not job.results:
        return

    filters = filters_input(job.labels, display_name)
    frame = apply_filters(results_frame(job.results, job.labels, display_name, labels_by_id), filters)
    st.caption(f"{len(frame)} of {len(job.results)} images shown, highest malignancy score first. "
               "Select a row to see its heatmap and record your decision.")
    # Before drawing: a click's row position becomes a result id, and the tick follows it (see selection.py).
    selected = follow_table(session.BATCH_TABLE, session.BATCH_SELECTION, row_ids(job, frame))
    st.dataframe(frame, hide_index=True, width="stretch", column_config=column_config(job.labels, display_name),
                 on_select="rerun", selection_mode="single-row", key=session.BATCH_TABLE, row_height=70)
    row = selected_row(job, selected, frame)
    if row is not None:
        overlay_panel(job, row, display_name)
        decision_panel(get_store(), job.results[row], job.labels, display_name)

    shown = [job.results[i] for i in frame[ROW_ID]]
    data = table_csv(shown, job.errors, job.labels, model.card, labels_by_id=labels_by_id)
    st.download_button("Download table (CSV)", data, file_name="batch_results.csv", mime="text/csv",
                       icon=":material/download:", key=session.BATCH_TABLE_CSV, on_click="ignore",
                       help="The rows shown (filters applied) plus the files that could not be analysed, in the "
                       "Review log export's columns (dx from the labels file).")

    everything = results_frame(job.results, job.labels, display_name)
    left, right = st.columns(2)
    left.altair_chart(charts.class_distribution_chart(everything, "Top class"), width="stretch")
    right.altair_chart(charts.score_histogram(everything, "Malignancy", "Triage"), width="stretch")
    if labels_by_id and job.labels == model.labels:
        metrics_section(job, labels_by_id, labels.file_id, model)
        with st.expander("Subgroups: sensitivity and specificity by patient group", icon=":material/groups:"):
            batch_subgroups(job.results, labels.rows or {}, model.card)


st.title("Batch worklist")
st.caption(DISCLAIMER)
slot = require_model()
model = slot.model

upload_col, labels_col = st.columns([2, 1], gap="large")
files = upload_col.file_uploader(
    "Images or .zip archives of images", type=UPLOAD_TYPES, accept_multiple_files=True, key=session.BATCH_UPLOAD,
    help="Analysed in memory, never saved. Inside a zip, folders, hidden files and non-images are skipped.",
)
labels = labels_csv_input(
    key=session.BATCH_LABELS, container=labels_col,
    help="Columns image_id,dx (as in HAM10000's metadata): turns on accuracy, confusion matrix, ROC and calibration.",
)
with_cam = labels_col.toggle("Grad-CAM heatmaps", value=True, key=session.BATCH_WITH_CAM,
                             help="Off: prediction only, several times faster; no overlays.")
stability = labels_col.toggle("Stability under flips and rotations", value=False, key=session.BATCH_STABILITY,
                              help="Each image also seen flipped and rotated (4 views): does the top class hold? "
                              "About twice as slow.")
faithfulness = labels_col.toggle("Faithfulness (slower)", value=False, key=session.BATCH_FAITHFULNESS,
                                 disabled=not with_cam, help="Each heatmap's top 20% removed: how much does the "
                                 "probability fall? Several times slower per image.")
faithfulness = faithfulness and with_cam
labels_by_id = labels.by_id

job: BatchJob | None = st.session_state.get(session.BATCH_JOB)
token = job.claim() if job is not None else 0  # first thing: a still-running older run must stop writing
files = files or []
intake = collect(files)
current = (signature(files), slot.key, with_cam, stability, faithfulness)
if files:
    noun = f"{len(intake.sources)} image(s)"
    if intake.skipped:
        noun += f" ({intake.skipped} archive entries skipped)"
    disabled, why = start_control(job, current, has_files=bool(intake.sources or intake.refused))
    if st.button(f"Analyse {noun}", type="primary", icon=":material/play_arrow:", key=session.BATCH_START,
                 disabled=disabled, help=why):
        job = BatchJob.start(current, total=len(intake.sources), labels=model.labels, with_cam=with_cam,
                             errors=[empty_error_row(n, r, model.labels) for n, r in intake.refused],
                             stability=stability, faithfulness=faithfulness)
        st.session_state[session.BATCH_JOB] = job
        st.session_state.pop(session.BATCH_COLOURED, None)
        token = job.claim()
        batch_status.name_in_url(job)
        batch_status.publish(job)
elif job is None:
    batch_status.earlier_batch_note(job)
    st.info("Upload dermoscopic images (or .zip archives of them) to triage them by malignancy score.",
            icon=":material/upload:")
    st.stop()

if job is not None and job.should_process(current):
    process(job, model, intake.sources, token, labels_by_id)
if job is not None and job.has_results:
    if not files:
        batch_status.returning_note(job)
    elif not job.is_for(current):
        st.caption("These are the results of an earlier batch; press Analyse to run the files uploaded now.")
    results_section(job, model, labels)
