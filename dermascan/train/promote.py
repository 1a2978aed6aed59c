"""A recipe probe finished into a release without training again: the network judged on validation is the one shipped.

``python -m dermascan.train.promote --run DIR --out DIR --model-version X.Y.Z`` takes the output folder of
``python -m dermascan.train ... --probe`` (a model and card with validation metrics only; the test split was never
read) and does what a full training run does after fitting: temperature and triage thresholds on validation (the
probe's own, recomputed from the same weights and images), the test report (the test split is read here for the
first time), the card, EVALUATION.md and the input gate. Training again without ``--probe`` would cost the run's
time again and, floating point being what it is across machines and thread counts, need not give the same
weights; promotion keeps the exact network the decision was made on. The card's provenance keeps the probe's
training command and adds this one.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..config import DEFAULT_MODELS_DIR, TRAINING_DATA
from ..errors import DermascanError
from ..model.card import ModelCard, read_card
from .backbones import BACKBONES
from .export import MODEL_NAME, build_card, release_version, thresholds_in_words, today
from .pipeline import (
    PROBE_SUFFIX,
    V2_DATA_NAME,
    RunOptions,
    finish_trained,
)
from .runlog import RunLog
from .trained_run import TrainedRun

BUNDLED_CARD = DEFAULT_MODELS_DIR / f"{MODEL_NAME}.card.json"


def _bundled_version() -> str | None:
    try:
        return read_card(BUNDLED_CARD).version
    except DermascanError:  # no bundled card (or an unreadable one) leaves nothing to collide with
        return None


def check_promotable(run: TrainedRun, model_version: str) -> None:
    """A ``DermascanError`` unless ``run`` is a lesion-grouped probe and ``model_version`` is free."""
    if not run.card.version.endswith(PROBE_SUFFIX):
        raise DermascanError(f"{run.folder.name} is not a recipe probe (version {run.card.version}); "
                             "only a probe made with --probe is promoted.")
    if "members" in (run.card.provenance or {}):
        raise DermascanError(f"{run.folder.name} is an ensemble probe; build the release with "
                             "python -m dermascan.train.ensemble (without --probe): combining does not train.")
    if "split_v2" not in run.split_file.name:
        raise DermascanError(f"{run.folder.name} was not trained on the lesion-grouped split (--data-v2).")
    if not run.split_file.is_file():
        raise DermascanError(f"{run.folder.name}: its split file {run.split_file} is missing.")
    if model_version == _bundled_version():
        raise DermascanError(f"Version {model_version} is the bundled model's; a promoted model needs a new one "
                             "(the review log keys reviews by model version).")


def promote(run_folder: Path, out: Path, model_version: str, *, data: Path = TRAINING_DATA,
            command: str = "") -> dict:
    """Calibrate, evaluate on test and export the probe in ``run_folder`` into ``out`` as ``model_version``."""
    run = TrainedRun(run_folder)
    check_promotable(run, model_version)
    provenance = dict(run.card.provenance)
    config = run.fit_config()
    options = RunOptions(data=Path(data), out=Path(out), weights=None, seed=int(provenance.get("seed", 42)),
                         data_v2=True, split_v2=run.split_file, model_version=model_version, command=command)
    log = RunLog(Path(out) / "train_log.txt")
    log(f"command: {command}")
    log(f"promoting {run.folder.name}: {run.card.name} {run.card.version}, {run.total_minutes:.1f} min, "
        f"`{run.command}`")
    labels = list(run.card.labels)

    def card_for(calibration, _data, metrics: dict) -> ModelCard:
        promoted = {**provenance,
                    "promoted": {"from": run.folder.name, "probe_version": run.card.version,
                                 "command": command, "date": today(), "minutes": round(log.elapsed_min, 2)},
                    "total_minutes_incl_evaluation": round(run.total_minutes + log.elapsed_min, 2)}
        return build_card(labels, calibration.temperature, calibration.thresholds, metrics, promoted,
                          BACKBONES[config.backbone].weights_file, config.backbone, tuple(run.card.input_size),
                          V2_DATA_NAME, version=model_version,
                          thresholds_note=thresholds_in_words(calibration.thresholds, calibration.val_after,
                                                              calibration.malignant))

    def compare_temperature(calibration) -> None:
        log(f"temperature {calibration.temperature:.4f} (the probe's card: {run.card.temperature:.4f})")

    return finish_trained(run.model, options, config, labels, run.card.preprocessing, log, card_for,
                          compare_temperature)


def main(argv: list[str] | None = None) -> int:
    """Promote a recipe probe from the command line."""
    p = argparse.ArgumentParser(prog="python -m dermascan.train.promote", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="the output folder of a dermascan.train --probe run")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=TRAINING_DATA, help="ham10000_224/ (its parent holds both folders)")
    p.add_argument("--model-version", type=release_version, required=True,
                   help="the release's version: not the bundled model's (the review log keys reviews by version)")
    args = p.parse_args(argv)
    command = "python -m dermascan.train.promote " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        promote(args.run, args.out, args.model_version, data=args.data, command=command)
    except (DermascanError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
