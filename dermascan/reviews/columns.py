"""The review columns, defined once: every field of a case and a decision, in table and file order.

``CaseRecord`` / ``Decision`` validation, the store's INSERT / SELECT lists, the CSV header, the CSV
import and ``CaseRecord.to_row`` all read ``CASE`` and ``DECISION``; a new column is one line here
(plus its dataclass field and a migration). The migrations in ``schema.py`` are deliberately *not*
derived from this: they are frozen history, and editing a column here must never rewrite version 1.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBABILITY_PREFIX = "p_"
"""CSV columns named ``p_<label>`` hold one label's probability each."""


@dataclass(frozen=True)
class Column:
    """One stored field.

    ``kind`` says how the field is validated, stored and read back from a CSV cell:
    ``id`` (assigned by the store; exported, ignored on import), ``timestamp`` (ISO 8601, UTC),
    ``sha256``, ``label`` (required text), ``version`` (text, empty rather than NULL), ``text`` (optional
    text), ``skin_type`` (Fitzpatrick 1..6), ``age``, ``probability`` (0..1), ``probabilities`` (label ->
    probability, JSON in the database, ``p_<label>`` columns in a CSV), ``image`` (thumbnail bytes),
    ``yes_no``, ``management`` (one of the management options), ``note`` (text, empty rather than NULL),
    ``score`` (any finite number).
    ``description``: the one-line meaning shown for an exported column; ``None``: the column is not exported.
    """

    name: str
    kind: str
    description: str | None = None

    @property
    def exported(self) -> bool:
        """True if the column is in the CSV export (and read back by the import)."""
        return self.description is not None


CASE: tuple[Column, ...] = (
    Column("case_id", "id", "Id of the case in the database it was exported from (ignored on import)."),
    Column("created_at", "timestamp",
           "When the image was analysed (ISO 8601, UTC); identifies the case with image_sha256, model_version."),
    Column("session_id", "text", "Review session the case was analysed in."),
    Column("source", "text", "Where the image came from (e.g. upload, camera, import)."),
    Column("file_name", "text", "Name of the uploaded image file."),
    Column("image_sha256", "sha256", "SHA-256 of the image bytes (required)."),
    Column("patient_id", "text", "Patient identifier entered by the reviewer."),
    Column("lesion_id", "text", "Lesion identifier entered by the reviewer."),
    Column("body_site", "text", "Anatomical site of the lesion."),
    Column("fitzpatrick", "skin_type", "Fitzpatrick skin type, 1 to 6."),
    Column("age", "age", "Patient age in years."),
    Column("sex", "text", "Patient sex as entered."),
    Column("model_name", "text", "Name of the model from its card."),
    Column("model_version", "version", "Version of the model from its card."),
    Column("preprocessing", "text", "Pixel scaling the model was fed with."),
    Column("resize", "text", "How the image was resized to the model input."),
    Column("cam_layer", "text", "Layer the Grad-CAM heatmap was computed on."),
    Column("top_label", "label", "The model's most probable label (required)."),
    Column("top_probability", "probability", "Probability of top_label, 0 to 1."),
    Column("malignant_score", "probability", "Summed probability of the malignant labels, 0 to 1."),
    Column("triage", "text",
           "Triage band derived from malignant_score, or 'indeterminate' when the input gate failed."),
    Column("explanation", "text", "The model's one-paragraph explanation."),
    # Not exported: the label -> probability map (exported as p_<label> columns instead), the thumbnail (never
    # leaves the database), the class the stored explanation was computed for and the last case-details edit.
    Column("probabilities", "probabilities"),
    Column("thumbnail", "image"),
    Column("explained_label", "text"),
    Column("updated_at", "timestamp"),
    Column("cam_method", "text", "Class-activation method the heatmap was computed with (e.g. gradcam)."),
    Column("off_card", "yes_no",
           "yes: the image was fed with options other than the model card's (ML mode); left out of triage statistics."),
    Column("gate", "text",
           "Input gate: ok, or indeterminate (the model should not judge this image); empty: not checked."),
    Column("gate_reasons", "text", "Why the input gate failed, plain sentences separated by ' | '."),
    Column("faithfulness", "score",
           "Drop of the explained class's probability when the most highlighted region is removed (-1 to 1)."),
    Column("stability", "probability",
           "Share of the test-time views (flips, rotations) whose top class equals top_label, 0 to 1."),
    Column("dx", "text", "True diagnosis when known (e.g. from a labels file given with a batch)."),
)
"""The ``cases`` table's columns (the ``CaseRecord`` fields stored there), in table order."""

DECISION: tuple[Column, ...] = (
    Column("reviewer_agrees", "yes_no", "yes / no: whether the reviewer agrees with top_label (empty: not said)."),
    Column("reviewer_diagnosis", "text", "The reviewer's diagnosis."),
    Column("management", "management", "Planned management: reassure, monitor, biopsy, excise, refer or other."),
    Column("note", "note", "Free-text note of the reviewer."),
    Column("reviewer", "text", "Who made the decision."),
    Column("decided_at", "timestamp",
           "When the decision was made (ISO 8601, UTC); on import a later one replaces the stored decision."),
)
"""The ``decisions`` / ``decision_history`` columns (the ``Decision`` fields), in table order."""

PROBABILITY_DESCRIPTION = (
    "Probability of that label, 0 to 1 (one column per label seen in the exported cases, sorted).")


def names(columns: tuple[Column, ...], *, kind: str | None = None, exported: bool | None = None) -> tuple[str, ...]:
    """The names of ``columns``, optionally only those of one ``kind`` or only the (non-)exported ones."""
    return tuple(c.name for c in columns
                 if (kind is None or c.kind == kind) and (exported is None or c.exported == exported))


CASE_NAMES = names(CASE)
DECISION_NAMES = names(DECISION)
CSV_CASE_NAMES = names(CASE, exported=True)
