"""``GET /api/health`` (the original's, plus the model's identity) and ``GET /api/model`` (its card)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .schemas import Health, ModelInfo

router = APIRouter()


@router.get("/api/health", response_model=Health, summary="Ready? 503 {status: loading} until the model is",
            responses={503: {"description": '{"status": "loading"} or {"status": "error", "detail": ...}'}})
def health(request: Request):
    """200 ``healthy`` with the model's identity once it is loaded and warmed up; 503 before or on failure."""
    state = request.app.state.server
    model = state.model
    if model is None:
        body = {"status": "error", "detail": state.load_error} if state.load_error else {"status": "loading"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
    described = model.describe()
    return {"status": "healthy", "uptime_seconds": round(time.monotonic() - state.started, 3),
            "model_name": described["name"], "model_version": model.version, "labels": model.labels,
            "input_size": list(model.input_size), "cam_layer": model.cam_layer,
            "batching": state.batcher.stats.as_dict()}


@router.get("/api/model", response_model=ModelInfo, summary="The model card and what the engine detected")
def model_info(request: Request):
    """The card (as the Model page shows it) and ``describe()`` (loader, input size, CAM layer, warnings)."""
    model, _ = request.app.state.server.require_model()
    return {"card": model.card.to_dict(), "engine": model.describe()}
