"""Names of everything this app keeps in ``st.session_state``, and small accessors.

One place for the keys keeps pages from inventing near-duplicates ("case_id" vs
"caseId") that silently lose state when a user switches pages. State the app writes
itself comes first, then the pages' widget keys (Streamlit keeps a widget's value under
its key; tests and the e2e suite address widgets by these strings, so their values are
fixed). Keys that name one case or image end in ``_PREFIX``: the page appends a token.
"""

from __future__ import annotations

import uuid

import streamlit as st

SESSION_ID = "ds_session_id"  # random id that tags this session's cases in the review DB
MODEL_CHOICE = "ds_model_choice"  # file name picked in the sidebar from the models folder ("" = default)
MODEL_SELECT = "ds_model_select"  # the sidebar selectbox's own widget key
ML_MODE = "ds_ml_mode"  # True once ML mode is turned on in the sidebar (off-card options offered)
ML_MODE_TOGGLE = "ds_ml_mode_toggle"  # the sidebar toggle's own widget key
ANALYSES = "ds_analyses"  # results cache: key -> Analysis (pixels stay in this session's memory)
CASE_IDS = "ds_case_ids"  # (sha256, model key, options) -> case_id already added to the store
PENDING_DECISIONS = "ds_pending_decisions"  # case_id -> Decision that could not be saved yet
LAST_SAVED = "ds_last_saved"  # case_id of the last decision saved (for a confirmation message)
ANALYZE_SAVED = "ds_analyze_saved"  # Analyze: (CaseSubject.token, details saved too) confirmed after the rerun
IMPORT_RESULT = "ds_import_result"  # (file id, ImportResult) of the last CSV import
CASE_FIELDS = "ds_case_fields"  # case_id -> case details saved with it (to notice later edits)
PENDING_CASE_FIELDS = "ds_pending_case_fields"  # case_id -> {field: value} typed but not saved yet
TYPED_CASE_FIELDS = "ds_typed_case_fields"  # Analyze's detail-input key prefix -> the details typed there
DETAILS_SAVED = "ds_details_saved"  # case_id whose details were just saved (confirmed after a rerun)
DETAILS_IMAGE = "ds_details_image"  # sha256 of the image whose case details Analyze showed last
PRIOR_CASES = "ds_prior_cases"  # case_id -> True: stored before this session, continued on Analyze
BATCH_REF = "batch"  # query parameter naming this browser's batch (batch_status), so a reload can report it
LOG_SELECTION = "ds_log_selection"  # Review log table: selection.Followed (selected case_id)
BATCH_SELECTION = "ds_batch_selection"  # Batch worklist: selection.Followed (selected (job signature, row))
COMPARE_ANALYSES = "compare_analyses"  # Compare: (sha256, model key, option, CAM method) -> Analysis
COMPARE_PROBABILITIES = "compare_probabilities"  # Compare: (sha256, model key, option) -> probability row
BATCH_JOB = "batch_job"  # Batch: the BatchJob of this session
BATCH_METRICS = "batch_metrics"  # Batch: (job signature, done, labels file id) -> report
BATCH_COLOURED = "batch_coloured"  # Batch: ((job signature, row), preview pixels, coloured heatmap) shown

# Widget keys: Analyze
ANALYZE_UPLOAD = "analyze_upload"
OPT_PREPROCESSING = "opt_preprocessing"
OPT_RESIZE = "opt_resize"
ANALYZE_CAM_METHOD = "analyze_cam_method"
ANALYZE_FAITHFULNESS = "analyze_faithfulness"
ANALYZE_STABILITY = "analyze_stability"
OVERLAY_ALPHA = "overlay_alpha"
OVERLAY_ENLARGE = "overlay_enlarge"
CAM_CLASS_PREFIX = "cam_class"  # + "_" + CaseSubject.token
DECISION_PREFIX = "decision"  # + "_" + CaseSubject.token: the decision form
CASE_DETAILS_SAVE_PREFIX = "case_details_save"  # + "_" + CaseSubject.token
CASE_DETAILS_RETRY_PREFIX = "case_details_retry"  # + "_" + CaseSubject.token

# Widget keys: Batch
BATCH_UPLOAD = "batch_upload"
BATCH_LABELS = "batch_labels"
BATCH_WITH_CAM = "batch_with_cam"
BATCH_STABILITY = "batch_stability"
BATCH_FAITHFULNESS = "batch_faithfulness"
BATCH_START = "batch_start"
BATCH_STOP = "batch_stop"
BATCH_RESUME = "batch_resume"
BATCH_ERRORS = "batch_errors"
BATCH_FILTER_BANDS = "batch_filter_bands"
BATCH_FILTER_CLASSES = "batch_filter_classes"
BATCH_MIN_SCORE = "batch_min_score"
BATCH_TABLE = "batch_table"
BATCH_CLOSE_ROW = "batch_close_row"
BATCH_ALPHA = "batch_alpha"
BATCH_TABLE_CSV = "batch_table_csv"
BATCH_METRICS_CSV = "batch_metrics_csv"
BATCH_DECISION_PREFIX = "batch_decision"  # + "_" + a token of the case's key: the decision form of a batch result
BATCH_SUBGROUPS = "batch_subgroups"

# Widget keys: Compare preprocessing
COMPARE_UPLOAD = "compare_upload"
COMPARE_LABELS = "compare_labels"
COMPARE_SCALINGS = "compare_scalings"
COMPARE_RESIZES = "compare_resizes"
COMPARE_TTA = "compare_tta"
COMPARE_TTA_TRANSFORMS = "compare_tta_transforms"
COMPARE_CAM_METHOD = "compare_cam_method"
COMPARE_METHODS_MODE = "compare_methods_mode"  # every CAM method side by side for one image
COMPARE_ALPHA = "compare_alpha"
COMPARE_IMAGE = "compare_image"
COMPARE_METRICS = "compare_metrics"
COMPARE_AGREEMENT = "compare_agreement"
COMPARE_ALIGNED = "compare_aligned"
COMPARE_METRICS_CSV = "compare_metrics_csv"

# Widget keys: Review log
LOG_BANDS = "log_bands"
LOG_STATUS = "log_status"
LOG_SEARCH = "log_search"
LOG_ORDER = "log_order"
LOG_SESSION_FIRST = "log_session_first"
LOG_PAGE = "log_page"
LOG_PAGE_SIZE = "log_page_size"
LOG_QUERY = "ds_log_query"  # the CaseQuery the page was last drawn for (a new one starts again at page 1)
LOG_TABLE = "log_table"
LOG_CLOSE_CASE = "log_close_case"
LOG_ALPHA = "log_alpha"
LOG_IMPORT = "log_import"
LOG_IMPORT_GO = "log_import_go"
LOG_CASE_PREFIX = "log_case"  # + "_" + case id: the case-details form
LOG_DECISION_PREFIX = "log_decision"  # + "_" + case id: the decision form
LOG_SUBGROUPS = "log_subgroups"
LOG_SUBGROUPS_ON = "log_subgroups_on"


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
