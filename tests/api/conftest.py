"""Fixtures for the API tests: a tiny real Keras model loaded once, apps over it, a review DB per test."""

from __future__ import annotations

import os

import pytest
from api_helpers import KEY, wait_ready
from tiny_models import save_tiny_lesion_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """The shared tiny CNN (64x64 -> 7 softmax) saved with its card."""
    return save_tiny_lesion_model(tmp_path_factory.mktemp("api-model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    """The tiny model loaded through the engine once (the apps share it, as one server would)."""
    import dermascan

    return dermascan.load_model(tiny_model_path)


@pytest.fixture
def make_client(tiny_model, tmp_path):
    """``make_client(**settings)``: a started TestClient over the tiny model; closed after the test."""
    from fastapi.testclient import TestClient

    from dermascan.api import ApiSettings, create_app

    clients = []

    def make(*, loader=None, wait=True, raise_server_exceptions=True, **overrides):
        settings = ApiSettings(**{"review_db": str(tmp_path / "reviews.sqlite3"), "rate_limit": None, **overrides})
        app = create_app(loader or (lambda: tiny_model), settings)
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        if wait:
            wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    """A ready client with the review-log endpoints enabled (key ``KEY``)."""
    return make_client(api_keys=(KEY,))
