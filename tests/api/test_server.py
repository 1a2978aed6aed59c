"""One real ``python -m dermascan serve`` process on 127.0.0.1, real HAM10000 images, 16 concurrent clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from api_helpers import KEY
from shared_data import REPO, ham_sample, needs_shared

pytestmark = needs_shared
CLIENTS = 16
SECRET_PATIENT = "P-SECRET-4242"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_path, tmp_path_factory):
    """The API in its own process over the tiny model; yields (base URL, log file)."""
    folder = tmp_path_factory.mktemp("server")
    port, log_path = free_port(), folder / "server.log"
    env = {**os.environ, "DERMASCAN_API_MAX_WAIT_MS": "25", "DERMASCAN_API_RATE_LIMIT": "off",
           "DERMASCAN_REVIEW_DB": str(folder / "reviews.sqlite3"), "DERMASCAN_API_KEYS": KEY,
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dermascan", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--model", str(tiny_model_path)], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield base, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def probabilities(record: dict, labels: list[str]) -> np.ndarray:
    got = {p["label"]: p["probability"] for p in record["predictions"]}
    return np.array([got[label] for label in labels])


def test_real_server_answers_like_the_engine(server, tiny_model):
    base, _ = server
    path = ham_sample(1)[0]
    data = path.read_bytes()
    response = httpx.post(f"{base}/api/predict", files={"file": (path.name, data, "image/jpeg")},
                          data={"skin_tone": "II", "lesion_location": "back"}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    record = response.json()
    types = {"model_version": str, "predictions": list, "malignant_score": float, "grad_cam": str,
             "explanation": str, "processing_time_ms": float, "image_sha256": str, "triage": str, "warnings": list,
             "preprocessing": str, "cam_layer": str, "skin_tone": str, "lesion_location": str}
    assert {name: type(record[name]) for name in types} == types
    expected = tiny_model.analyze(data, name=path.name)
    assert np.allclose(probabilities(record, expected.labels), expected.probabilities, atol=1e-6, rtol=0)
    assert abs(record["malignant_score"] - expected.malignant_score) < 1e-6
    assert record["image_sha256"] == expected.sha256 and record["file"] == path.name
    assert record["explanation"] == expected.explanation and record["grad_cam"].startswith("data:image/png;base64,")
    health = httpx.get(f"{base}/api/health").json()
    assert health["status"] == "healthy" and health["labels"] == expected.labels and health["uptime_seconds"] > 0


def test_16_concurrent_clients_are_batched_and_all_answered_correctly(server, tiny_model):
    base, _ = server
    paths = ham_sample(CLIENTS * 2)
    expected = {p.name: tiny_model.analyze(p.read_bytes()).probabilities for p in paths}
    before = httpx.get(f"{base}/api/health").json()["batching"]
    barrier = threading.Barrier(CLIENTS)
    answers: dict[str, dict] = {}
    failures: list[str] = []

    def client(mine):
        with httpx.Client(base_url=base, timeout=60) as http:
            barrier.wait()
            for p in mine:
                r = http.post("/api/predict", files={"file": (p.name, p.read_bytes(), "image/jpeg")})
                if r.status_code != 200:
                    failures.append(f"{p.name}: {r.status_code} {r.text[:200]}")
                else:
                    answers[p.name] = r.json()

    threads = [threading.Thread(target=client, args=(paths[i::CLIENTS],)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures and set(answers) == set(expected)
    labels = tiny_model.labels
    for name, record in answers.items():  # each answer is its own image's, whatever batch it rode in
        assert record["file"] == name
        assert np.allclose(probabilities(record, labels), expected[name], atol=1e-5, rtol=0), name
    after = httpx.get(f"{base}/api/health").json()["batching"]
    calls, images = after["engine_calls"] - before["engine_calls"], after["images"] - before["images"]
    assert images == len(paths)
    assert calls < len(paths) and after["largest_batch"] > 1, after  # really batched


def test_case_saved_through_the_server_and_nothing_private_in_its_log(server):
    base, log_path = server
    path = ham_sample(1)[0]
    auth = {"X-API-Key": KEY}
    saved = httpx.post(f"{base}/api/predict?save=true", files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                       data={"patient_id": SECRET_PATIENT, "body_site": "left calf"}, headers=auth, timeout=30)
    assert saved.status_code == 200, saved.text
    case_id = saved.json()["case_id"]
    put = httpx.put(f"{base}/api/cases/{case_id}/decision", json={"reviewer_agrees": True, "management": "monitor"},
                    headers=auth)
    assert put.status_code == 200
    cases = httpx.get(f"{base}/api/cases", headers=auth).json()["cases"]
    assert any(c["case_id"] == case_id and c["patient_id"] == SECRET_PATIENT and c["management"] == "monitor"
               for c in cases)
    assert httpx.get(f"{base}/api/cases").status_code == 401
    time.sleep(0.5)  # let the access log flush
    log = log_path.read_text(errors="replace")
    assert "/api/predict" in log  # the access log is there...
    assert SECRET_PATIENT not in log and "left calf" not in log and "Traceback" not in log  # ...with nothing private
    assert "JFIF" not in log and "base64" not in log


def test_the_api_never_imports_streamlit():
    code = ("import sys, dermascan.api.app, dermascan.api.server, dermascan.cli; "
            "sys.exit(any(m.split('.')[0] == 'streamlit' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0
