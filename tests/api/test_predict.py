"""``POST /api/predict`` and ``/api/batch`` through FastAPI's TestClient: the contract and every error status."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from api_helpers import png_bytes, wait_ready
from PIL import Image

ORIGINAL_FIELDS = {"model_version", "predictions", "malignant_score", "grad_cam", "explanation", "processing_time_ms"}
OUR_FIELDS = {"image_sha256", "triage", "warnings", "preprocessing", "cam_layer", "skin_tone", "lesion_location"}


def post(client, image: bytes, query: str = "", *, name: str = "lesion.png", **kwargs):
    return client.post(f"/api/predict{query}", files={"file": (name, image, "image/png")}, **kwargs)


def assert_one_line_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    return body["detail"]


def test_predict_keeps_the_original_contract_and_equals_the_engine(client, tiny_model):
    data = png_bytes(80, 60)
    response = post(client, data, data={"skin_tone": "IV", "lesion_location": "left forearm"})
    assert response.status_code == 200
    record = response.json()
    assert set(record) >= ORIGINAL_FIELDS | OUR_FIELDS
    assert record["skin_tone"] == "IV" and record["lesion_location"] == "left forearm" and record["case_id"] is None
    assert record["grad_cam"].startswith("data:image/png;base64,")
    assert isinstance(record["processing_time_ms"], float) and record["processing_time_ms"] > 0
    probs = [p["probability"] for p in record["predictions"]]
    assert probs == sorted(probs, reverse=True) and set(record["predictions"][0]) == {"label", "probability"}
    expected = tiny_model.analyze(data)
    got = {p["label"]: p["probability"] for p in record["predictions"]}
    assert np.allclose([got[label] for label in expected.labels], expected.probabilities, atol=1e-6, rtol=0)
    assert record["malignant_score"] == pytest.approx(expected.malignant_score, abs=1e-6)
    assert record["image_sha256"] == expected.sha256 and record["triage"] == expected.triage


def test_form_fields_do_not_change_the_output(client):
    data = png_bytes(seed=3)
    plain = post(client, data).json()
    with_fields = post(client, data, data={"skin_tone": "I", "lesion_location": "scalp"}).json()
    assert plain["predictions"] == with_fields["predictions"]


def test_query_options(client, tiny_model):
    data = png_bytes(seed=4)
    no_cam = post(client, data, "?include_cam=false").json()
    assert no_cam["grad_cam"] is None and no_cam["predictions"]
    explained = post(client, data, "?cam_class=mel&alpha=0.9").json()
    assert explained["explained_label"] == "mel"
    assert explained["grad_cam"] != post(client, data, "?cam_class=mel&alpha=0.1").json()["grad_cam"]


@pytest.mark.parametrize("query, word", [("?alpha=1.5", "alpha"), ("?alpha=nan", "alpha"), ("?alpha=inf", "alpha"),
                                         ("?alpha=abc", "alpha"), ("?include_cam=maybe", "include_cam"),
                                         ("?cam_class=not-a-label", "not-a-label")])
def test_bad_parameters_are_422_one_line(client, query, word):
    assert word in assert_one_line_error(post(client, png_bytes(), query=query), 422)


def test_missing_file_and_bad_form_fields_are_422(client):
    assert "file" in assert_one_line_error(client.post("/api/predict", data={"skin_tone": "II"}), 422)
    long_text = post(client, png_bytes(), data={"lesion_location": "x" * 5000})
    assert "lesion_location" in assert_one_line_error(long_text, 422)


def test_what_is_not_an_image_is_415_and_a_damaged_one_400(client):
    detail = assert_one_line_error(post(client, b"%PDF-1.7 not an image at all", name="scan.png"), 415)
    assert "not a supported image" in detail
    assert "truncated" in assert_one_line_error(post(client, png_bytes()[:120]), 400)
    assert_one_line_error(post(client, b""), 400)
    # The name says PNG, the content is a JPEG: the content decides, so it is analysed.
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(buf, "JPEG")
    assert post(client, buf.getvalue(), name="looks.png").status_code == 200


def test_oversize_is_413_before_the_body_is_read(make_client):
    client = make_client(max_bytes=50_000)
    assert "limited" in assert_one_line_error(post(client, b"\xff" * 200_000), 413)

    sent = []

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(100):
            sent.append(1)
            yield b"\x00" * 10_000

    response = client.post("/api/predict", content=chunks(),
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert_one_line_error(response, 413)
    # An image under the body limit but over the image limit (after the multipart framing) is 413 too.
    big = png_bytes(300, 300)
    assert len(big) > 50_000
    assert_one_line_error(post(client, big[:50_000 + 1000]), 413)


def test_too_many_pixels_is_413(client):
    buf = io.BytesIO()
    Image.new("L", (12_000, 10_000)).save(buf, "PNG")  # 120 megapixels, a few hundred kB compressed
    assert "pixels" in assert_one_line_error(post(client, buf.getvalue()), 413)


def test_503_while_loading_then_healthy(make_client, tiny_model):
    release = threading.Event()

    def slow_loader():
        release.wait(60)
        return tiny_model

    client = make_client(loader=slow_loader, wait=False)
    health = client.get("/api/health")
    assert health.status_code == 503 and health.json() == {"status": "loading"}
    assert "loading" in assert_one_line_error(post(client, png_bytes()), 503)
    assert client.get("/api/model").status_code == 503
    release.set()
    body = wait_ready(client)
    assert body["status"] == "healthy" and body["labels"] == tiny_model.labels
    assert set(body) >= {"uptime_seconds", "model_name", "model_version", "input_size", "cam_layer"}
    assert post(client, png_bytes()).status_code == 200


def test_a_model_that_fails_to_load_keeps_answering_503_with_the_reason(make_client, tmp_path):
    import dermascan

    client = make_client(loader=lambda: dermascan.load_model(tmp_path / "missing.keras"), wait=False)
    for _ in range(600):
        health = client.get("/api/health")
        if health.json()["status"] != "loading":
            break
        threading.Event().wait(0.05)
    assert health.status_code == 503 and health.json()["status"] == "error"
    assert "could not be loaded" in assert_one_line_error(post(client, png_bytes()), 503)


def test_non_finite_model_output_is_422(make_client, tmp_path):
    from tiny_models import overflow_on_white_model, save_model
    from tiny_models import png_bytes as encode_png

    import dermascan
    from dermascan.model.card import HAM10000_LABELS

    path = save_model(overflow_on_white_model(), tmp_path / "overflow.keras")
    model = dermascan.load_model(path, labels=list(HAM10000_LABELS), preprocessing="raw")
    client = make_client(loader=lambda: model)
    white = encode_png(np.full((32, 32, 3), 255, np.uint8))  # infinite logits
    assert "invalid numbers" in assert_one_line_error(post(client, white), 422)
    assert post(client, png_bytes(32, 32)).status_code == 200


def test_unexpected_failure_is_500_internal_error(make_client, tiny_model):
    client = make_client(raise_server_exceptions=False)
    client.app.state.server.batcher.model = None  # the worker now fails on anything: an internal bug
    response = post(client, png_bytes())
    assert response.status_code == 500 and response.json() == {"detail": "internal error"}


def test_batch_gives_one_result_or_error_per_file_in_order(client, tiny_model):
    images = [png_bytes(seed=i) for i in range(3)]
    files = [("files", ("a.png", images[0], "image/png")), ("files", ("notes.txt", b"hello", "text/plain")),
             ("files", ("b.png", images[1], "image/png")), ("files", ("../../c.png", images[2], "image/png"))]
    response = client.post("/api/batch?include_cam=false", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["file"] for r in results] == ["a.png", "notes.txt", "b.png", "c.png"]  # a path is cut to its name
    assert [r["status"] for r in results] == [200, 415, 200, 200]
    assert results[1]["result"] is None and "not a supported image" in results[1]["error"]
    expected = tiny_model.analyze(images[1])
    got = {p["label"]: p["probability"] for p in results[2]["result"]["predictions"]}
    assert np.allclose([got[label] for label in expected.labels], expected.probabilities, atol=1e-6, rtol=0)
    assert results[0]["result"]["grad_cam"] is None


def test_batch_limits(make_client):
    client = make_client(max_files=2)
    files = [("files", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    assert "At most 2" in assert_one_line_error(client.post("/api/batch", files=files), 413)


def test_model_endpoint_gives_the_card_and_the_engine(client, tiny_model):
    body = client.get("/api/model").json()
    assert body["card"]["labels"] == tiny_model.labels and body["card"]["version"] == "test-1"
    assert body["engine"]["cam_layer"] == "conv_b" and body["engine"]["input_size"] == [64, 64]
    json.dumps(body, allow_nan=False)


def test_openapi_documents_the_responses(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/health", "/api/model", "/api/batch", "/api/cases",
            "/api/cases/{case_id}/decision", "/api/cases.csv"} <= set(schema["paths"])
    assert "PredictResponse" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_unknown_routes_are_json(client):
    assert_one_line_error(client.get("/api/nothing"), 404)


def test_a_streamed_upload_under_the_limit_is_analysed(client):
    image = png_bytes(seed=9)
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--xyz--\r\n")

    def chunks():  # no Content-Length: chunked transfer
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    response = client.post("/api/predict", content=chunks(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["file"] == "s.png"
