"""Benchmark: the HTTP API under 1, 4 and 16 concurrent clients, against baselines taken in the same run.

    .venv/bin/python benchmarks/api.py [--model PATH] [--requests 256] [--rounds 3]

A real ``python -m dermascan serve`` process on 127.0.0.1 serves the model; clients are threads with
their own ``httpx.Client`` (in up to 4 client processes) posting real HAM10000 images to ``/api/predict``
(Grad-CAM overlay included).
Baselines, measured in this process while the server is idle, on the same model and images:

* seed: the original backend's per-request pipeline (``benchmarks/pipeline.py``'s ``seed_pipeline``),
  one request at a time as it served them: requests/s = 1000 / its median ms;
* engine single: ``model.analyze(bytes).to_dict()`` median ms; HTTP overhead: ``GET /api/health`` median ms;
* engine batch: ``run_batch(..., with_cam=True)`` images/s over the same images.

Goals (issue 13): with 16 clients, API requests/s >= 0.7x the engine's batch throughput with Grad-CAM;
p99 latency with 1 client <= 2x (engine single + HTTP overhead). Clients and server share this machine's
CPUs, so the client's own work counts against the API. Writes benchmarks/results/api.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from dermascan.config import BUNDLED_MODEL  # noqa: E402 - no TensorFlow: client processes import this file

CONCURRENCY = (1, 4, 16)
CLIENT_PROCESSES = 4
GOALS = {"clients16_over_batch": (">=", 0.7), "p99_1client_over_single_plus_http": ("<=", 2.0)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DERMASCAN_API_RATE_LIMIT": "off", "PYTHONPATH": str(REPO),
           "DERMASCAN_REVIEW_DB": str(REPO / "benchmarks" / "results" / "api-bench.sqlite3")}
    proc = subprocess.Popen([sys.executable, "-m", "dermascan", "serve", "--port", str(port), "--model", str(model)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not become ready")


def client_threads(base: str, paths: list[Path], clients: int, per_client: int, offset: int, start_at: float) -> dict:
    """``clients`` threads, each posting ``per_client`` images from ``start_at`` (a time.time()); latencies in ms."""
    payloads = [(p.name, p.read_bytes()) for p in paths]
    latencies: list[float] = []
    errors: list[int] = []
    ends: list[float] = []

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            http.get("/api/health")  # connect before the clock starts
            time.sleep(max(0.0, start_at - time.time()))
            for i in range(per_client):
                name, data = payloads[(offset + k * per_client + i) % len(payloads)]
                start = time.perf_counter()
                r = http.post("/api/predict", files={"file": (name, data, "image/jpeg")})
                latencies.append((time.perf_counter() - start) * 1000.0)
                if r.status_code != 200:
                    errors.append(r.status_code)
        ends.append(time.time())

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": len(errors), "end": max(ends)}


def load_test(base: str, paths: list[Path], clients: int, total: int) -> dict:
    """``clients`` clients post ``total`` requests in all; requests/s and latency percentiles (ms).

    Clients run in up to ``CLIENT_PROCESSES`` processes (threads within each), so the client side is not
    limited by one Python interpreter's lock; they start together at an agreed wall-clock time.
    """
    per_client = max(1, total // clients)
    procs = min(clients, CLIENT_PROCESSES)
    start_at = time.time() + 3.0  # after every worker has imported and connected
    workers = []
    for w in range(procs):
        mine = clients // procs + (w < clients % procs)
        arg = json.dumps({"base": base, "paths": [str(p) for p in paths], "clients": mine, "per_client": per_client,
                          "offset": w * 1000, "start_at": start_at})
        workers.append(subprocess.Popen([sys.executable, __file__, "--worker", arg], stdout=subprocess.PIPE,
                                        text=True, cwd=REPO))
    outs = [json.loads(w.communicate()[0].strip().splitlines()[-1]) for w in workers]
    lat = np.array([x for out in outs for x in out["latencies"]])
    wall = max(out["end"] for out in outs) - start_at
    return {"clients": clients, "requests": len(lat), "errors": sum(o["errors"] for o in outs),
            "rps": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--requests", type=int, default=256, help="requests per load test")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one client process of a load test
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(client_threads(spec["base"], [Path(p) for p in spec["paths"]], spec["clients"],
                                        spec["per_client"], spec["offset"], spec["start_at"])))
        return
    # TensorFlow only in the measuring process, not in the client processes.
    from pipeline import IMAGES, median_ms, seed_pipeline  # benchmarks/ is the script folder

    import dermascan
    from dermascan.inference.batch import file_sources, run_batch

    paths = sorted(IMAGES.glob("*.jpg"))[:64]
    if not paths:
        raise SystemExit(f"no images in {IMAGES}")
    payloads = [(p.name, p.read_bytes()) for p in paths]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.model, port)
    try:
        model = dermascan.load_model(args.model)
        scale = {"raw": lambda x: x, "unit": lambda x: x / 255.0, "tf": lambda x: x / 127.5 - 1.0}
        scale = scale[model.card.preprocessing]
        data = payloads[0][1]
        res = {"model": args.model.name, "python": platform.python_version(), "cpus": os.cpu_count(),
               "seed_ms": median_ms(lambda: seed_pipeline(model.keras_model, data, model.input_size, scale), 20),
               "engine_single_ms": median_ms(lambda: model.analyze(data).to_dict(), 100, warmup=5)}
        with httpx.Client(base_url=base) as http:
            res["http_overhead_ms"] = median_ms(lambda: http.get("/api/health"), 100, warmup=5)
        batch_rounds, tests = [], {c: [] for c in CONCURRENCY}
        for _ in range(args.rounds):  # interleaved, so a burst of other load hits every measurement alike
            start = time.perf_counter()
            list(run_batch(model, file_sources(paths), with_cam=True))
            batch_rounds.append(len(paths) / (time.perf_counter() - start))
            for c in CONCURRENCY:
                tests[c].append(load_test(base, paths, c, args.requests))
                print(f"  {c:>2} clients: {tests[c][-1]['rps']:.1f} req/s, p50 {tests[c][-1]['p50_ms']:.1f} ms, "
                      f"p99 {tests[c][-1]['p99_ms']:.1f} ms", flush=True)
        res["rounds"] = {"engine_batch_cam_ips": batch_rounds, "api": {str(c): runs for c, runs in tests.items()}}
        res["engine_batch_cam_ips"] = statistics.median(batch_rounds)
        res["seed_rps"] = 1000.0 / res["seed_ms"]
        res["api"] = {str(c): {key: statistics.median(t[key] for t in runs) for key in runs[0]}
                      for c, runs in tests.items()}
        res["batching"] = httpx.get(f"{base}/api/health").json()["batching"]
    finally:
        server.terminate()
        server.wait(30)
    one, sixteen = res["api"]["1"], res["api"]["16"]
    per_round = [t["rps"] / b for t, b in zip(tests[16], batch_rounds, strict=True)]
    res["ratios"] = {"clients16_over_batch": sixteen["rps"] / res["engine_batch_cam_ips"],
                     "clients16_over_batch_per_round": per_round,
                     "p99_1client_over_single_plus_http": one["p99_ms"] / (res["engine_single_ms"]
                                                                          + res["http_overhead_ms"]),
                     "clients16_over_seed": sixteen["rps"] / res["seed_rps"],
                     "clients16_over_1client": sixteen["rps"] / one["rps"]}
    print(f"\nseed {res['seed_ms']:.1f} ms ({res['seed_rps']:.1f} req/s) | engine single "
          f"{res['engine_single_ms']:.1f} ms | HTTP overhead {res['http_overhead_ms']:.2f} ms | engine batch+CAM "
          f"{res['engine_batch_cam_ips']:.1f} img/s")
    for c in CONCURRENCY:
        a = res["api"][str(c)]
        print(f"API {c:>2} clients: {a['rps']:.1f} req/s, p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, "
              f"errors {a['errors']:.0f}")
    for key, value in res["ratios"].items():
        if isinstance(value, list):
            print(f"{key}: {', '.join(f'{v:.2f}' for v in value)}")
            continue
        goal = GOALS.get(key)
        verdict = "" if goal is None else (" ok" if (value >= goal[1] if goal[0] == ">=" else value <= goal[1])
                                           else " MISSED") + f" (goal {goal[0]} {goal[1]})"
        print(f"{key}: {value:.2f}{verdict}")
    print(f"batcher: {res['batching']}")
    out = REPO / "benchmarks" / "results" / "api.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
