"""``POST /api/predict`` and ``POST /api/batch``: the original backend's contract over the dynamic batcher.

Decoding and preprocessing run on the request's worker thread; the model call is the batcher's; the
PNG overlay is encoded back on the request's thread, so the model thread only ever runs the model.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..cam import METHOD_INFO, METHOD_NAMES
from ..errors import DermascanError
from ..render.overlay import DEFAULT_ALPHA
from ..reviews import CaseRecord
from .errors import ApiError, status_for
from .schemas import BatchResponse, PredictResponse
from .security import require_key
from .uploads import prepare_upload, read_upload, safe_name

router = APIRouter()
SOURCE = "api"  # the review log's source for cases posted through the API ("single" / "batch" on the pages)
MAX_FIELD_CHARS = 200

Text = Annotated[str | None, Form(max_length=MAX_FIELD_CHARS)]
Alpha = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False, description="overlay opacity")]
CamClass = Annotated[str | None, Query(max_length=MAX_FIELD_CHARS, description="explain this label (default: top)")]
CamMethod = Annotated[str | None, Form(max_length=MAX_FIELD_CHARS, description="class-activation method, one of: "
                                       + "; ".join(info[2] for info in METHOD_INFO.values())
                                       + f" ({', '.join(METHOD_NAMES)}; default: the model card's)")]


def _state(request: Request):
    return request.app.state.server


def _class_index(model, cam_class: str | None) -> int:
    return model.class_index(cam_class.strip() if cam_class else None)  # CardError (422) for an unknown label


def _cam_method(cam_method: str | None) -> str | None:
    """The requested CAM method (None: the card's); 422 naming the choices, never echoing the value."""
    method = cam_method.strip() if cam_method else None
    if method and method not in METHOD_NAMES:
        raise ApiError(422, f"cam_method must be one of: {', '.join(METHOD_NAMES)}.")
    return method or None


def _record(analysis, alpha: float, include_cam: bool, started: float) -> dict:
    record = analysis.to_dict(alpha, include_overlay=include_cam)
    record["processing_time_ms"] = round((time.perf_counter() - started) * 1000.0, 2)
    return record


@router.post("/api/predict", response_model=PredictResponse, summary="Analyse one lesion image",
             responses={400: {"description": "unreadable image"}, 401: {"description": "save=true without a key"},
                        403: {"description": "save=true with a wrong key"}, 413: {"description": "too large"},
                        415: {"description": "not a supported image"}, 422: {"description": "bad parameter"},
                        503: {"description": "model loading or queue full"}})
async def predict(request: Request, file: Annotated[UploadFile, File(description="JPEG, PNG, WebP, BMP or TIFF")],
                  skin_tone: Text = None, lesion_location: Text = None, patient_id: Text = None,
                  lesion_id: Text = None, body_site: Text = None,
                  fitzpatrick: Annotated[int | None, Form(ge=1, le=6)] = None,
                  age: Annotated[int | None, Form(ge=0, le=150)] = None, sex: Text = None,
                  alpha: Alpha = DEFAULT_ALPHA, cam_class: CamClass = None, include_cam: bool = True,
                  cam_method: CamMethod = None,
                  save: Annotated[bool, Query(description="store the case in the review log (API key)")] = False):
    """The original contract: ``skin_tone`` and ``lesion_location`` are echoed back and do not change an
    image-only model's output. With ``save=true`` (API key required) the case goes into the review log."""
    started = time.perf_counter()
    state = _state(request)
    if save:
        require_key(request)  # before any work: a refused save costs nothing
    method = _cam_method(cam_method)
    model, batcher = state.require_model()
    class_index = _class_index(model, cam_class)
    max_bytes = state.settings.max_bytes
    with batcher.arriving() as arrival:
        data = await read_upload(file, max_bytes)
        prepared = await run_in_threadpool(prepare_upload, model, data, safe_name(file.filename), class_index,
                                           max_bytes)
        prepared.cam_method = method
        future = arrival.submit([prepared])
    (outcome,) = await asyncio.wrap_future(future)
    if isinstance(outcome, BaseException):
        raise outcome
    record = await run_in_threadpool(_record, outcome, alpha, include_cam, started)
    record.update(skin_tone=skin_tone, lesion_location=lesion_location, case_id=None)
    if save:
        details = dict(patient_id=patient_id, lesion_id=lesion_id, body_site=body_site or lesion_location,
                       fitzpatrick=fitzpatrick, age=age, sex=sex)
        record["case_id"] = await run_in_threadpool(_save_case, state, outcome, details)
    return JSONResponse(record)


def _save_case(state, analysis, details: dict) -> int:
    try:
        case = CaseRecord.from_analysis(analysis, session_id=state.session_id, source=SOURCE,
                                        **{k: (v.strip() if isinstance(v, str) else v) or None for k, v in
                                           details.items()})
    except ValueError as exc:  # names the field, never its value
        raise ApiError(422, f"Invalid case details: {exc}.") from None
    return state.store().add_case(case)


@router.post("/api/batch", response_model=BatchResponse, summary="Analyse several images, one result per file")
async def batch(request: Request, files: Annotated[list[UploadFile], File(description="the images")],
                alpha: Alpha = DEFAULT_ALPHA, cam_class: CamClass = None, include_cam: bool = True,
                cam_method: CamMethod = None):
    """Every file gets a result or a one-line error with the status it would have had on its own."""
    started = time.perf_counter()
    state = _state(request)
    method = _cam_method(cam_method)
    limit = state.settings.max_files
    if len(files) > limit:
        raise ApiError(413, f"At most {limit} files can be sent in one batch.")
    model, batcher = state.require_model()
    class_index = _class_index(model, cam_class)
    max_bytes = state.settings.max_bytes
    names = [safe_name(f.filename) for f in files]
    outcomes: list = [None] * len(files)
    with batcher.arriving() as arrival:
        prepared = {}
        for i, upload in enumerate(files):
            try:
                data = await read_upload(upload, max_bytes)
                prepared[i] = await run_in_threadpool(prepare_upload, model, data, names[i], class_index, max_bytes)
                prepared[i].cam_method = method
            except DermascanError as exc:
                outcomes[i] = exc
        future = arrival.submit(list(prepared.values())) if prepared else None
    if future is not None:
        for i, outcome in zip(prepared, await asyncio.wrap_future(future), strict=True):
            outcomes[i] = outcome
    results = await run_in_threadpool(_batch_items, names, outcomes, alpha, include_cam, started)
    return JSONResponse({"results": results})


def _batch_items(names, outcomes, alpha: float, include_cam: bool, started: float) -> list[dict]:
    items = []
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, DermascanError):
            items.append({"file": name, "result": None, "error": " ".join(str(outcome).split()),
                          "status": status_for(outcome)})
        elif isinstance(outcome, BaseException):
            items.append({"file": name, "result": None, "error": "internal error", "status": 500})
        else:
            items.append({"file": name, "result": _record(outcome, alpha, include_cam, started), "error": None,
                          "status": 200})
    return items
