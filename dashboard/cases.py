"""Put each analysed image into the review log once, as soon as it is analysed, and keep its details editable."""

from __future__ import annotations

import streamlit as st

from dermascan.analysis import Analysis
from dermascan.errors import DermascanError
from dermascan.reviews import CaseRecord
from dermascan.reviews.records import CASE_DETAIL_FIELDS

from . import session
from .presentation import FITZPATRICK, SEX_OPTIONS, plain
from .results import Options
from .store import StoreSlot

SOURCE = "single"  # one image analysed on the Analyze page (batch analysis writes "batch")


def ensure_case(store_slot: StoreSlot, analysis: Analysis, *, model_key: str, options: Options,
                case_fields: dict) -> int | None:
    """The review-log id of this image's case, adding it now if this session has not yet.

    ``case_fields`` (patient_id, lesion_id, body_site, fitzpatrick, age, sex) go into the
    database only. Returns None (after a warning) when the store is unusable; the next
    rerun tries again, so the AI result is saved as soon as the database is back.
    """
    case_ids = session.bucket(session.CASE_IDS)
    key = (analysis.sha256, model_key, options)
    if key in case_ids:
        st.session_state[DETAILS_OWNER] = analysis.sha256
        return case_ids[key]
    if store_slot.store is None:
        st.warning(f"This result is not in the review log yet: {plain(store_slot.error)}",
                   icon=":material/sync_problem:")
        return None
    try:
        record = CaseRecord.from_analysis(analysis, session_id=session.session_id(), source=SOURCE, **case_fields)
        case_ids[key] = store_slot.store.add_case(record)
    except DermascanError as exc:
        st.warning(f"This result is not in the review log yet: {plain(exc)} It will be retried.",
                   icon=":material/sync_problem:")
        return None
    except ValueError as exc:  # a case field the store refuses (the message names the field, not the value)
        st.warning(f"This result is not in the review log yet: {plain(exc)}.", icon=":material/sync_problem:")
        return None
    session.bucket(session.CASE_FIELDS)[case_ids[key]] = dict(case_fields)
    st.session_state[DETAILS_OWNER] = analysis.sha256
    return case_ids[key]


# Session keys of the case-details editing. They belong in ``session.py`` with the others; kept here for now
# because that module is shared with work in progress elsewhere.
PENDING_CASE_FIELDS = "ds_pending_case_fields"  # case_id -> {field: value} typed but not saved yet
TYPED_CASE_FIELDS = "ds_typed_case_fields"  # the Analyze page's case-detail inputs, kept across page switches
DETAILS_SAVED = "ds_details_saved"  # case_id whose details were just saved (confirmed after a rerun)
AGE_MAX = 120  # the Age input's usual bound; a stored age above it (the store allows 150) raises it, not crashes
RETRY_LABEL = "Retry saving case details"
DETAILS_OWNER = "ds_details_owner"  # sha256 of the image the Analyze page's typed details belong to


def sync_details_to_image(key_prefix: str, sha256: str | None) -> str | None:
    """Make the Analyze page's detail inputs belong to the image ``sha256``; call before drawing them.

    Details typed before the first upload belong to that upload (the usual order: patient, then
    photo). But details already saved with image A must never silently become image B's: the next
    lesion may be another patient's. So when B replaces A the inputs show B's saved details if this
    session has them, else they are emptied. Returns "cleared", "restored" or None (nothing changed).
    """
    owner = st.session_state.get(DETAILS_OWNER)
    if sha256 is None or owner is None or owner == sha256:
        return None
    saved = next((session.bucket(session.CASE_FIELDS).get(case_id)
                  for key, case_id in session.bucket(session.CASE_IDS).items() if key[0] == sha256), None)
    for name in CASE_DETAIL_FIELDS:
        st.session_state.pop(f"{key_prefix}_{name}", None)
        if saved and name in saved:
            st.session_state[f"{key_prefix}_{name}"] = saved[name]
    st.session_state[TYPED_CASE_FIELDS] = dict(saved or {})
    st.session_state[DETAILS_OWNER] = sha256 if saved else None
    return "restored" if saved else "cleared"


def detail_inputs(key_prefix: str, values: dict | None = None) -> dict:
    """Draw the six case-detail inputs (keys ``{key_prefix}_{field}``); return the non-empty values typed.

    ``values`` prefills them (the Review log's editor); without it the widgets' session state rules.
    """
    values = values or {}
    sex, age = values.get("sex"), values.get("age")
    # A value imported from CSV may lie outside the choices offered here; it must still show, not crash.
    sexes = list(dict.fromkeys([*SEX_OPTIONS, *([sex] if sex else [])]))
    a, b = st.columns(2)
    typed = {
        "patient_id": a.text_input("Patient ID", value=values.get("patient_id") or "", key=f"{key_prefix}_patient_id"),
        "lesion_id": b.text_input("Lesion ID", value=values.get("lesion_id") or "", key=f"{key_prefix}_lesion_id"),
        "body_site": a.text_input("Body site", value=values.get("body_site") or "", key=f"{key_prefix}_body_site",
                                  placeholder="e.g. left upper back"),
        "fitzpatrick": b.selectbox("Fitzpatrick skin type", list(FITZPATRICK), format_func=FITZPATRICK.get,
                                   index=_index(list(FITZPATRICK), values.get("fitzpatrick")),
                                   key=f"{key_prefix}_fitzpatrick", placeholder="not recorded"),
        "age": a.number_input("Age", min_value=0, max_value=max(AGE_MAX, age or 0), value=age, step=1,
                              key=f"{key_prefix}_age"),
        "sex": b.selectbox("Sex", sexes, index=_index(sexes, sex), key=f"{key_prefix}_sex",
                           placeholder="not recorded"),
    }
    return present(typed)


def present(fields: dict) -> dict:
    """``fields`` without empty values, text stripped: the shape ``ensure_case`` and the diffs compare."""
    stripped = {k: (v.strip() if isinstance(v, str) else v) for k, v in fields.items()}
    return {k: v for k, v in stripped.items() if v not in (None, "")}


def details_diff(saved: dict, typed: dict) -> dict:
    """The fields whose typed value differs from the saved one (``None`` where a field was cleared)."""
    return {name: typed.get(name) for name in CASE_DETAIL_FIELDS if typed.get(name) != saved.get(name)}


def restore_typed_details(key_prefix: str) -> None:
    """Put the Analyze page's typed case details back into its inputs after a visit to another page.

    Streamlit drops a widget's state on pages that do not draw it; without this, coming back would show
    empty inputs, and saving them would clear the details saved with the case.
    """
    typed = st.session_state.get(TYPED_CASE_FIELDS, {})
    for name, value in typed.items():
        st.session_state.setdefault(f"{key_prefix}_{name}", value)


def remember_typed_details(fields: dict) -> None:
    """Keep the Analyze page's typed case details in a plain session key (see ``restore_typed_details``)."""
    st.session_state[TYPED_CASE_FIELDS] = dict(fields)


def unsaved_details(store_slot: StoreSlot, case_id: int | None, case_fields: dict) -> dict:
    """Changes typed on the Analyze page since this session last saved the case's details (empty: none).

    Compared with what this page saved, not with the whole stored case, so an edit made meanwhile on the
    Review log is not undone by inputs that merely still show the older values. A typed value the
    database already holds (saved from the Review log, say) is not a change.
    """
    baselines = session.bucket(session.CASE_FIELDS)
    saved = baselines.get(case_id)
    if saved is None:
        return {}
    changes = details_diff(saved, case_fields)
    stored = _stored_details(store_slot, case_id) if changes else None
    if stored is None:
        return changes
    there = {name: value for name, value in changes.items() if stored.get(name) == value}
    baselines[case_id] = present({**saved, **there})
    return {name: value for name, value in changes.items() if name not in there}


def save_case_details(store_slot: StoreSlot, case_id: int, changes: dict) -> CaseRecord | None:
    """Save detail ``changes``; on failure keep them in the session for a retry and say why (None)."""
    pending = session.bucket(PENDING_CASE_FIELDS)
    try:
        if store_slot.store is None:
            raise DermascanError(store_slot.error or "The review database is unavailable.")
        record = store_slot.store.update_case_fields(case_id, **changes)
    except DermascanError as exc:
        pending[case_id] = {**pending.get(case_id, {}), **changes}
        st.error(f"{plain(exc)} The case details you typed are kept in this session; press **{RETRY_LABEL}** to try "
                 "again.", icon=":material/sync_problem:")
        return None
    # Only what was just saved stops being pending; other fields typed elsewhere stay for their retry.
    left = {k: v for k, v in pending.pop(case_id, {}).items() if k not in changes}
    if left:
        pending[case_id] = left
    st.toast("Case details saved to the review log.", icon=":material/check_circle:")
    return record


def save_typed_details(store_slot: StoreSlot, case_id: int, changes: dict) -> bool:
    """``save_case_details`` for the Analyze page: on success its inputs count as saved."""
    record = save_case_details(store_slot, case_id, changes)
    if record is None:
        return False
    saved = session.bucket(session.CASE_FIELDS)
    saved[case_id] = present({**saved.get(case_id, {}), **{name: getattr(record, name) for name in changes}})
    return True


def pending_case_details(case_id: int | None) -> dict | None:
    """Case details typed for ``case_id`` whose save failed, if any."""
    return session.bucket(PENDING_CASE_FIELDS).get(case_id)


def drop_pending_case_details(case_id: int) -> None:
    """Forget unsaved details for ``case_id`` (the reviewer saved the stored values as they are)."""
    session.bucket(PENDING_CASE_FIELDS).pop(case_id, None)


def _stored_details(store_slot: StoreSlot, case_id: int) -> dict | None:
    # None when unknown: every typed change then counts as unsaved, the safe side.
    try:
        case = store_slot.store.get_case(case_id) if store_slot.store is not None else None
    except DermascanError:
        return None
    return None if case is None else {name: getattr(case, name) for name in CASE_DETAIL_FIELDS}


def _index(options: list, value) -> int | None:
    return options.index(value) if value in options else None
