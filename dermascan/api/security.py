"""API keys for the review-log endpoints (they read and write patient-related data).

A key is sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` and compared with every
configured key in constant time (``hmac.compare_digest``), all of them every time, so neither the
timing nor the position of a match tells anything. No keys configured: the endpoints are disabled.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from ..config import API_KEYS_ENV
from .errors import ApiError

DISABLED = (f"The review-log endpoints are disabled on this server: no API keys are configured ({API_KEYS_ENV}).")
MISSING = "An API key is required: send it as the X-API-Key header."
WRONG = "The API key is not valid."
MAX_KEY_CHARS = 512


def presented_key(request: Request) -> str | None:
    """The key the client sent, if any (``X-API-Key`` first, then a Bearer token)."""
    key = request.headers.get("x-api-key")
    if key is None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            key = token.strip()
    return key


def key_matches(key: str, configured: tuple[str, ...]) -> bool:
    """True when ``key`` equals one of ``configured``; every key is compared, in constant time."""
    given = key.encode("utf-8", "surrogateescape")
    found = False
    for expected in configured:
        found |= hmac.compare_digest(given, expected.encode("utf-8"))
    return found


def require_key(request: Request) -> None:
    """FastAPI dependency: 403 when keys are not configured or the key is wrong, 401 when none was sent."""
    configured = request.app.state.settings.api_keys
    if not configured:
        raise ApiError(403, DISABLED)
    key = presented_key(request)
    if not key:
        raise ApiError(401, MISSING, {"WWW-Authenticate": "Bearer"})
    if len(key) > MAX_KEY_CHARS or not key_matches(key, configured):
        raise ApiError(403, WRONG)
