"""Put each analysed image into the review log once, as soon as it is analysed, and keep its details editable."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.inference.analysis import Analysis
from dermascan.inference.options import PreprocessingOption
from dermascan.reviews import CaseRecord
from dermascan.reviews.records import CASE_DETAIL_FIELDS

from . import session
from .presentation import FITZPATRICK, SEX_OPTIONS, plain
from .review_store import StoreSlot

SOURCE = "single"  # one image analysed on the Analyze page (batch analysis writes "batch")
DRAFT = "case"  # key prefix of the details typed before any image is uploaded (they go with the next new image)
AGE_MAX = 120  # the Age input's usual bound; a stored age above it (the store allows 150) raises it, not crashes
RETRY_LABEL = "Retry saving case details"


def details_prefix(sha256: str | None) -> str:
    """Key prefix of the Analyze page's case-detail inputs for the image ``sha256`` (None: no image yet).

    One set of widgets per image, so Streamlit keeps each image's typed details apart: a widget whose
    state is replaced under the same key keeps showing its old text in the browser, and sends it back.
    """
    return DRAFT if sha256 is None else f"{DRAFT}_{sha256[:16]}"


@dataclass(frozen=True)
class CaseSubject:
    """One case of the Analyze page: an image analysed by one model with one set of options and CAM method.

    Every per-case widget key, the pending-decision key and the case id all derive from one subject,
    so what a reviewer typed into a widget can only be saved to the case that widget was drawn for.
    """

    sha256: str
    model_key: str
    options: PreprocessingOption
    cam_method: str | None = None  # the stored case names its method: another method is another case

    @property
    def store_key(self) -> tuple:
        """The key of ``session.CASE_IDS``."""
        return (self.sha256, self.model_key, self.options, self.cam_method)

    @property
    def token(self) -> str:
        """A short widget-key part naming this subject (image, model and options)."""
        digest = hashlib.sha256(repr(self.store_key).encode()).hexdigest()[:8]
        return f"{self.sha256[:16]}_{digest}"

    @property
    def details_prefix(self) -> str:
        """Key prefix of this image's case-detail inputs (details describe the lesion: one set per image)."""
        return details_prefix(self.sha256)

    @property
    def pending_key(self) -> str:
        """Where a decision on this subject waits when it could not be saved."""
        return f"analyze:{self.sha256}:{self.model_key}:{self.options}:{self.cam_method}"

    @property
    def case_id(self) -> int | None:
        """The review-log id of this subject's case, if this session has stored it."""
        return session.bucket(session.CASE_IDS).get(self.store_key)


def ensure_case(store_slot: StoreSlot, analysis: Analysis, subject: CaseSubject, *, case_fields: dict,
                off_card: bool = False) -> int | None:
    """The review-log id of ``subject``'s case, adding it now (with ``case_fields``) if this session has not yet.

    ``case_fields`` (patient_id, lesion_id, body_site, fitzpatrick, age, sex) go into the
    database only; ``off_card`` marks an analysis whose options differ from the model card.
    Returns None (after a warning) when the store is unusable; the next
    rerun tries again, so the AI result is saved as soon as the database is back.
    """
    if analysis.sha256 != subject.sha256:
        raise ValueError("the analysis is not of this case's image")
    if subject.case_id is not None:
        return subject.case_id
    if store_slot.store is None:
        st.warning(f"This result is not in the review log yet: {plain(store_slot.error)}",
                   icon=":material/sync_problem:")
        return None
    try:
        record = CaseRecord.from_analysis(analysis, session_id=session.session_id(), source=SOURCE, **case_fields)
        record.off_card = bool(off_card)
        case_id = store_slot.store.add_case(record)
    except ValueError as exc:  # InvalidRecord, a case field the store refuses: first, a retry cannot help
        st.warning(f"This result is not in the review log yet: {plain(exc)}.", icon=":material/sync_problem:")
        return None
    except DermascanError as exc:
        st.warning(f"This result is not in the review log yet: {plain(exc)} It will be retried.",
                   icon=":material/sync_problem:")
        return None
    session.bucket(session.CASE_IDS)[subject.store_key] = case_id
    session.bucket(session.CASE_FIELDS)[case_id] = dict(case_fields)
    return case_id


def continue_case(subject: CaseSubject, case: CaseRecord) -> int:
    """Make the stored ``case`` ``subject``'s case in this session (an image reviewed before); returns its id.

    Its stored details count as saved by this page. Details typed before the upload (the draft) were meant for
    this image: they become its typed, unsaved details, shown against the stored ones, and leave the draft, so
    they can never go with a later image.
    """
    stored = present({name: getattr(case, name) for name in CASE_DETAIL_FIELDS})
    session.bucket(session.CASE_IDS)[subject.store_key] = case.case_id
    session.bucket(session.CASE_FIELDS)[case.case_id] = stored
    draft = typed_in_widgets(DRAFT) or typed_details(DRAFT)
    if draft and typed_details(subject.details_prefix) is None:
        session.bucket(session.TYPED_CASE_FIELDS)[subject.details_prefix] = {**stored, **draft}
        _clear_draft()
    return case.case_id


def _clear_draft() -> None:
    session.bucket(session.TYPED_CASE_FIELDS)[DRAFT] = {}
    for name in CASE_DETAIL_FIELDS:
        st.session_state.pop(f"{DRAFT}_{name}", None)


def latest_case_of_image(sha256: str) -> int | None:
    """The case this session stored last for the image ``sha256`` (any model or options), if any."""
    ids = [case_id for key, case_id in session.bucket(session.CASE_IDS).items() if key[0] == sha256]
    return ids[-1] if ids else None


def typed_in_widgets(key_prefix: str) -> dict | None:
    """The details held by the detail inputs ``key_prefix`` right now (None: not drawn in the last run).

    Read at the top of a run, this is what the browser sent, also for inputs this run will not draw.
    """
    keys = [f"{key_prefix}_{name}" for name in CASE_DETAIL_FIELDS]
    if not any(key in st.session_state for key in keys):
        return None
    return present({name: st.session_state.get(key) for name, key in zip(CASE_DETAIL_FIELDS, keys)})


def remember_typed(key_prefix: str, fields: dict | None = None) -> None:
    """Keep what the inputs ``key_prefix`` hold (or ``fields``) in a plain session key.

    Streamlit drops a widget's state on runs that do not draw it (another page, another image); without
    this, coming back would show empty inputs, and saving them would clear the details saved with the case.
    """
    fields = typed_in_widgets(key_prefix) if fields is None else fields
    if fields is not None:
        session.bucket(session.TYPED_CASE_FIELDS)[key_prefix] = dict(fields)


def typed_details(key_prefix: str) -> dict | None:
    """What was last typed into the inputs ``key_prefix`` in this session, if they were ever drawn."""
    return session.bucket(session.TYPED_CASE_FIELDS).get(key_prefix)


def details_for_image(store_slot: StoreSlot, sha256: str) -> dict:
    """What the Analyze page's detail inputs for the image ``sha256`` start from when drawn afresh.

    What was typed for this image in this session while it is not saved; else what the database holds for
    the image's case; else, for an image without a case yet, what was typed before it was uploaded (the
    usual order: patient, then photo; taken by that one image only, the next may be another patient's).
    """
    prefix = details_prefix(sha256)
    typed = typed_details(prefix)
    case_id = latest_case_of_image(sha256)
    if case_id is None:
        if typed is None:
            typed = typed_in_widgets(DRAFT) or typed_details(DRAFT) or {}
            _clear_draft()
        return typed
    baseline = session.bucket(session.CASE_FIELDS).get(case_id, {})
    if typed is not None and details_diff(baseline, typed):
        return typed
    stored = _stored_details(store_slot, case_id)
    return baseline if stored is None else present(stored)


def unsaved_for_image(sha256: str) -> bool:
    """Details typed for the image ``sha256`` in this session that are not saved with its case."""
    typed = typed_details(details_prefix(sha256))
    if not typed:
        return False
    case_id = latest_case_of_image(sha256)
    return case_id is None or bool(details_diff(session.bucket(session.CASE_FIELDS).get(case_id, {}), typed))


def note_image_change(sha256: str | None) -> str | None:
    """Record that Analyze now shows ``sha256``; the image shown before, when this replaced another one."""
    before = st.session_state.get(session.DETAILS_IMAGE)
    if before is not None:
        remember_typed(details_prefix(before))  # typed in the same run as the new upload: still the old image's
    if sha256 is not None:
        st.session_state[session.DETAILS_IMAGE] = sha256
    return before if sha256 is not None and before not in (None, sha256) else None


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
    pending = session.bucket(session.PENDING_CASE_FIELDS)
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
    return session.bucket(session.PENDING_CASE_FIELDS).get(case_id)


def drop_pending_case_details(case_id: int) -> None:
    """Forget unsaved details for ``case_id`` (the reviewer saved the stored values as they are)."""
    session.bucket(session.PENDING_CASE_FIELDS).pop(case_id, None)


def _stored_details(store_slot: StoreSlot, case_id: int) -> dict | None:
    # None when unknown: every typed change then counts as unsaved, the safe side.
    try:
        case = store_slot.store.get_case(case_id) if store_slot.store is not None else None
    except DermascanError:
        return None
    return None if case is None else {name: getattr(case, name) for name in CASE_DETAIL_FIELDS}


def _index(options: list, value) -> int | None:
    return options.index(value) if value in options else None


def release_details(sha256: str) -> None:
    """Hand the details typed for an image that could not be analysed (no case holds them) to the next image."""
    typed = session.bucket(session.TYPED_CASE_FIELDS)
    if latest_case_of_image(sha256) is None and typed.get(details_prefix(sha256)):
        typed[DRAFT] = typed[details_prefix(sha256)]
