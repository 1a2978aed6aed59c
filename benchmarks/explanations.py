"""Benchmark: what the explanations cost on top of one analysis, measured against it in the same run.

    .venv/bin/python benchmarks/explanations.py [--runs 40] [--model PATH]

Variants, each run once per round in a rotating order (so every variant sees the same machine state),
medians over ``--runs`` rounds on real HAM10000 images (bytes in, overlay out, as the Analyze page):

- ``analysis``: ``model.analyze(bytes)`` + ``overlay()``: today's single analysis;
- ``default``: the same + stability under ``views.STABILITY_VIEWS`` (4 views): the page's default;
- ``default_8_views``: stability under all 8 symmetries of a square input;
- ``default_faithfulness``: the default + the faithfulness drop (one more image in the same call);
- ``curves``: the analysis + the full deletion / insertion curves (``faithfulness.faithfulness``, 23 images);
- ``method_<name>``: the analysis with each other CAM method;
- ``tta_2`` / ``tta_4``: the analysis averaged over 2 views (the image and its mirror) or ``views.DEFAULT_TTA``'s
  4, as a card's ``tta`` makes every analysis (all views in the one compiled call).

Prints the medians and each variant's ratio to ``analysis`` and writes them as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dermascan  # noqa: E402
from dermascan.cam import METHOD_NAMES  # noqa: E402
from dermascan.evaluation import trust  # noqa: E402
from dermascan.evaluation.faithfulness import faithfulness  # noqa: E402
from dermascan.inference.views import ALL_VIEWS, DEFAULT_TTA, STABILITY_VIEWS  # noqa: E402

IMAGES = REPO.parent / "shared" / "data" / "ham10000_224" / "images"
GOAL = 2.0  # the default analysis (with stability) at most twice the analysis alone


def variants(model) -> dict:
    """name -> function of the image bytes."""
    def analysis(data, **kw):
        a = model.analyze(data, **kw)
        a.overlay()
        return a

    out = {
        "analysis": analysis,
        "default": lambda d: trust.check(model, [analysis(d)], faithfulness=False, views=STABILITY_VIEWS),
        "default_8_views": lambda d: trust.check(model, [analysis(d)], faithfulness=False, views=ALL_VIEWS),
        "default_faithfulness": lambda d: trust.check(model, [analysis(d)], faithfulness=True, views=STABILITY_VIEWS),
        "curves": lambda d: faithfulness(model, analysis(d)),
        "tta_2": lambda d: analysis(d, tta=("identity", "hflip")),
        "tta_4": lambda d: analysis(d, tta=DEFAULT_TTA),
    }
    for method in METHOD_NAMES:
        if method != model.card.cam_method:
            out[f"method_{method}"] = lambda d, m=method: analysis(d, cam_method=m)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()
    paths = sorted(IMAGES.glob("ISIC_*.jpg"))[:20]
    if not paths:
        print(f"No images in {IMAGES}", file=sys.stderr)
        return 1
    data = [p.read_bytes() for p in paths]
    model = dermascan.load_model(args.model)
    funcs = variants(model)
    for f in funcs.values():  # warm-up: every method traced, every buffer allocated
        f(data[0])
    times: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for r in range(args.runs):
        image = data[r % len(data)]
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            funcs[name](image)
            times[name].append((time.perf_counter() - start) * 1000.0)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["analysis"]
    print(f"model: {model.describe()['name']}; {args.runs} rounds; medians in ms, ratio to the analysis alone")
    for name, ms in medians.items():
        print(f"  {name:24s} {ms:8.1f} ms  x{ms / base:5.2f}")
    verdict = "met" if medians["default"] / base <= GOAL else "missed"
    print(f"default (4-view stability) / analysis = {medians['default'] / base:.2f} (goal <= {GOAL}: {verdict})")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "median_ms": medians,
                                               "ratio": {k: v / base for k, v in medians.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
