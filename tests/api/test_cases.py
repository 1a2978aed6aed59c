"""The review log over HTTP: API keys, saving a case from predict, listing, decisions, the CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from api_helpers import KEY, OTHER_KEY, png_bytes

from dermascan.reviews import ReviewStore

AUTH = {"X-API-Key": KEY}


def save(client, image: bytes | None = None, headers=AUTH, **fields):
    files = {"file": ("visit.png", image or png_bytes(seed=11), "image/png")}
    return client.post("/api/predict?save=true", files=files, data=fields, headers=headers)


@pytest.mark.parametrize("method, path", [("GET", "/api/cases"), ("GET", "/api/cases.csv"), ("GET", "/api/cases/1"),
                                          ("PUT", "/api/cases/1/decision")])
def test_case_endpoints_need_a_valid_key(client, method, path):
    missing = client.request(method, path, json={})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "API key is required" in missing.json()["detail"]
    wrong = client.request(method, path, json={}, headers={"X-API-Key": OTHER_KEY})
    assert wrong.status_code == 403 and wrong.json() == {"detail": "The API key is not valid."}
    bearer = client.request(method, path, headers={"Authorization": f"Bearer {KEY}"}, json={})
    assert bearer.status_code not in (401, 403)


def test_endpoints_are_disabled_without_keys(make_client, tmp_path):
    client = make_client()  # no api_keys
    for method, path in [("GET", "/api/cases"), ("GET", "/api/cases.csv"), ("PUT", "/api/cases/1/decision")]:
        response = client.request(method, path, headers=AUTH, json={})
        assert response.status_code == 403 and "disabled" in response.json()["detail"]
    assert save(client).status_code == 403
    assert client.post("/api/predict", files={"file": ("a.png", png_bytes(), "image/png")}).status_code == 200
    assert not (tmp_path / "reviews.sqlite3").exists()  # nothing was written


def test_save_without_a_key_is_refused_before_any_work(client):
    assert save(client, headers={}).status_code == 401
    assert save(client, headers={"X-API-Key": "x" * 600}).status_code == 403
    assert client.app.state.server.batcher.stats.calls == 0


def test_saved_case_listed_decided_and_exported(client, tmp_path):
    response = save(client, patient_id="P-17", age="61", fitzpatrick="2", lesion_location="left shoulder",
                    skin_tone="II")
    assert response.status_code == 200, response.text
    case_id = response.json()["case_id"]
    assert isinstance(case_id, int)

    page = client.get("/api/cases", headers=AUTH).json()
    assert page["total"] == 1
    (case,) = page["cases"]
    assert case["case_id"] == case_id and case["source"] == "api" and case["file_name"] == "visit.png"
    assert case["patient_id"] == "P-17" and case["age"] == 61 and case["fitzpatrick"] == 2
    assert case["body_site"] == "left shoulder" and case["reviewer_agrees"] is None
    assert set(case["probabilities"]) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}

    decision = {"reviewer_agrees": False, "reviewer_diagnosis": "mel", "management": "excise", "note": "irregular",
                "reviewer": "Dr A"}
    put = client.put(f"/api/cases/{case_id}/decision", json=decision, headers=AUTH)
    assert put.status_code == 200 and put.json()["management"] == "excise" and put.json()["decided_at"]

    # The same store the dashboard reads.
    with ReviewStore(tmp_path / "reviews.sqlite3") as store:
        stored = store.get_case(case_id)
    assert stored.source == "api"
    assert stored.decision.reviewer_diagnosis == "mel" and stored.decision.note == "irregular"

    assert client.get("/api/cases?decided=true", headers=AUTH).json()["total"] == 1
    assert client.get("/api/cases?decided=false", headers=AUTH).json()["total"] == 0
    assert client.get("/api/cases?source=single", headers=AUTH).json()["total"] == 0
    assert client.get(f"/api/cases/{case_id}", headers=AUTH).json()["management"] == "excise"

    export = client.get("/api/cases.csv", headers=AUTH)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0]["case_id"] == str(case_id) and rows[0]["management"] == "excise" and rows[0]["source"] == "api"


def test_pagination(client):
    ids = [save(client, png_bytes(seed=s)).json()["case_id"] for s in range(3)]
    first = client.get("/api/cases?limit=2", headers=AUTH).json()
    second = client.get("/api/cases?limit=2&offset=2", headers=AUTH).json()
    assert first["total"] == second["total"] == 3
    assert [c["case_id"] for c in first["cases"] + second["cases"]] == sorted(ids, reverse=True)
    assert client.get("/api/cases?limit=100000", headers=AUTH).status_code == 422


def test_formula_like_text_is_neutralised_in_the_export(client):
    case_id = save(client, patient_id="=HYPERLINK(\"http://x\")").json()["case_id"]
    client.put(f"/api/cases/{case_id}/decision", json={"note": "+cmd|' /C calc'!A0"}, headers=AUTH)
    text = client.get("/api/cases.csv", headers=AUTH).content.decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["patient_id"].startswith("'=") and row["note"].startswith("'+")


@pytest.mark.parametrize("body, word", [({"management": "chop"}, "management"), ({"mood": "good"}, "mood"),
                                        ({"note": "x" * 20_000}, "note"), ({"reviewer_agrees": "perhaps"},
                                                                          "reviewer_agrees")])
def test_invalid_decisions_are_422(client, body, word):
    case_id = save(client).json()["case_id"]
    response = client.put(f"/api/cases/{case_id}/decision", json=body, headers=AUTH)
    assert response.status_code == 422 and word in response.json()["detail"]
    assert "x" * 50 not in response.json()["detail"]  # never echoes the value


def test_unknown_case_is_404_and_bad_ids_422(client):
    assert client.put("/api/cases/999/decision", json={}, headers=AUTH).status_code == 404
    assert client.get("/api/cases/999", headers=AUTH).status_code == 404
    assert client.get("/api/cases/abc", headers=AUTH).status_code == 422
    assert client.get("/api/cases/0", headers=AUTH).status_code == 422


def test_invalid_case_details_are_refused_before_work(client):
    response = save(client, age="200")
    assert response.status_code == 422 and "age" in response.json()["detail"]
    assert save(client, fitzpatrick="7").status_code == 422
    assert client.app.state.server.batcher.stats.calls == 0


def test_an_unusable_review_database_is_503_and_predict_still_works(make_client, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    client = make_client(api_keys=(KEY,), review_db=str(folder))  # a directory, not a database file
    response = client.get("/api/cases", headers=AUTH)
    assert response.status_code == 503 and "review database" in response.json()["detail"]
    assert str(tmp_path) not in response.json()["detail"]  # never the folder
    assert save(client).status_code == 503
    assert client.post("/api/predict", files={"file": ("a.png", png_bytes(), "image/png")}).status_code == 200
