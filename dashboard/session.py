"""Names of everything this app keeps in ``st.session_state``, and small accessors.

One place for the keys keeps pages from inventing near-duplicates ("case_id" vs
"caseId") that silently lose state when a user switches pages.
"""

from __future__ import annotations

import uuid

import streamlit as st

SESSION_ID = "ds_session_id"  # random id that tags this session's cases in the review DB
MODEL_CHOICE = "ds_model_choice"  # file name picked in the sidebar from the models folder ("" = default)
MODEL_SELECT = "ds_model_select"  # the sidebar selectbox's own widget key
ANALYSES = "ds_analyses"  # results cache: key -> Analysis (pixels stay in this session's memory)
CASE_IDS = "ds_case_ids"  # (sha256, model key, options) -> case_id already added to the store
PENDING_DECISIONS = "ds_pending_decisions"  # case_id -> Decision that could not be saved yet
LAST_SAVED = "ds_last_saved"  # case_id of the last decision saved (for a confirmation message)
IMPORT_RESULT = "ds_import_result"  # (file id, ImportResult) of the last CSV import
CASE_FIELDS = "ds_case_fields"  # case_id -> case details saved with it (to notice later edits)
PENDING_CASE_FIELDS = "ds_pending_case_fields"  # case_id -> {field: value} typed but not saved yet
TYPED_CASE_FIELDS = "ds_typed_case_fields"  # Analyze's detail-input key prefix -> the details typed there
DETAILS_SAVED = "ds_details_saved"  # case_id whose details were just saved (confirmed after a rerun)
DETAILS_IMAGE = "ds_details_image"  # sha256 of the image whose case details Analyze showed last
LOG_SELECTION = "ds_log_selection"  # Review log table: selection.Followed (selected case_id)
BATCH_SELECTION = "ds_batch_selection"  # Batch worklist: selection.Followed (selected (job signature, row))


def session_id() -> str:
    """This browser session's id, created on first use."""
    if SESSION_ID not in st.session_state:
        st.session_state[SESSION_ID] = uuid.uuid4().hex[:12]
    return st.session_state[SESSION_ID]


def model_choice() -> str:
    """The models-folder file name picked in the sidebar, or "" for the default model."""
    choice = st.session_state.get(MODEL_CHOICE, "")
    return choice if isinstance(choice, str) else ""


def bucket(key: str) -> dict:
    """A dict stored under ``key`` in the session, created empty on first use."""
    if key not in st.session_state:
        st.session_state[key] = {}
    return st.session_state[key]
