"""``ApiSettings``: the API's limits and switches, read from the environment once at start.

The variable names and defaults are defined in ``dermascan/config.py``; this module only parses and
checks them, so a bad value stops the server at start with a one-line message instead of at the first request.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import limits

from .. import config
from ..errors import DermascanError
from ..intake.images import DEFAULT_MAX_BYTES

MIN_KEY_CHARS = 16  # a shorter key can be guessed; refusing it at start is kinder than a breach later
# Multipart framing around one file: boundaries, part headers, the small form fields.
MULTIPART_OVERHEAD = 64 * 1024


class SettingsError(DermascanError):
    """An API environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class ApiSettings:
    """Everything the app needs to know beyond the model; ``from_env()`` reads it from the environment."""

    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = config.DEFAULT_CORS_ORIGINS
    max_batch: int = config.DEFAULT_API_MAX_BATCH
    max_wait_ms: float = config.DEFAULT_API_MAX_WAIT_MS
    max_queue: int = config.DEFAULT_API_MAX_QUEUE
    max_files: int = config.DEFAULT_API_MAX_FILES
    rate_limit: str | None = config.DEFAULT_API_RATE_LIMIT
    max_bytes: int = DEFAULT_MAX_BYTES
    review_db: str | None = field(default=None)  # None: the store's own default ($DERMASCAN_REVIEW_DB, ...)

    def __post_init__(self) -> None:
        for key in self.api_keys:
            if len(key) < MIN_KEY_CHARS or not key.isprintable() or key != key.strip():
                raise SettingsError(f"Every API key in {config.API_KEYS_ENV} must be at least {MIN_KEY_CHARS} "
                                    "printable characters without surrounding spaces.")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise SettingsError(f"{config.CORS_ORIGINS_ENV} holds an origin that is not http(s)://host[:port].")
        if not 1 <= self.max_batch <= 1024:
            raise SettingsError(f"{config.API_MAX_BATCH_ENV} must be between 1 and 1024.")
        if not (math.isfinite(self.max_wait_ms) and 0 <= self.max_wait_ms <= 1000):
            raise SettingsError(f"{config.API_MAX_WAIT_MS_ENV} must be between 0 and 1000 milliseconds.")
        if not 1 <= self.max_queue <= 100_000:
            raise SettingsError(f"{config.API_MAX_QUEUE_ENV} must be between 1 and 100000.")
        if not 1 <= self.max_files <= 1000:
            raise SettingsError(f"{config.API_MAX_FILES_ENV} must be between 1 and 1000.")
        if self.rate_limit is not None:
            try:
                limits.parse_many(self.rate_limit)
            except ValueError:
                raise SettingsError(f"{config.API_RATE_LIMIT_ENV} must look like '600/minute' (or 'off').") from None

    @property
    def cases_enabled(self) -> bool:
        """The review-log endpoints exist only when at least one API key is configured."""
        return bool(self.api_keys)

    @property
    def predict_body_limit(self) -> int:
        """Most bytes a ``POST /api/predict`` body may have: one image plus its multipart framing."""
        return self.max_bytes + MULTIPART_OVERHEAD

    @property
    def batch_body_limit(self) -> int:
        """Most bytes a ``POST /api/batch`` body may have."""
        return self.max_files * (self.max_bytes + MULTIPART_OVERHEAD)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ApiSettings:
        """Settings from ``environ`` (default ``os.environ``); unset variables keep their config."""
        env = os.environ if environ is None else environ
        rate = env.get(config.API_RATE_LIMIT_ENV, config.DEFAULT_API_RATE_LIMIT).strip()
        return cls(
            api_keys=tuple(_list(env.get(config.API_KEYS_ENV, ""))),
            cors_origins=tuple(_list(env[config.CORS_ORIGINS_ENV])) if config.CORS_ORIGINS_ENV in env
            else config.DEFAULT_CORS_ORIGINS,
            max_batch=_number(env, config.API_MAX_BATCH_ENV, config.DEFAULT_API_MAX_BATCH, int),
            max_wait_ms=_number(env, config.API_MAX_WAIT_MS_ENV, config.DEFAULT_API_MAX_WAIT_MS, float),
            max_queue=_number(env, config.API_MAX_QUEUE_ENV, config.DEFAULT_API_MAX_QUEUE, int),
            max_files=_number(env, config.API_MAX_FILES_ENV, config.DEFAULT_API_MAX_FILES, int),
            rate_limit=None if rate.lower() in ("", "off", "0", "none") else rate,
        )


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _number(env, name: str, default, kind):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number.") from None
