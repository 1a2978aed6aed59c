"""A case saved through the HTTP API, and a decision put through it, show on the Review log page."""

from __future__ import annotations

from app_helpers import assert_no_exception, new_app

LOG = "pages/review_log.py"
KEY = "app-test-key-0123456789"


def test_api_case_and_decision_show_in_the_review_log(app_env, tiny_model, review_db, ham_images):
    from fastapi.testclient import TestClient

    import dermascan
    from dermascan.api import ApiSettings, create_app

    model = dermascan.load_model(tiny_model)
    app = create_app(lambda: model, ApiSettings(api_keys=(KEY,), review_db=str(review_db), rate_limit=None))
    with TestClient(app) as client:
        state = app.state.server
        assert state.ready.wait(60) and state.model is not None
        path = ham_images[0]
        saved = client.post("/api/predict?save=true", files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                            headers={"X-API-Key": KEY})
        assert saved.status_code == 200, saved.text
        case_id = saved.json()["case_id"]
        put = client.put(f"/api/cases/{case_id}/decision", headers={"X-API-Key": KEY},
                         json={"reviewer_agrees": False, "reviewer_diagnosis": "mel", "management": "biopsy"})
        assert put.status_code == 200

    at = new_app()
    at.switch_page(LOG).run()
    assert_no_exception(at)
    row = at.dataframe[0].value.set_index("Case").loc[case_id]
    assert row["File"] == path.name and row["Source"] == "api"
    assert row["Reviewer diagnosis"] == "Melanoma" and row["Management"] == "Biopsy" and not row["Agrees"]
