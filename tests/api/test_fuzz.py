"""Hostile input fuzzed: never a 5xx, always one JSON line for an error.

Schemathesis generates requests from the app's own OpenAPI schema (every operation, valid and
invalid data); the two Hypothesis tests add what a schema does not describe (raw bytes as images,
unknown form fields, hostile keys and ids).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import schemathesis
from api_helpers import KEY, png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
query_value = st.one_of(text, st.sampled_from(["nan", "inf", "-1", "1e308", "0.5", "true", "false", "mel", ""]))


@pytest.fixture(scope="module")
def fuzz_client(tiny_model, tmp_path_factory):
    from fastapi.testclient import TestClient

    from dermascan.api import ApiSettings, create_app

    db = tmp_path_factory.mktemp("fuzz") / "reviews.sqlite3"
    app = create_app(lambda: tiny_model, ApiSettings(api_keys=(KEY,), review_db=str(db), rate_limit=None))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.server.ready.wait(60)
        yield client


@pytest.fixture(scope="module")
def openapi_schema(fuzz_client):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_client.app)


schema = schemathesis.pytest.from_fixture("openapi_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_of_the_openapi_schema_answers_without_a_server_error(case):
    case.headers = {**(case.headers or {}), "X-API-Key": KEY}  # reach the handlers, not only the key check
    response = case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
    check(response)


def check(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"detail"} and isinstance(body["detail"], str) and "\n" not in body["detail"]


@FUZZ
@given(alpha=query_value, cam_class=query_value, include_cam=query_value, save=st.sampled_from(["", "true", "x"]),
       fields=st.dictionaries(st.sampled_from(["skin_tone", "lesion_location", "patient_id", "age", "fitzpatrick",
                                               "sex", "body_site", "lesion_id", "unknown"]), text, max_size=4),
       data=st.one_of(st.binary(max_size=200), st.just(png_bytes(seed=5))), name=text)
def test_predict_never_fails_with_5xx(fuzz_client, alpha, cam_class, include_cam, save, fields, data, name):
    params = {"alpha": alpha, "cam_class": cam_class, "include_cam": include_cam, "save": save}
    response = fuzz_client.post("/api/predict", params=params, data=fields, files={"file": (name, data, "image/png")},
                                headers={"X-API-Key": KEY})
    check(response)


@FUZZ
@given(case_id=st.one_of(st.integers(-(2**70), 2**70).map(str), text.filter(lambda t: "/" not in t and t)),
       body=st.one_of(st.dictionaries(text, st.one_of(text, st.integers(), st.booleans(), st.none()), max_size=4),
                      st.lists(st.integers(), max_size=3), text),
       query=st.dictionaries(st.sampled_from(["limit", "offset", "triage", "decided", "source", "session_id"]),
                             query_value, max_size=4),
       key=st.one_of(st.just(KEY), text))
def test_case_endpoints_never_fail_with_5xx(fuzz_client, case_id, body, query, key):
    raw = key.encode("utf-8").translate(None, b"\r\n\x00")  # any bytes a header line can carry
    headers = {"X-API-Key": raw} if raw else {}
    case_id = quote(case_id, safe="")
    check(fuzz_client.put(f"/api/cases/{case_id}/decision", json=body, headers=headers))
    check(fuzz_client.get("/api/cases", params=query, headers=headers))
    check(fuzz_client.get(f"/api/cases/{case_id}", headers=headers))
