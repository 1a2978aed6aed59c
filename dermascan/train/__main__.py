"""Command line: ``python -m dermascan.train --data ../shared/data/ham10000_224 --out model/``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..config import DEFAULT_MODELS_DIR, TRAINING_DATA
from .fitting import FitConfig
from .pipeline import RunOptions, run_training

WEIGHTS_NAME = "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the training options."""
    p = argparse.ArgumentParser(prog="python -m dermascan.train", description=__doc__)
    p.add_argument("--data", type=Path, default=TRAINING_DATA, help="folder with labels.csv and images/")
    p.add_argument("--out", type=Path, default=DEFAULT_MODELS_DIR, help="output folder (model, card, split, log)")
    p.add_argument("--weights", type=Path, default=None,
                   help=f"ImageNet backbone weights (default: <data>/../weights/{WEIGHTS_NAME}; 'none' for random)")
    p.add_argument("--epochs-head", type=int, default=2)
    p.add_argument("--epochs-finetune", type=int, default=30, help="maximum; the time budget may stop earlier")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--limit", type=int, default=None, help="use only N images (tests)")
    p.add_argument("--time-budget-min", type=float, default=50.0, help="wall-clock budget including evaluation")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--head-lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--finetune-from", default=None, help="first backbone layer to unfreeze (default: all)")
    p.add_argument("--class-weight-power", type=float, default=0.5, help="0 none, 1 inverse frequency")
    p.add_argument("--sampling-power", type=float, default=0.0, help="0 natural, 1 class-balanced sampling")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--probe", action="store_true", help="recipe probe: validation only, no test, no export")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one training from the command line."""
    args = parse_args(argv)
    weights = args.weights or args.data.parent / "weights" / WEIGHTS_NAME
    if str(weights).lower() == "none":
        weights = None
    elif not Path(weights).is_file():
        print(f"Backbone weights not found: {weights}", file=sys.stderr)
        return 2
    if not (args.data / "labels.csv").is_file():
        print(f"No labels.csv in {args.data}", file=sys.stderr)
        return 2
    config = FitConfig(
        epochs_head=args.epochs_head,
        epochs_finetune=args.epochs_finetune,
        batch_size=args.batch_size,
        head_lr=args.head_lr,
        finetune_lr=args.finetune_lr,
        finetune_from=args.finetune_from,
        class_weight_power=args.class_weight_power,
        sampling_power=args.sampling_power,
    )
    options = RunOptions(
        data=args.data,
        out=args.out,
        weights=Path(weights) if weights else None,
        seed=args.seed,
        limit=args.limit,
        time_budget_min=args.time_budget_min,
        dropout=args.dropout,
        probe=args.probe,
        command="python -m dermascan.train " + shlex.join(argv if argv is not None else sys.argv[1:]),
    )
    run_training(options, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
