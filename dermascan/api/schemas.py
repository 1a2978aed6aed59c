"""Pydantic models of the API's answers and the decision body, so ``/docs`` shows every field.

Responses are built from the engine's records (``Analysis.to_dict``, ``CaseRecord.to_row``) and returned
as they are; these models document them (and validate the one body the API accepts as JSON).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..reviews.records import MANAGEMENT_OPTIONS, MAX_TEXT_CHARS


class Prediction(BaseModel):
    """One class of the differential."""

    label: str
    probability: float = Field(ge=0, le=1)


class Gate(BaseModel):
    """The input gate: may the model judge this image? Every reason is a plain sentence."""

    status: Literal["ok", "indeterminate"]
    reasons: list[str]
    ood_score: float | None = Field(description="distance from the training images' features (null: OOD off)")
    ood_threshold: float | None = Field(description="scores above this are out of distribution")
    quality: dict[str, float] = Field(description="exposure, sharpness and lesion-area measures")
    notes: list[str] = Field(description="e.g. that out-of-distribution detection is off for this model")


class PredictResponse(BaseModel):
    """The original backend's fields (first six, same names and meaning) plus the engine's additions."""

    model_version: str
    predictions: list[Prediction] = Field(description="every class, most to least likely")
    malignant_score: float = Field(ge=0, le=1, description="sum of the malignant classes' probabilities")
    grad_cam: str | None = Field(description="the Grad-CAM overlay as a PNG data URI (null: include_cam=false or "
                                             "the model has no spatial layer)")
    explanation: str
    processing_time_ms: float = Field(description="this request's decoding, queueing and model time")
    model_name: str | None = None
    image_sha256: str
    file: str | None = Field(None, description="the uploaded file's name, as sent")
    top_label: str
    display_names: dict[str, str]
    triage: Literal["low", "medium", "high", "indeterminate"] = Field(
        description="the triage band; 'indeterminate' (retake or refer) when the input gate failed")
    explained_label: str
    preprocessing: str
    resize: str
    cam_layer: str | None
    warnings: list[str]
    cam_method: str | None = Field(None, description="the class-activation method of the map (null: no map)")
    tta: list[str] = Field(default_factory=list, description="the test-time augmentation views the model card "
                                                             "averages over (empty: none)")
    faithfulness: float | None = Field(None, ge=-1, le=1, description="share of the explained class's probability "
                                       "lost when the map's top 20% is removed (null: not measured)")
    faithfulness_sentence: str | None = None
    stability: float | None = Field(None, ge=0, le=1, description="share of flipped / rotated views whose top class "
                                    "is top_label (null: not measured)")
    stability_views: list[dict] = Field(default_factory=list, description="each view's top_label and malignant_score")
    stability_sentence: str | None = None
    malignant_score_reliable: bool = Field(True, description="false when the input gate failed")
    gate: Gate | None = Field(None, description="the input gate's verdict (null: not checked)")
    skin_tone: str | None = Field(None, description="echoed; an image-only model's output does not depend on it")
    lesion_location: str | None = Field(None, description="echoed; an image-only model's output does not depend "
                                                          "on it (stored as body_site with save=true)")
    case_id: int | None = Field(None, description="the review-log case (save=true only)")


class Batching(BaseModel):
    """What the dynamic batcher has done since start (compiled calls and the images through them)."""

    engine_calls: int
    images: int
    largest_batch: int
    mean_batch: float


class Health(BaseModel):
    """``GET /api/health`` once the model is ready (503 ``{"status": "loading"}`` before)."""

    status: Literal["healthy"]
    uptime_seconds: float
    model_name: str
    model_version: str
    labels: list[str]
    input_size: list[int]
    cam_layer: str | None
    batching: Batching


class ModelInfo(BaseModel):
    """``GET /api/model``: the card as the Model page shows it, and what the engine detected."""

    card: dict
    engine: dict


class BatchItem(BaseModel):
    """One file of ``POST /api/batch``: a result or a one-line error with the status it would have had alone."""

    file: str | None
    result: PredictResponse | None = None
    error: str | None = None
    status: int


class BatchResponse(BaseModel):
    """``POST /api/batch``: one item per uploaded file, in upload order."""

    results: list[BatchItem]


class DecisionIn(BaseModel):
    """A reviewer's decision (``PUT /api/cases/{id}/decision``); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    reviewer_agrees: bool | None = None
    reviewer_diagnosis: str | None = Field(None, max_length=200)
    management: Literal[MANAGEMENT_OPTIONS] | None = None  # type: ignore[valid-type]
    note: str = Field("", max_length=MAX_TEXT_CHARS)
    reviewer: str | None = Field(None, max_length=200)


class DecisionOut(BaseModel):
    """The stored current decision."""

    case_id: int
    reviewer_agrees: bool | None
    reviewer_diagnosis: str | None
    management: str | None
    note: str
    reviewer: str | None
    decided_at: str


class CaseList(BaseModel):
    """``GET /api/cases``: a page of cases (newest first) as the Review log's export columns."""

    total: int
    offset: int
    limit: int
    cases: list[dict]
