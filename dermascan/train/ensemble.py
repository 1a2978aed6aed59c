"""Several trained networks as one Keras model: the mean of their logits, one compiled pass, one heatmap.

``combine`` joins members built by ``architecture.build_model`` (same scaling, same labels) into one flat
functional model: each member's backbone is cloned onto the shared input under its own name prefix, their last
feature maps are concatenated into one map that keeps the name ``out_relu`` (the card's CAM layer), then global
average pooling and one ``Dense`` softmax whose kernel stacks the members' kernels, each divided by the number of
members (and whose bias is their mean). So:

* the probabilities are the softmax of the mean of the members' logits (a geometric mean of their
  probabilities, renormalised): the ensemble is exact, not distilled;
* the engine sees an ordinary model ending in a Dense softmax: the temperature, the triage thresholds, TTA
  and the input gate (the penultimate features are the members' features side by side) need nothing new;
* Grad-CAM on the concatenated map is the sum of the members' Grad-CAMs before the ReLU (channel weights are
  per-channel means of the gradient, and each channel belongs to one member), so the heatmap explains the
  ensemble's score rather than one member's.

Members may take different input sizes (a 224 px MobileNetV2 beside a 260 px EfficientNet-Lite2). The model
takes the first member's input; each other member gets a ``Resizing`` layer in front of its first layer, which
resizes as the engine's preprocessing does (bilinear), so a member sees about what it was trained on. Their last
maps then differ too (7x7 and 9x9): each is resampled to the finest grid by area averaging, which keeps every
channel's spatial mean exactly, so the pooled features, and with them the probabilities, are still each
member's own; the heatmap of a resampled member is its own heatmap, resampled.

``python -m dermascan.train.ensemble --members RUN_A RUN_B --out DIR`` takes training runs' output folders
(their model, card and train log), checks that they were trained on one split with one scaling, combines them
and then does what a training run does after fitting: temperature and triage thresholds on validation, the
test report, the card (its provenance lists every member's command and minutes), the evaluation report and
the input gate (which reads each member's own earlier layer, ``gate.features.default_taps``). With
``--float16-kernels`` the kernels are rounded to float16 first and stored so (``weight_storage``): a file about
half the size, calibrated and evaluated as stored.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shlex
import sys
from pathlib import Path

import keras
import numpy as np

from ..config import TRAINING_DATA
from ..errors import DermascanError
from ..model.card import ModelCard
from .architecture import CAM_LAYER, MODEL_GRAPH_NAME
from .backbones import BACKBONES
from .export import build_card, release_version, thresholds_in_words
from .pipeline import PROBE_SUFFIX, V2_DATA_NAME, RunOptions, base_provenance, finish_trained
from .runlog import RunLog
from .trained_run import TrainedRun
from .weight_storage import round_kernels_to_float16


def member_prefix(index: int) -> str:
    """The name prefix of member ``index``'s cloned layers (``m0_``, ``m1_``, ...)."""
    return f"m{index}_"


def _renamed_clone(prefix: str):
    def clone(layer):
        config = layer.get_config()
        config["name"] = prefix + layer.name
        return layer.__class__.from_config(config)

    return clone


def _check_members(members: list) -> None:
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    channels = {m.input_shape[-1] for m in members}
    if len(channels) != 1 or any(len(m.input_shape) != 4 for m in members):
        raise ValueError(f"the members take different kinds of input: {sorted({m.input_shape for m in members})}")
    classes = {m.layers[-1].units for m in members}
    if len(classes) != 1:
        raise ValueError(f"the members have different numbers of classes: {sorted(classes)}")
    for m in members:
        if CAM_LAYER not in {layer.name for layer in m.layers} or not isinstance(m.layers[-1], keras.layers.Dense):
            raise ValueError(f"{m.name} is not a model of architecture.build_model (no {CAM_LAYER} before a Dense)")


def _resized_input(inputs, side: tuple[int, int], prefix: str):
    """A ``call_function`` for ``clone_model`` that puts one ``Resizing`` layer between ``inputs`` and every
    layer of the member that reads it (Keras's documented way to insert a layer while cloning)."""
    resized = []
    # Bilinear as the engine enlarges; antialiased when shrinking, near the engine's area averaging (TensorFlow's
    # area resize has no gradient, and the heatmap's tape needs one for every op it recorded).
    shrinking = side[0] * side[1] < inputs.shape[1] * inputs.shape[2]

    def call(layer, *args, **kwargs):
        if args and args[0] is inputs:
            if not resized:
                resized.append(keras.layers.Resizing(*side, interpolation="bilinear", antialias=shrinking,
                                                     name=prefix + "input_resize")(inputs))
            args = (resized[0], *args[1:])
        return layer(*args, **kwargs)

    return call


def _area_resampled(fmap, grid: tuple[int, int], prefix: str):
    """``fmap`` resampled to ``grid`` by area averaging, one axis at a time: nearest-neighbour upsampling to the
    sides' least common multiple, then average pooling down to the grid. Each output cell is the exact mean of
    the input area it covers, so every channel's spatial mean is kept (and with it the pooled features), and,
    unlike TensorFlow's area resize, both layers have gradients."""
    for axis, name in ((0, "rows"), (1, "cols")):
        source, target = fmap.shape[1 + axis], grid[axis]
        if source == target:
            continue
        common = math.lcm(source, target)
        up, pool = [1, 1], [1, 1]
        up[axis], pool[axis] = common // source, common // target
        fmap = keras.layers.UpSampling2D(tuple(up), interpolation="nearest", name=f"{prefix}map_{name}_up")(fmap)
        fmap = keras.layers.AveragePooling2D(tuple(pool), name=f"{prefix}map_{name}_mean")(fmap)
    return fmap


def combine(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the softmax of the mean of the members' logits (see the module doc); it takes
    the first member's input size."""
    _check_members(members)
    inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
    grids = [tuple(m.get_layer(CAM_LAYER).output.shape[1:3]) for m in members]
    grid = max(grids, key=lambda hw: hw[0] * hw[1])
    maps, kernels, biases = [], [], []
    for index, member in enumerate(members):
        prefix = member_prefix(index)
        trunk = keras.Model(member.input, member.get_layer(CAM_LAYER).output)
        side = tuple(member.input_shape[1:3])
        call = None if side == tuple(inputs.shape[1:3]) else _resized_input(inputs, side, prefix)
        clone = keras.models.clone_model(trunk, input_tensors=inputs, clone_function=_renamed_clone(prefix),
                                         call_function=call)
        clone.set_weights(trunk.get_weights())
        maps.append(_area_resampled(clone.output, grid, prefix))
        kernel, bias = member.layers[-1].get_weights()
        kernels.append(kernel)
        biases.append(bias)
    fmap = keras.layers.Concatenate(axis=-1, name=CAM_LAYER)(maps)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(fmap)
    head = keras.layers.Dense(kernels[0].shape[1], activation="softmax", dtype="float32", name="probabilities")
    outputs = head(pooled)
    head.set_weights([np.concatenate(kernels, axis=0) / len(members), np.mean(biases, axis=0)])
    return keras.Model(inputs, outputs, name=MODEL_GRAPH_NAME)


# Recipe fields that may differ between members (what makes them diverse); every other field must agree. The
# backbone and its input size may differ (different networks make different mistakes; ``combine`` resizes the
# input for each member); how a member handles class imbalance (logit adjustment, class weights, sampling) may
# not: averaging the logits of a balanced-posterior model and a prevalence model mixes two priors.
MAY_DIFFER = ("backbone", "input_size", "sog_prob", "rrc_min_area", "ema", "epochs_finetune", "finetune_lr",
              "head_lr", "weight_decay", "epochs_head", "finetune_from", "batch_size", "train_bn")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_compatible(members: list[TrainedRun]) -> dict:
    """The recipe fields the members share (a ``DermascanError`` when the scaling, labels or split differ)."""
    if len(members) < 2:
        raise DermascanError("An ensemble needs at least two members.")
    first = members[0]
    for member in members[1:]:
        for what in ("labels", "preprocessing", "resize", "malignant_labels"):
            if getattr(member.card, what) != getattr(first.card, what):
                raise DermascanError(f"{member.folder.name} and {first.folder.name} differ in their card's {what}.")
        fixed = [k for k in set(first.recipe) | set(member.recipe)
                 if k not in MAY_DIFFER and first.recipe.get(k) != member.recipe.get(k)]
        if fixed:
            raise DermascanError(f"{member.folder.name} and {first.folder.name} differ in {', '.join(sorted(fixed))}.")
    for member in members:
        if "split_v2" not in member.split_file.name:
            raise DermascanError(f"{member.folder.name} was not trained on the lesion-grouped split (--data-v2).")
        if not member.split_file.is_file():
            raise DermascanError(f"{member.folder.name}: its split file {member.split_file} is missing.")
    if len({_digest(m.split_file) for m in members}) != 1:
        raise DermascanError("The members were trained on different splits; they cannot share one test split.")
    return {k: v for k, v in first.recipe.items() if all(m.recipe.get(k) == v for m in members)}


def run_ensemble(member_folders: list[Path], out: Path, model_version: str, *, data: Path = TRAINING_DATA,
                 seed: int = 42, command: str = "", probe: bool = False, float16_kernels: bool = False) -> dict:
    """Combine the runs in ``member_folders`` and calibrate, evaluate and export the result into ``out``
    (``probe``: validation only, as ``dermascan.train --probe``: the test split is never read;
    ``float16_kernels``: kernels rounded to float16 before calibration, and so stored: ``weight_storage``).

    ``model_version`` must differ from every member's: the review log keys earlier reviews by model version.
    """
    if len(member_folders) < 2:
        raise DermascanError("An ensemble needs at least two members.")
    members = [TrainedRun(folder) for folder in member_folders]
    shared = check_compatible(members)
    taken = {m.card.version.removesuffix(PROBE_SUFFIX) for m in members}
    if model_version in taken:
        raise DermascanError(f"Version {model_version} is a member's; the ensemble needs a version of its own.")
    log = RunLog(Path(out) / ("probe_log.txt" if probe else "train_log.txt"))
    keras.utils.set_random_seed(seed)
    config = members[0].fit_config()
    options = RunOptions(data=Path(data), out=Path(out), weights=None, seed=seed, data_v2=True, probe=probe,
                         split_v2=members[0].split_file, model_version=model_version, command=command)
    log(f"command: {command}")
    for member in members:
        log(f"member {member.folder.name}: {member.card.name} {member.card.version}, "
            f"{member.total_minutes:.1f} min, `{member.command}`")
    labels = list(members[0].card.labels)
    model = combine([m.model for m in members])
    log(f"combined {len(members)} members: {model.count_params():,} parameters, CAM layer {CAM_LAYER} "
        f"({model.get_layer(CAM_LAYER).output.shape[-1]} channels), input {model.input_shape[1:3]}")
    if float16_kernels:
        log(f"kernels rounded to float16 ({round_kernels_to_float16(model):,} values), before calibration: "
            "every number below is the stored network's")

    def card_for(calibration, loaded, metrics: dict) -> ModelCard:
        provenance = base_provenance(options, loaded, log, sum(m.training_minutes for m in members))
        provenance.update({
            "code": "dermascan/train (python -m dermascan.train per member, then dermascan.train.ensemble)",
            # The whole recipe: every member's run, then this one (up to export).
            "total_minutes_incl_evaluation": round(sum(m.total_minutes for m in members) + log.elapsed_min, 2),
            "recipe": {**shared, "ensemble": f"softmax of the mean of {len(members)} members' logits",
                       **({"float16_kernels": True} if float16_kernels else {})},
            "members": [{"command": m.command, "minutes": round(m.total_minutes, 2),
                         "recipe": {k: v for k, v in m.recipe.items() if k not in shared}} for m in members],
        })
        return build_card(labels, calibration.temperature, calibration.thresholds, metrics, provenance,
                          BACKBONES[config.backbone].weights_file, config.backbone,
                          tuple(members[0].card.input_size), V2_DATA_NAME,
                          version=model_version,
                          thresholds_note=thresholds_in_words(calibration.thresholds, calibration.val_after,
                                                              calibration.malignant),
                          member_backbones=tuple(m.recipe["backbone"] for m in members),
                          member_sides=tuple(tuple(m.card.input_size) for m in members))

    return finish_trained(model, options, config, labels, members[0].card.preprocessing, log, card_for)


def main(argv: list[str] | None = None) -> int:
    """Combine trained runs into one model from the command line."""
    p = argparse.ArgumentParser(prog="python -m dermascan.train.ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=Path, nargs="+", required=True,
                   help="output folders of python -m dermascan.train runs (two or more)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=TRAINING_DATA, help="ham10000_224/ (its parent holds both folders)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model-version", type=release_version, required=True,
                   help="the card's version, not a member's (the review log keys earlier reviews by version)")
    p.add_argument("--probe", action="store_true",
                   help="validation only: the test split is never read; no test report, no gate")
    p.add_argument("--float16-kernels", action="store_true",
                   help="round kernels to float16 before calibration and store them so: about half the file; "
                        "the network still computes in float32")
    args = p.parse_args(argv)
    command = "python -m dermascan.train.ensemble " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        run_ensemble(args.members, args.out, args.model_version, data=args.data, seed=args.seed, command=command,
                     probe=args.probe, float16_kernels=args.float16_kernels)
    except (DermascanError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
