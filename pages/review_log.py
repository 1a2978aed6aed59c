"""Review log: the analysed cases as a worklist (filter, search, sort, pages), AI result beside the reviewer's
decision; edit, history, export, import. Every read is a query: one page of cases, their count, the selected case."""

from __future__ import annotations

import streamlit as st

from dashboard import analysis_cache as results
from dashboard import session
from dashboard.case_details import (
    RETRY_LABEL,
    detail_inputs,
    details_diff,
    drop_pending_case_details,
    pending_case_details,
    present,
    save_case_details,
)
from dashboard.decision_form import decision_form, pending_decision, retry_button, save_decision
from dashboard.log_query import is_filtered, pager, query_controls
from dashboard.log_table import HISTORY_COLUMNS, LOG_COLUMNS, history_frame, log_frame
from dashboard.model_cache import current_model
from dashboard.overlay_viewer import overlay_viewer
from dashboard.presentation import DISPLAY_WIDTH, FITZPATRICK, percent, plain, triage_style
from dashboard.review_store import get_store
from dashboard.selection import clear_selection, follow_table
from dashboard.subgroup_view import review_log_subgroups
from dermascan.errors import DermascanError
from dermascan.model.card import HAM10000_DISPLAY_NAMES, HAM10000_LABELS
from dermascan.render.text import display_text
from dermascan.reviews.admin import export_bytes, export_file_name
from dermascan.reviews.query import matches
from dermascan.reviews.records import CASE_DETAIL_FIELDS

TABLE_HEIGHT = 36 + 35 * 20  # header + 20 rows in view (the default shows 10); a page scrolls inside
SHOWN_CHANGES = 100  # import summary lines shown; the history of every case keeps them all anyway
CASE_FIELDS = {"patient_id": "Patient ID", "lesion_id": "Lesion ID", "body_site": "Body site",
               "fitzpatrick": "Fitzpatrick", "age": "Age", "sex": "Sex"}


def display_name_for(slot):
    """Plain-language class names: the loaded card's, else the HAM10000 ones."""
    return slot.model.card.display_name if slot.loaded else (lambda label: HAM10000_DISPLAY_NAMES.get(label, label))


def selected_case(store, case_id, shown, query):
    """The selected case, read by id from the store (None, with a note, when it is gone); notes if it is hidden.

    A case hidden by the current filter, or on another page, stays open: a clinician who narrows the list while
    working on a case expects it to stay in front of them, and clearing it would drop a half-typed decision (a
    form's input is lost when it is not drawn). The note says why its row is not in the table, and Close ends it.
    """
    try:
        case = store.get_case(case_id)
    except DermascanError as exc:
        st.warning(f"The selected case could not be read: {plain(exc)}", icon=":material/sync_problem:")
        return None
    if case is None:
        clear_selection(session.LOG_SELECTION)
        st.info(f"Case {case_id} is no longer in the review log; the selection was cleared.", icon=":material/info:")
        return None
    if all(c.case_id != case_id for c in shown):
        note, close = st.columns([4, 1], vertical_alignment="center")
        where = "is on another page of this list" if matches(query, case) else "is hidden by the current filter"
        note.info(f"Case {case_id} {where}; it stays open below until you select another row or close it.",
                  icon=":material/filter_alt:")
        close.button(f"Close case {case_id}", key=session.LOG_CLOSE_CASE, icon=":material/close:",
                     on_click=clear_selection, args=(session.LOG_SELECTION,))
    return case


def heatmap_again(case) -> None:
    """The overlay from this session's memory, else a stored thumbnail, else why nothing can be shown."""
    analysis = results.cached_for_image(case.image_sha256, case.explained_label)
    if analysis is None:
        if case.thumbnail:  # the selected case is read by id, with its thumbnail (the table's page is not)
            st.image(case.thumbnail, caption="Thumbnail saved with the case (no heatmap)", width=260)
        st.info("The image is not kept: DermaScan Review stores no pixels. Upload it again on the Analyze page "
                "to see its heatmap.", icon=":material/hide_image:")
        return
    explained = analysis.display_names[analysis.explained_label]
    overlay_viewer(analysis.display_image(DISPLAY_WIDTH), lambda a: analysis.overlay(a, max_width=DISPLAY_WIDTH),
                   key=session.LOG_ALPHA, caption=f"Grad-CAM: {plain(explained)}")


def ai_result(case, display_name) -> None:
    """The AI's result for the case, as it was stored."""
    style = triage_style(case.triage)
    st.markdown(f"**AI:** {plain(display_name(case.top_label))} ({percent(case.top_probability)})  \n"
                f"**Malignancy score:** {percent(case.malignant_score)}")
    st.badge(f"Triage {plain(style.title)}", icon=style.icon, color=style.color)  # an imported band is any text
    if case.explanation:
        st.caption(plain(case.explanation))
    st.caption(plain(f"Model {case.model_version or '—'} · {case.preprocessing or '—'} / {case.resize or '—'}"))


def details_summary(case) -> None:
    """The stored case details as escaped text (imported values must not become links)."""
    details = {label: getattr(case, name) for name, label in CASE_FIELDS.items() if getattr(case, name) not in
               (None, "")}
    if "Fitzpatrick" in details:
        details["Fitzpatrick"] = FITZPATRICK.get(details["Fitzpatrick"], details["Fitzpatrick"])
    if details:
        st.markdown("  \n".join(f"**{k}:** {plain(v)}" for k, v in details.items()))
    if case.updated_at:
        st.caption(f"Last edited {plain(case.updated_at[:16].replace('T', ' '))} UTC; earlier values are kept.")


def case_details_editor(store_slot, case) -> None:
    """The case details, editable; edits from this session that failed to save come back filled in."""
    stored = present({name: getattr(case, name) for name in CASE_DETAIL_FIELDS})
    pending = pending_case_details(case.case_id)
    with st.expander("Case details", icon=":material/assignment_ind:", expanded=pending is not None):
        details_summary(case)
        if pending is not None:
            st.warning(f"Case details typed in this session are not saved yet; they are filled in below. Press "
                       f"**{RETRY_LABEL}** to try again.", icon=":material/sync_problem:")
        form_key = f"{session.LOG_CASE_PREFIX}_{case.case_id}"
        with st.form(form_key, border=False):
            typed = detail_inputs(form_key, {**stored, **(pending or {})})
            submitted = st.form_submit_button(RETRY_LABEL if pending is not None else "Save case details",
                                              icon=":material/save:")
    changes = details_diff(stored, typed) if submitted else {}
    if submitted and not changes:
        drop_pending_case_details(case.case_id)  # the reviewer chose the stored values over the unsaved ones
        st.info("The case details are unchanged.", icon=":material/info:")
    elif changes and save_case_details(store_slot, case.case_id, changes) is not None:
        st.session_state[session.DETAILS_SAVED] = case.case_id  # confirmed after the rerun
        st.rerun()  # show the new details in the summary (and the table's filters) at once


def decision_history(store, case_id, display_name) -> None:
    """Every decision saved for the case, oldest first, in a small table."""
    try:
        history = store.decision_history(case_id)
    except DermascanError as exc:
        st.warning(f"The decision history could not be read: {plain(exc)}", icon=":material/sync_problem:")
        return
    st.markdown("**Decision history** (oldest first)")
    if not history:
        st.caption("No decision saved yet.")
        return
    st.dataframe(history_frame(history, display_name=display_name), hide_index=True, column_config=HISTORY_COLUMNS,
                 width="stretch", placeholder="—")


def case_panel(store_slot, case, display_name) -> None:
    """One case: heatmap if still in memory, AI result, case details, decision form and history."""
    st.subheader(f"Case {case.case_id} · {plain(case.file_name or 'unnamed image')}")
    if st.session_state.pop(session.LAST_SAVED, None) == case.case_id:
        st.success("Decision saved to the review log.", icon=":material/check_circle:")
    if st.session_state.pop(session.DETAILS_SAVED, None) == case.case_id:
        st.success("Case details saved to the review log.", icon=":material/check_circle:")
    left, right = st.columns([1.2, 1], gap="large")
    with left:
        heatmap_again(case)
    with right:
        ai_result(case, display_name)
        case_details_editor(store_slot, case)
    labels = list(case.probabilities) or list(HAM10000_LABELS)
    pending_key = f"case:{case.case_id}"
    if retry_button(store_slot, case.case_id, pending_key=pending_key):
        st.rerun()
    decision = decision_form(
        f"{session.LOG_DECISION_PREFIX}_{case.case_id}", labels=labels, display_name=display_name,
        ai_label=case.top_label,
        existing=pending_decision(pending_key) or case.decision,
    )
    if decision is not None and save_decision(store_slot, case.case_id, decision, pending_key=pending_key):
        st.session_state[session.LAST_SAVED] = case.case_id  # confirmed after the rerun
        st.rerun()  # refresh the table above with the new decision
    decision_history(store_slot.store, case.case_id, display_name)


def export_import(store, query, matching: int) -> None:
    """CSV export (every case, or the filtered ones) and CSV import into this database."""
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("#### Export")
        filtered = is_filtered(query)
        label = (f"Download the {matching:,} matching case(s) as CSV" if filtered
                 else "Download the review log as CSV")
        # A callable: the file is read from the store only when the button is clicked, never on a rerun.
        st.download_button(label, lambda: export_bytes(store, query), mime="text/csv",
                           file_name=export_file_name(query), icon=":material/download:", on_click="ignore",
                           disabled=matching == 0)
        st.caption("Oldest first; the AI results, decisions and case details; no images. The file name says "
                   "which filter it holds.")
    with right:
        st.markdown("#### Import")
        upload = st.file_uploader("Review-log CSV", type=["csv"], key=session.LOG_IMPORT)
        if upload is not None and st.button("Import CSV", key=session.LOG_IMPORT_GO, icon=":material/upload:"):
            try:
                outcome = store.import_csv(upload.getvalue())
            except DermascanError as exc:
                st.error(plain(exc))
            else:
                st.session_state[session.IMPORT_RESULT] = outcome
                st.rerun()  # show the imported rows in the table
        outcome = st.session_state.get(session.IMPORT_RESULT)
        if outcome is not None:
            st.success(f"Import: {outcome.summary()}", icon=":material/check_circle:")
            if outcome.changes:  # whose decision was replaced (or kept aside) is never silent
                lines = outcome.change_lines()
                st.markdown(f"**{len(lines)} stored case(s) had their decisions changed by this import:**")
                st.markdown("\n".join(f"- {plain(line)}" for line in lines[:SHOWN_CHANGES]))
                if len(lines) > SHOWN_CHANGES:
                    st.caption(f"... and {len(lines) - SHOWN_CHANGES} more; every earlier decision is in the "
                               "case's decision history.")
            for warning in outcome.warnings:
                st.warning(plain(warning))
            if outcome.errors:
                st.warning(f"{len(outcome.errors)} row(s) could not be imported:")
                st.code("\n".join(display_text(e) for e in outcome.errors), language=None)


st.title("Review log")
store_slot = get_store()
if store_slot.store is None:
    st.error(f"The review log is unavailable: {plain(store_slot.error)}", icon=":material/error:")
    st.stop()
store = store_slot.store
display_name = display_name_for(current_model())
try:
    total = store.count_cases()
except DermascanError as exc:
    st.error(f"The review log could not be read: {plain(exc)}", icon=":material/error:")
    st.stop()

query = query_controls(session.session_id())
st.caption(f"{total:,} case(s)" + (", this session's first" if query.session_first else "")
           + ". Images are never stored, only results and decisions.")
try:
    matching = store.count_matching(query)
    offset, limit = pager(matching, query)
    shown = store.page_cases(query, offset=offset, limit=limit)
except DermascanError as exc:
    st.error(f"The review log could not be read: {plain(exc)}", icon=":material/error:")
    st.stop()
# Before drawing: a click's row position becomes a case id, and the tick follows that case (see selection.py).
selected_id = follow_table(session.LOG_TABLE, session.LOG_SELECTION, [c.case_id for c in shown])
st.dataframe(
    log_frame(shown, session_id=session.session_id(), display_name=display_name),
    key=session.LOG_TABLE, on_select="rerun", selection_mode="single-row", hide_index=True, column_config=LOG_COLUMNS,
    width="stretch", height=TABLE_HEIGHT, placeholder="—",
)
case = selected_case(store, selected_id, shown, query) if selected_id is not None else None
if case is not None:
    st.divider()
    case_panel(store_slot, case, display_name)
elif total:
    st.caption("Select a row to see its heatmap again, edit its case details, and record or edit the decision.")
else:
    st.info("No cases yet. Analyse an image on the Analyze page, or import a CSV below.", icon=":material/info:")

st.divider()
export_import(store, query, matching)
review_log_subgroups(store)
