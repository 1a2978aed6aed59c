"""Benchmark: how faithful each CAM method's maps are on the bundled model, against a random map.

    .venv/bin/python benchmarks/faithfulness.py [--images 40] [--cam gradcam --cam eigencam ...]

On N real HAM10000 images of the bundled model's test split (the split its card names), it runs
``explain-check``'s engine (``dermascan.evaluation.explain_check``): for each method the mean deletion
AUC (lower is better), insertion AUC and drop, the random map's in the same run, their ratio
(deletion AUC / random's: below 1 means the map finds what the prediction depends on), and the
model-randomisation correlation. Prints a table and writes every number to
``benchmarks/results/faithfulness.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dermascan  # noqa: E402
from dermascan.cam import METHOD_NAMES  # noqa: E402
from dermascan.config import BUNDLED_MODEL  # noqa: E402
from dermascan.evaluation.explain_check import explain_check, format_check  # noqa: E402
from dermascan.intake.images import read_image_file  # noqa: E402

IMAGES = REPO.parent / "shared" / "data" / "ham10000_224" / "images"
RESULTS = REPO / "benchmarks" / "results" / "faithfulness.json"


def split_images(model, n: int) -> list[Path]:
    """The first ``n`` images (sorted ids) of the model's test split: images it never trained on."""
    from dermascan.train.split import model_split_images

    paths = model_split_images(model, "test")[0]
    return sorted(paths, key=lambda p: p.stem)[:n]


def main() -> int:
    """Run the benchmark; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="images of the test split (default 40)")
    parser.add_argument("--cam", action="append", choices=METHOD_NAMES, help="a method, repeatable (default: all)")
    args = parser.parse_args()
    if not IMAGES.is_dir():
        print(f"error: the HAM10000 images are not in {IMAGES}", file=sys.stderr)
        return 2
    model = dermascan.load_model(BUNDLED_MODEL)
    images = [read_image_file(p) for p in split_images(model, args.images)]
    start = time.perf_counter()
    report = explain_check(model, images, args.cam or list(METHOD_NAMES))
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(format_check(report))
    print(f"{report['seconds']} s for {len(images)} images and {len(report['methods'])} methods")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
