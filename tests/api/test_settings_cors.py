"""Settings from the environment (bad values stop the server at start), CORS, the rate limit, the queue bound."""

from __future__ import annotations

import threading

import pytest
from api_helpers import png_bytes

from dermascan.api import ApiSettings
from dermascan.api.batcher import DynamicBatcher, QueueFull
from dermascan.api.security import key_matches
from dermascan.api.settings import SettingsError

ALLOWED = "http://localhost:5173"


def preflight(client, origin: str):
    return client.options("/api/predict", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "content-type"})


def test_cors_preflight_from_an_allowed_and_a_refused_origin(client):
    ok = preflight(client, ALLOWED)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ALLOWED
    methods = ok.headers["access-control-allow-methods"]
    assert "POST" in methods and "*" not in methods
    assert "access-control-allow-credentials" not in ok.headers
    refused = preflight(client, "http://evil.example")
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    simple = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_origins_from_the_environment(make_client):
    env = {"DERMASCAN_CORS_ORIGINS": "https://clinic.example, http://localhost:3000"}
    settings = ApiSettings.from_env(env)
    assert settings.cors_origins == ("https://clinic.example", "http://localhost:3000")
    client = make_client(cors_origins=settings.cors_origins)
    assert preflight(client, "https://clinic.example").headers["access-control-allow-origin"] == "https://clinic.example"
    assert "access-control-allow-origin" not in preflight(client, ALLOWED).headers


def test_defaults_and_parsing():
    s = ApiSettings.from_env({})
    assert s.cors_origins == ("http://localhost:8080", "http://localhost:5173") and not s.cases_enabled
    s = ApiSettings.from_env({"DERMASCAN_API_KEYS": "k" * 16 + ", " + "j" * 20, "DERMASCAN_API_MAX_BATCH": "8",
                              "DERMASCAN_API_MAX_WAIT_MS": "2.5", "DERMASCAN_API_RATE_LIMIT": "off"})
    assert s.api_keys == ("k" * 16, "j" * 20) and s.max_batch == 8 and s.max_wait_ms == 2.5 and s.rate_limit is None


@pytest.mark.parametrize("env", [{"DERMASCAN_API_KEYS": "short"}, {"DERMASCAN_API_MAX_BATCH": "0"},
                                 {"DERMASCAN_API_MAX_BATCH": "many"}, {"DERMASCAN_API_MAX_WAIT_MS": "nan"},
                                 {"DERMASCAN_API_MAX_QUEUE": "-1"}, {"DERMASCAN_API_RATE_LIMIT": "lots"},
                                 {"DERMASCAN_CORS_ORIGINS": "javascript:alert(1)"}])
def test_bad_settings_are_one_line_errors(env):
    with pytest.raises(SettingsError) as info:
        ApiSettings.from_env(env)
    assert "\n" not in str(info.value) and next(iter(env)) in str(info.value)


def test_key_comparison():
    keys = ("a" * 16, "b" * 16)
    assert key_matches("b" * 16, keys) and not key_matches("c" * 16, keys) and not key_matches("", keys)
    assert not key_matches("\udcff" * 16, keys)  # undecodable header bytes never crash


def test_rate_limit_per_client(make_client):
    client = make_client(rate_limit="3/minute")
    codes = [client.get("/api/model").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert client.get("/api/model").json()["detail"].startswith("Too many requests")
    assert client.get("/api/health").status_code == 200  # health is never limited


class _HeldModel:
    """The real model whose compiled call waits until released, to hold the batcher's worker busy."""

    def __init__(self, model):
        self._model, self.release, self.entered = model, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self._model, name)

    def infer_prepared(self, *args, **kwargs):
        self.entered.set()
        self.release.wait(30)
        return self._model.infer_prepared(*args, **kwargs)


def test_a_full_queue_refuses_at_once(tiny_model):
    from dermascan.api.uploads import prepare_upload

    held = _HeldModel(tiny_model)
    batcher = DynamicBatcher(held, max_batch=4, max_wait_ms=0, max_queue=2)
    item = prepare_upload(tiny_model, png_bytes(), "a.png", -1, 1 << 20)
    try:
        first = batcher.submit([item])
        assert held.entered.wait(30)  # the worker is inside the model call; the queue is now empty
        waiting = [batcher.submit([item]), batcher.submit([item])]
        with pytest.raises(QueueFull):
            batcher.submit([item])
        held.release.set()
        assert all(f.result(30)[0].sha256 == item.sha256 for f in [first, *waiting])
        assert batcher.stats.calls == 2 and batcher.stats.largest == 2  # the two waiting ones went together
    finally:
        held.release.set()
        batcher.close()


def test_queue_full_is_503_with_retry_after(make_client, tiny_model):
    held = _HeldModel(tiny_model)
    client = make_client(loader=lambda: held, max_queue=1, max_wait_ms=0)
    results = []
    t = threading.Thread(target=lambda: results.append(client.post(
        "/api/predict", files={"file": ("a.png", png_bytes(), "image/png")}).status_code))
    t.start()
    try:
        assert held.entered.wait(30)
        batcher = client.app.state.server.batcher
        batcher.submit([])  # fill the one queue slot
        busy = client.post("/api/predict", files={"file": ("b.png", png_bytes(), "image/png")})
        assert busy.status_code == 503 and busy.headers["retry-after"] and "busy" in busy.json()["detail"]
    finally:
        held.release.set()
        t.join(30)
    assert results == [200]


@pytest.mark.parametrize("method, path", [("POST", "/api/predict"), ("POST", "/api/batch"), ("GET", "/api/cases"),
                                          ("GET", "/api/cases.csv"), ("PUT", "/api/cases/3/decision")])
def test_every_endpoint_is_visible_to_the_rate_limiter(client, method, path):
    # slowapi exempts what it cannot resolve to an endpoint (FastAPI's included routers, for one).
    from slowapi.middleware import _find_route_handler

    assert _find_route_handler(client.app.routes, {"type": "http", "path": path, "method": method}) is not None
