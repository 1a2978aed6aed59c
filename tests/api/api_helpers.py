"""Helpers for the API tests (imported by name; fixtures stay in this folder's conftest)."""

from __future__ import annotations

import time

import numpy as np
from tiny_models import png_bytes as encode_png

KEY = "test-key-0123456789abcdef"  # at least 16 characters, as the settings demand
OTHER_KEY = "another-key-0123456789abcdef"


def png_bytes(width: int = 40, height: int = 30, seed: int = 0) -> bytes:
    """A small real PNG of random pixels."""
    rng = np.random.default_rng(seed)
    return encode_png(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


def wait_ready(client, timeout: float = 120.0) -> dict:
    """Poll ``/api/health`` until it says healthy; returns its body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/api/health")
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 503, response.text
        time.sleep(0.05)
    raise AssertionError("the API did not become ready")
