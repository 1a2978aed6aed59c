"""Review records: one analysed image (``CaseRecord``) and a clinician's decision on it (``Decision``).

Both validate and normalise themselves on construction (and again when the store writes them), so
the database and the CSV export only ever hold values the dashboard can show and re-import.
Validation messages name the field, never its value: they may end up in a log.
"""

from __future__ import annotations

import math
import numbers
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import DermascanError
from .columns import CASE, CSV_CASE_NAMES, DECISION, PROBABILITY_PREFIX, names

if TYPE_CHECKING:  # type-only: importing the engine would pull in TensorFlow
    from dermascan.inference.analysis import Analysis

MANAGEMENT_OPTIONS = ("reassure", "monitor", "biopsy", "excise", "refer", "other")
"""Allowed ``Decision.management`` values (stored and exported as these exact words)."""

MANAGEMENT_LABELS = {
    "reassure": "Reassure / no action",
    "monitor": "Monitor (follow-up, dermoscopy)",
    "biopsy": "Biopsy",
    "excise": "Excise",
    "refer": "Refer",
    "other": "Other (see note)",
}
"""Human wording of each management option, for select boxes."""

MAX_TEXT_CHARS = 10_000
MAX_INDEXED_TEXT_CHARS = 500
INDEXED_TEXT_FIELDS = ("session_id", "patient_id", "model_version", "triage")
"""The case texts the database indexes (the review log's filters and sorts, the case key), limited to
``MAX_INDEXED_TEXT_CHARS`` when a case is written: a PostgreSQL index entry holds at most 2,704 bytes and a UTF-8
character takes up to 4, so a longer one would save on SQLite and fail on PostgreSQL. The same limit holds on both
backends (a case must fit either); cases already stored are read as they are."""
MAX_THUMBNAIL_BYTES = 1_000_000
MAX_LABELS = 1_000
# A float32 softmax can round a certainty just above 1 once widened to float64.
_PROB_TOLERANCE = 1e-6
_SHA256 = re.compile(r"[0-9a-f]{64}")
SURROGATES = re.compile("[\ud800-\udfff]")
"""Lone surrogates: a Python string may hold them (JSON's ``"\\ud800"`` decodes to one), UTF-8 text cannot."""

CASE_TEXT_FIELDS = names(CASE, kind="text")
DECISION_TEXT_FIELDS = names(DECISION, kind="text")
DECISION_CONTENT_FIELDS = tuple(name for name in names(DECISION) if name != "decided_at")
"""What a decision says, as opposed to when it was made: two decisions with these equal are the same."""
CASE_DETAIL_FIELDS = ("patient_id", "lesion_id", "body_site", "fitzpatrick", "age", "sex")
"""The clinical context a reviewer types about a case: the only case fields that can change after it is stored."""


class InvalidRecord(DermascanError, ValueError):
    """A case or decision field is missing, of the wrong type or out of range; the message names the field only.

    Also a ``ValueError``, so code that validates any input with ``except ValueError`` catches it too.
    """


def utc_now() -> str:
    """Current time as the canonical timestamp: ISO 8601, UTC, microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_session_id() -> str:
    """A random id for one review session (group the cases a reviewer analysed together)."""
    return uuid.uuid4().hex


def normalize_timestamp(value: Any, name: str = "timestamp") -> str:
    """``value`` (ISO 8601 text or ``datetime``) as the canonical UTC string; naive times count as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidRecord(f"{name} is not an ISO 8601 date and time") from None
    else:
        raise InvalidRecord(f"{name} is missing")
    if moment.tzinfo is None:
        # We only ever write UTC, so a zone-less value is one of ours with the offset stripped.
        moment = moment.replace(tzinfo=UTC)
    # Canonical form matters: cases are matched and decisions ordered by comparing these strings.
    try:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise InvalidRecord(f"{name} is out of range") from None


def _text(name: str, value: Any, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidRecord(f"{name} is empty")
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be text")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidRecord(f"{name} is longer than {MAX_TEXT_CHARS:,} characters")
    if "\x00" in value:
        raise InvalidRecord(f"{name} contains a NUL character")
    if not value.isascii() and SURROGATES.search(value):
        # Either database driver would raise UnicodeEncodeError on one, outside every database error.
        raise InvalidRecord(f"{name} contains a character that is not valid Unicode")
    return value


def _probability(name: str, value: Any, *, required: bool = False) -> float | None:
    if value is None:
        if required:
            raise InvalidRecord(f"{name} is empty")
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidRecord(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number) or not -_PROB_TOLERANCE <= number <= 1 + _PROB_TOLERANCE:
        raise InvalidRecord(f"{name} must be between 0 and 1")
    return number


def _score(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidRecord(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRecord(f"{name} must be a finite number")
    return number


def _whole(name: str, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidRecord(f"{name} must be a whole number")
    if isinstance(value, numbers.Integral):
        number = int(value)
    else:
        as_float = float(value)
        if not as_float.is_integer():
            raise InvalidRecord(f"{name} must be a whole number")
        number = int(as_float)
    if not low <= number <= high:
        raise InvalidRecord(f"{name} must be between {low} and {high}")
    return number


@dataclass(kw_only=True)
class Decision:
    """A clinician's review of one case. ``decided_at`` defaults to now (UTC)."""

    reviewer_agrees: bool | None = None
    reviewer_diagnosis: str | None = None
    management: str | None = None
    note: str = ""
    reviewer: str | None = None
    decided_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> Decision:
        """Check and normalise every field in place (``InvalidRecord`` naming the field); returns ``self``."""
        if self.reviewer_agrees is not None and not isinstance(self.reviewer_agrees, bool):
            raise InvalidRecord("reviewer_agrees must be yes, no or empty")
        for name in DECISION_TEXT_FIELDS:
            setattr(self, name, _text(name, getattr(self, name)))
        self.note = _text("note", self.note) or ""
        if self.management is not None:
            if not isinstance(self.management, str):
                raise InvalidRecord("management must be text")
            management = self.management.strip().lower()
            if management == "":
                self.management = None
            elif management not in MANAGEMENT_OPTIONS:
                raise InvalidRecord(f"management must be one of: {', '.join(MANAGEMENT_OPTIONS)}")
            else:
                self.management = management
        self.decided_at = normalize_timestamp(self.decided_at, "decided_at")
        return self

    def same_content(self, other: Decision | None) -> bool:
        """True if ``other`` says the same thing (``decided_at`` ignored)."""
        return other is not None and all(
            getattr(self, name) == getattr(other, name)
            for name in DECISION_CONTENT_FIELDS
        )


_SHOWN_CHARS = 80


def _one_line(text: str) -> str:
    # Typed or imported text may hold line breaks or 10,000 characters; a summary line shows a short, flat copy.
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_CHARS else flat[: _SHOWN_CHARS - 1] + "…"


def describe_decision(decision: Decision) -> str:
    """A short reading of a decision for messages: reviewer, management, diagnosis, agreement (never the note)."""
    parts = [decision.management or "no management chosen"]
    if decision.reviewer_diagnosis:
        parts.append(f"diagnosis {_one_line(decision.reviewer_diagnosis)}")
    if decision.reviewer_agrees is not None:
        parts.append("agrees with the AI" if decision.reviewer_agrees else "disagrees with the AI")
    when = decision.decided_at[:16].replace("T", " ")
    return f"{_one_line(decision.reviewer or 'unnamed reviewer')}: {', '.join(parts)} (decided {when} UTC)"


@dataclass(frozen=True)
class DecisionChange:
    """A stored case whose decisions an import touched.

    ``previous`` is the case's current decision before the import (``None``: it had none). ``became_current``:
    ``incoming`` replaced it (``previous`` stays in the history); otherwise ``incoming`` was older than
    ``previous`` and was only added to the history.
    """

    case_id: int
    file_name: str | None
    previous: Decision | None
    incoming: Decision
    became_current: bool

    def describe(self) -> str:
        """One line for the import summary: which case, whose decision, previous -> new."""
        case = f"Case {self.case_id}" + (f" ({_one_line(self.file_name)})" if self.file_name else "")
        before = describe_decision(self.previous) if self.previous is not None else "no decision"
        if self.became_current:
            return f"{case}: {before} -> {describe_decision(self.incoming)}"
        return (f"{case}: kept in the history only, older than the current decision ({before}): "
                f"{describe_decision(self.incoming)}")


@dataclass(kw_only=True)
class CaseRecord:
    """One analysed image with its context, the model's output and (optionally) the current decision.

    ``case_id`` is assigned by the store. ``probabilities`` maps every label to its probability.
    ``thumbnail`` is optional encoded image bytes (PNG/JPEG, at most 1 MB); it is never exported.
    ``explained_label`` is the class the stored explanation/heatmap was computed for (not exported either).
    ``updated_at`` is when its case details were last edited after it was stored (None: never; not exported).
    """

    image_sha256: str
    top_label: str
    case_id: int | None = None
    created_at: str = field(default_factory=utc_now)
    session_id: str | None = None
    source: str | None = None
    file_name: str | None = None
    patient_id: str | None = None
    lesion_id: str | None = None
    body_site: str | None = None
    fitzpatrick: int | None = None
    age: int | None = None
    sex: str | None = None
    model_name: str | None = None
    model_version: str = ""
    preprocessing: str | None = None
    resize: str | None = None
    cam_layer: str | None = None
    top_probability: float | None = None
    malignant_score: float | None = None
    triage: str | None = None
    cam_method: str | None = None
    off_card: bool | None = None
    gate: str | None = None
    gate_reasons: str | None = None
    faithfulness: float | None = None
    stability: float | None = None
    dx: str | None = None
    explanation: str | None = None
    explained_label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    thumbnail: bytes | None = field(default=None, repr=False)
    decision: Decision | None = None
    updated_at: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> CaseRecord:
        """Check and normalise every field in place (``InvalidRecord`` naming the field); returns ``self``."""
        if self.case_id is not None and (isinstance(self.case_id, bool) or not isinstance(self.case_id, int)):
            raise InvalidRecord("case_id must be a whole number")
        sha = _text("image_sha256", self.image_sha256, required=True).lower()
        if not _SHA256.fullmatch(sha):
            raise InvalidRecord("image_sha256 must be 64 hexadecimal characters")
        self.image_sha256 = sha
        self.top_label = _text("top_label", self.top_label, required=True)
        self.created_at = normalize_timestamp(self.created_at, "created_at")
        if self.updated_at in (None, ""):
            self.updated_at = None
        else:
            self.updated_at = normalize_timestamp(self.updated_at, "updated_at")
        for name in CASE_TEXT_FIELDS:
            setattr(self, name, _text(name, getattr(self, name)))
        # Part of the duplicate-detection key, so never NULL (NULLs never compare equal in SQL).
        self.model_version = _text("model_version", self.model_version) or ""
        self.fitzpatrick = _whole("fitzpatrick", self.fitzpatrick, 1, 6)
        self.age = _whole("age", self.age, 0, 150)
        self.top_probability = _probability("top_probability", self.top_probability)
        self.malignant_score = _probability("malignant_score", self.malignant_score)
        self.stability = _probability("stability", self.stability)
        self.faithfulness = _score("faithfulness", self.faithfulness)
        if self.off_card is not None and not isinstance(self.off_card, bool):
            raise InvalidRecord("off_card must be yes, no or empty")
        if not isinstance(self.probabilities, dict):
            raise InvalidRecord("probabilities must map labels to numbers")
        if len(self.probabilities) > MAX_LABELS:
            raise InvalidRecord(f"probabilities has more than {MAX_LABELS} labels")
        # Labels come from the model card, not from the patient, so naming them in a message is fine.
        self.probabilities = {
            _text("label", label, required=True): _probability(f"p_{str(label)[:40]}", p, required=True)
            for label, p in self.probabilities.items()
        }
        if self.thumbnail is not None:
            if not isinstance(self.thumbnail, (bytes, bytearray, memoryview)):
                raise InvalidRecord("thumbnail must be encoded image bytes")
            self.thumbnail = bytes(self.thumbnail)
            if len(self.thumbnail) > MAX_THUMBNAIL_BYTES:
                raise InvalidRecord(f"thumbnail is larger than {MAX_THUMBNAIL_BYTES:,} bytes")
        if self.decision is not None:
            if not isinstance(self.decision, Decision):
                raise InvalidRecord("decision must be a Decision")
            self.decision.validate()
        return self

    def check_writable(self, names: Iterable[str] = INDEXED_TEXT_FIELDS) -> CaseRecord:
        """Refuse (``InvalidRecord`` naming the field) an indexed text longer than the database can index; returns
        ``self``. Checked before a case is written (only ``names``: the fields an edit changes), never when one is
        read (see ``INDEXED_TEXT_FIELDS``)."""
        for name in set(names) & set(INDEXED_TEXT_FIELDS):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_INDEXED_TEXT_CHARS:
                raise InvalidRecord(f"{name} is longer than {MAX_INDEXED_TEXT_CHARS:,} characters")
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the same analysis across databases: (image_sha256, created_at, model_version)."""
        return self.image_sha256, self.created_at, self.model_version

    @classmethod
    def from_analysis(cls, analysis: Analysis, *, session_id: str | None = None, source: str | None = "upload",
                      patient_id: str | None = None, lesion_id: str | None = None, body_site: str | None = None,
                      fitzpatrick: int | None = None, age: int | None = None, sex: str | None = None,
                      thumbnail: bytes | None = None, created_at: str | datetime | None = None,
                      decision: Decision | None = None) -> CaseRecord:
        """Build a record from an ``Analysis`` (duck-typed) plus the context the reviewer entered.

        Reads ``sha256, name, labels, probabilities, top_label, malignant_score, triage, model_name,
        model_version, preprocessing, resize, cam_layer, explanation`` (and ``explained_label``, ``cam_method``,
        ``gate_status``, ``gate_reasons``, ``faithfulness``, ``stability`` if present); the image and heatmap are
        not kept.
        """
        labels = [str(label) for label in analysis.labels]
        probs = [float(p) for p in analysis.probabilities]
        if len(labels) != len(probs):
            raise InvalidRecord("the analysis has a different number of labels and probabilities")
        probabilities = dict(zip(labels, probs, strict=True))
        top_label = str(analysis.top_label)
        return cls(
            image_sha256=analysis.sha256, top_label=top_label, created_at=created_at or utc_now(),
            session_id=session_id, source=source, file_name=analysis.name, patient_id=patient_id,
            lesion_id=lesion_id, body_site=body_site, fitzpatrick=fitzpatrick, age=age, sex=sex,
            model_name=analysis.model_name, model_version=analysis.model_version or "",
            preprocessing=analysis.preprocessing, resize=analysis.resize, cam_layer=analysis.cam_layer,
            top_probability=probabilities.get(top_label), malignant_score=analysis.malignant_score,
            triage=analysis.triage, explanation=analysis.explanation,
            explained_label=getattr(analysis, "explained_label", None), probabilities=probabilities,
            cam_method=getattr(analysis, "cam_method", None),
            faithfulness=getattr(analysis, "faithfulness", None), stability=getattr(analysis, "stability", None),
            gate=getattr(analysis, "gate_status", None), gate_reasons=getattr(analysis, "gate_reasons", None) or None,
            thumbnail=thumbnail, decision=decision,
        )

    def to_row(self) -> dict[str, Any]:
        """The export columns as a flat dict (unsanitised, ``None`` for empty) for tables such as st.dataframe.

        Keys follow ``CSV_COLUMNS`` with this record's ``p_<label>`` columns (sorted) after the case columns.
        """
        row: dict[str, Any] = {name: getattr(self, name) for name in CSV_CASE_NAMES}
        for label in sorted(self.probabilities):
            row[PROBABILITY_PREFIX + label] = self.probabilities[label]
        decision = self.decision
        row.update({name: getattr(decision, name) if decision else None for name in names(DECISION)})
        return row
