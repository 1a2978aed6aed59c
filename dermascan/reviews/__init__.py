"""The review store: where a clinician's reviewed cases and decisions live, so nothing entered is lost.

Typical use in the dashboard::

    store = ReviewStore()                     # .dermascan/reviews.sqlite3, or $DERMASCAN_REVIEW_DB
    record = CaseRecord.from_analysis(analysis, session_id=sid, patient_id="P-17")
    case_id = store.add_case(record)
    store.save_decision(case_id, Decision(reviewer_agrees=False, reviewer_diagnosis="mel", management="excise"))
    store.list_cases(session_first=sid)       # this session's cases on top
    data = store.export_csv()                 # bytes for st.download_button
    result = store.import_csv(uploaded_file)  # ImportResult(added, updated, skipped, errors, changes, ...)

Every storage failure raises ``ReviewStoreError`` and every invalid field ``InvalidRecord`` (both ``DermascanError``;
``InvalidRecord`` is also a ``ValueError``), whose message can be shown as is.
Uses the standard library and SQLAlchemy (SQLite, or PostgreSQL through psycopg); never imports TensorFlow.
"""

from .csvio import COLUMN_DESCRIPTIONS, CSV_COLUMNS, MAX_IMPORT_ROWS, ImportResult, csv_header
from .errors import DB_ENV_VAR, ReviewStoreError
from .query import SORTS, CaseQuery
from .records import (
    MANAGEMENT_LABELS,
    MANAGEMENT_OPTIONS,
    CaseRecord,
    Decision,
    DecisionChange,
    InvalidRecord,
    new_session_id,
)
from .schema import SCHEMA_VERSION
from .store import DEFAULT_DB_PATH, MergeCounts, ReviewStore, default_db_path, default_db_url

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "CSV_COLUMNS",
    "DB_ENV_VAR",
    "DEFAULT_DB_PATH",
    "MANAGEMENT_LABELS",
    "MANAGEMENT_OPTIONS",
    "MAX_IMPORT_ROWS",
    "SCHEMA_VERSION",
    "SORTS",
    "CaseQuery",
    "CaseRecord",
    "Decision",
    "DecisionChange",
    "ImportResult",
    "InvalidRecord",
    "MergeCounts",
    "ReviewStore",
    "ReviewStoreError",
    "csv_header",
    "default_db_path",
    "default_db_url",
    "new_session_id",
]
