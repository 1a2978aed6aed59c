"""Benchmark: the input gate on the OOD set (``benchmarks/ood_set.py``) and on the HAM10000 TEST split.

    .venv/bin/python benchmarks/ood_gate.py [--set holdout] [--json out.json]

Targets (issue 16): >= 90% of the OOD set flagged indeterminate, <= 5% of the bundled model's test split
(the split its card names, never used to fit the statistics or pick the threshold) flagged. Prints both, with
the reasons broken down and the gate's own cost per image (quality checks on the pixels; the OOD
score comes out of the compiled pass). ``--set holdout`` scores ``ood_holdout_set.py``'s images instead, a set
built after the gate's layers were chosen on the first one. The model is the bundled one, or ``$DERMASCAN_MODEL``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

HAM = REPO.parent / "shared" / "data" / "ham10000_224" / "images"


def _flagged(analyses) -> tuple[float, Counter]:
    reasons = Counter(r for a in analyses for r in a.gate.reasons)
    return float(np.mean([a.gate.status == "indeterminate" for a in analyses])), reasons


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the two rates (and write them to ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--set", choices=("benchmark", "holdout"), default="benchmark",
                        help="which OOD set: ood_set.py's (default) or ood_holdout_set.py's")
    args = parser.parse_args(argv)
    from ood_holdout_set import build_holdout_set
    from ood_set import build_ood_set

    import dermascan
    from dermascan.gate.quality import check_quality
    from dermascan.intake.images import read_image_file

    model = dermascan.load_model()
    from dermascan.train.split import model_split_images

    if not HAM.is_dir():
        print("../shared/data/ham10000_224 is not present", file=sys.stderr)
        return 2
    ood = build_holdout_set() if args.set == "holdout" else build_ood_set()
    ood_results = []
    for start in range(0, len(ood), 32):
        ood_results += model.analyze_many([img for _, img in ood[start : start + 32]])
    test_results = []
    test_paths = model_split_images(model, "test")[0]
    for start in range(0, len(test_paths), 32):
        images = [read_image_file(p) for p in test_paths[start : start + 32]]
        test_results += model.analyze_many(images)
    ood_rate, ood_reasons = _flagged(ood_results)
    test_rate, test_reasons = _flagged(test_results)
    per_kind = {}
    for (kind, _), a in zip(ood, ood_results, strict=True):
        per_kind.setdefault(kind, []).append(a.gate.status == "indeterminate")
    image = read_image_file(test_paths[0])
    runs = []
    for _ in range(50):
        t = time.perf_counter()
        check_quality(image)
        runs.append((time.perf_counter() - t) * 1000)
    result = {"ood_set": args.set, "ood_images": len(ood), "ood_flagged": ood_rate, "test_images": len(test_results),
              "test_flagged": test_rate, "ood_per_kind": {k: float(np.mean(v)) for k, v in per_kind.items()},
              "ood_reasons": dict(ood_reasons), "test_reasons": dict(test_reasons),
              "quality_checks_ms_median": float(np.median(runs)), "threshold": model.ood_threshold}
    print(f"OOD set ({args.set}): {ood_rate:.1%} of {len(ood)} flagged (target >= 90%)")
    print(f"HAM10000 test split: {test_rate:.1%} of {len(test_results)} flagged (target <= 5%)")
    print("per kind:", ", ".join(f"{k} {v:.0%}" for k, v in result["ood_per_kind"].items()))
    print("test reasons:", dict(test_reasons))
    print(f"quality checks: {result['quality_checks_ms_median']:.2f} ms per image (median)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
