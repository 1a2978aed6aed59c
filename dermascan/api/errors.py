"""How failures become HTTP answers: always ``{"detail": "<one line>"}``, never a traceback or input bytes.

Engine errors carry messages written for users (``DermascanError``); everything else is an internal
error whose details go to the server log only as the exception's type.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CardError, DermascanError, InvalidImage, InvalidModelOutput
from ..reviews.errors import ReviewStoreError
from .batcher import QueueFull

log = logging.getLogger(__name__)

INTERNAL = "internal error"
RETRY_AFTER_S = "1"


class ApiError(Exception):
    """An answer with a status and a one-line user message."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def image_status(exc: InvalidImage) -> int:
    """413 for an image over a size or pixel limit, 415 for what is not a supported image, else 400.

    ``InvalidImage`` has no subclasses, so the kind is read from the intake's own fixed wording
    (``dermascan/intake/images.py``); the user's data never appears in those phrases.
    """
    text = str(exc)
    if "larger than the" in text or "too large" in text or "too many pixels" in text:
        return 413
    if "is not a supported image" in text:
        return 415
    return 400


def status_for(exc: DermascanError) -> int:
    """The HTTP status of an engine error."""
    if isinstance(exc, InvalidImage):
        return image_status(exc)
    if isinstance(exc, (QueueFull, ReviewStoreError)):
        return 503
    if isinstance(exc, (InvalidModelOutput, CardError)):
        return 422
    return 400


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape every endpoint uses."""
    return JSONResponse({"detail": _one_line(detail)}, status_code=status, headers=headers)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def validation_detail(exc: RequestValidationError) -> str:
    """A pydantic/FastAPI validation failure as one line naming the parameter, never echoing its value."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path", "header", "form"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid value')}")
    return "Invalid request: " + "; ".join(parts) + "."


def install(app: FastAPI) -> None:
    """Register the handlers that give every failure the one-line JSON shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.detail, exc.headers)

    @app.exception_handler(DermascanError)
    async def _engine_error(request: Request, exc: DermascanError):
        status = status_for(exc)
        headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
        return error_response(status, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_response(422, validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # The type only: a message or traceback could quote request data.
        log.error("Unexpected %s while serving %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, INTERNAL)
