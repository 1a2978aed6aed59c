"""Command line: ``python -m dermascan.train --data ../shared/data/ham10000_224 --out model/``."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from ..config import DEFAULT_MODELS_DIR, REPO_ROOT, TRAINING_DATA
from .backbones import BACKBONES
from .export import release_version
from .fitting import FitConfig
from .pipeline import SPLIT_V2, RunOptions, run_training
from .split import SOURCE_224, SOURCE_FULL

WEIGHTS_NAME = BACKBONES["mnv2-0.35"].weights_file
BACKBONE_CACHE = REPO_ROOT / ".cache" / "backbones"  # where `make backbone-weights` puts the .pth files


def _bounded(low: float, high: float, *, low_open: bool = False):
    """An argparse type: a finite float in [low, high] (or (low, high] when ``low_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{text} is outside {'(' if low_open else '['}{low}, {high}]")
        return value
    return parse


def default_weights(backbone: str, data: Path) -> Path:
    """Where a backbone's ImageNet weights are found when ``--weights`` is not given."""
    name = BACKBONES[backbone].weights_file
    return data.parent / "weights" / name if backbone == "mnv2-0.35" else BACKBONE_CACHE / name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the training options."""
    p = argparse.ArgumentParser(prog="python -m dermascan.train", description=__doc__)
    p.add_argument("--data", type=Path, default=TRAINING_DATA, help="folder with labels.csv and images/")
    p.add_argument("--out", type=Path, default=DEFAULT_MODELS_DIR, help="output folder (model, card, split, log)")
    p.add_argument("--weights", type=Path, default=None,
                   help=f"ImageNet backbone weights (default: <data>/../weights/{WEIGHTS_NAME} for mnv2-0.35, "
                        ".cache/backbones/<file> from `make backbone-weights` for the torch ports; 'none' for random)")
    p.add_argument("--backbone", choices=sorted(BACKBONES), default="mnv2-0.35")
    p.add_argument("--data-v2", action="store_true",
                   help=f"use the lesion-grouped {SPLIT_V2.name} (all 10,015 images; <data>/.. holds both folders)")
    p.add_argument("--input-size", type=int, default=224, choices=[160, 192, 224, 240, 256, 260, 288, 320],
                   help="square model input side in pixels")
    p.add_argument("--logit-adjust", type=_bounded(0.0, 5.0), default=0.0, metavar="TAU",
                   help="logit-adjusted cross-entropy (Menon et al.), tau; 0 off (use with --class-weight-power 0)")
    p.add_argument("--ema", type=_bounded(0.0, 1.0, low_open=True), default=None, metavar="DECAY",
                   help="EMA of the fine-tuned weights with this decay per step (e.g. 0.999); off by default")
    p.add_argument("--rrc-min-area", type=_bounded(0.05, 1.0), default=None, metavar="FRACTION",
                   help="random-resized-crop with area in [FRACTION, 1]; default: mild square zoom (85-100%%)")
    p.add_argument("--sog-prob", type=_bounded(0.0, 1.0), default=0.0, metavar="P",
                   help="probability of Shades-of-Gray colour constancy as augmentation")
    p.add_argument("--epochs-head", type=int, default=2)
    p.add_argument("--epochs-finetune", type=int, default=30, help="maximum; the time budget may stop earlier")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--limit", type=int, default=None, help="use only N images (tests)")
    p.add_argument("--time-budget-min", type=float, default=50.0, help="wall-clock budget including evaluation")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--head-lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--finetune-from", default=None, help="first backbone layer to unfreeze (default: all)")
    p.add_argument("--train-bn", action="store_true",
                   help="fine-tune BatchNorm layers too (default: frozen, in inference mode)")
    p.add_argument("--class-weight-power", type=float, default=0.5, help="0 none, 1 inverse frequency")
    p.add_argument("--sampling-power", type=float, default=0.0, help="0 natural, 1 class-balanced sampling")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--probe", action="store_true",
                   help="recipe probe: the test split is never read; the model and card are saved with validation "
                        "metrics only (for compare_models)")
    p.add_argument("--train-sources", nargs="+", choices=[SOURCE_224, SOURCE_FULL], default=None,
                   help="with --data-v2: train only on the images of these folders (validation and test keep all)")
    p.add_argument("--model-version", default=None, type=release_version,
                   help="the card's version (default: 1.0.0 for the v1 recipe, else 2.0.0); a shipped recipe "
                        "change needs a new one, since the review log keys earlier reviews by model version")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one training from the command line."""
    args = parse_args(argv)
    if args.train_sources and not args.data_v2:
        print("--train-sources needs --data-v2 (the v1 set has one folder)", file=sys.stderr)
        return 2
    weights = args.weights or default_weights(args.backbone, args.data)
    if str(weights).lower() == "none":
        weights = None
    elif not Path(weights).is_file():
        hint = "" if args.backbone == "mnv2-0.35" else " (run `make backbone-weights`)"
        print(f"Backbone weights not found: {weights}{hint}", file=sys.stderr)
        return 2
    if args.data_v2 and not SPLIT_V2.is_file():
        print(f"No lesion-grouped split at {SPLIT_V2} (python -m dermascan.train.split writes it)", file=sys.stderr)
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
        train_bn=args.train_bn,
        class_weight_power=args.class_weight_power,
        sampling_power=args.sampling_power,
        backbone=args.backbone,
        input_size=args.input_size,
        logit_adjust=args.logit_adjust,
        ema=args.ema,
        rrc_min_area=args.rrc_min_area,
        sog_prob=args.sog_prob,
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
        data_v2=args.data_v2,
        model_version=args.model_version,
        train_sources=tuple(args.train_sources) if args.train_sources else None,
        command="python -m dermascan.train " + shlex.join(argv if argv is not None else sys.argv[1:]),
    )
    run_training(options, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
