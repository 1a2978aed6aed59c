"""Saving the shipped model and writing its model card."""

from __future__ import annotations

import argparse
import datetime as _dt
import re
from pathlib import Path
from typing import Any

import keras

from ..model.card import HAM10000_DISPLAY_NAMES, ModelCard, default_malignant, write_card
from .architecture import CAM_LAYER, DEFAULT_BACKBONE, INPUT_SIZE, build_model
from .backbones import BACKBONES
from .weight_storage import store_exact_float16

MODEL_NAME = "dermascan-mnv2-ham10000"
MODEL_VERSION = "1.0.0"  # the v1 recipe (MobileNetV2-0.35, the 5,984-image set)
MODEL_VERSION_V2 = "2.0.0"  # the v2 recipe (a ported backbone or the lesion-grouped 10,015-image split)

LIMITATIONS = [
    "Dermoscopic images only: not validated on clinical (non-dermoscopic) or phone photographs.",
    "Lighter skin types dominate HAM10000 (Austria, Australia); performance on darker skin is unknown.",
    "Trained on square images squashed from whole 600x450 frames: feed the full dermoscopic frame, squash-resized.",
    "Seven HAM10000 classes only: any other lesion (or a non-lesion image) is forced into one of them.",
    "Evaluated on an internal held-out split of the same dataset only; no external validation.",
    "The test split is small for the rare classes (df, vasc, akiec): their per-class numbers are uncertain.",
    "Triage thresholds were set on the validation split; sensitivity on new populations may be lower.",
    "No patient metadata (age, sex, site) is used as input; subgroup results are in the evaluation report.",
]
# How the recipe handled class imbalance, in words: one of these two joins the limitations (limitations_for).
CLASS_WEIGHTS_LIMITATION = (
    "Trained with inverse-frequency class weights, so raw probabilities favour rare classes over HAM10000 "
    "prevalence; calibration is a single temperature fitted on validation, not a prior correction.")
LOGIT_ADJUSTED_LIMITATION = (
    "Trained with a logit-adjusted loss (the training prior added to the logits during training only), so the "
    "shipped probabilities estimate a class-balanced posterior and favour rare classes over HAM10000 prevalence; "
    "calibration is a single temperature fitted on validation, not a prior correction.")
# The v2 data: what the lesion-grouped 10,015-image set adds to the list.
LIMITATIONS_V2 = [
    "4,031 of the 10,015 training and test images exist only at 200x150 and were upscaled to the input size; "
    "results on sharper frames may differ somewhat.",
    "Several images of one lesion are common in HAM10000: all of a lesion's images are in one split, but the "
    "per-image test numbers weigh lesions with many images more.",
]


def release_version(text: str) -> str:
    """An argparse type for ``--model-version``: a dotted release number such as 2.1.0."""
    if not re.fullmatch(r"\d{1,4}(\.\d{1,4}){1,3}", text):
        raise argparse.ArgumentTypeError(f"not a version like 2.1.0: {text!r}")
    return text


def limitations_for(provenance: dict) -> list[str]:
    """The card's limitations for a model of this ``provenance``: its split file (v1 ``split.csv`` or v2
    ``split_v2.csv``) and its recipe's way with class imbalance."""
    recipe = provenance.get("recipe") or {}
    imbalance = LOGIT_ADJUSTED_LIMITATION if recipe.get("logit_adjust") else CLASS_WEIGHTS_LIMITATION
    v2 = LIMITATIONS_V2 if "split_v2" in str(provenance.get("split_file", "")) else []
    return [*LIMITATIONS, imbalance, *v2]


def strip_for_inference(model: keras.Model, n_classes: int, dropout: float, backbone: str = DEFAULT_BACKBONE,
                        input_size: tuple[int, int] = INPUT_SIZE) -> keras.Model:
    """A fresh, uncompiled copy with the trained weights (no optimizer state, default trainable flags)."""
    clean = build_model(n_classes, backbone_weights=None, dropout=dropout, backbone_name=backbone,
                        input_size=input_size)
    clean.set_weights(model.get_weights())
    return clean


def build_card(
    labels: list[str],
    temperature: float,
    thresholds: dict[str, float],
    metrics: dict[str, Any],
    provenance: dict[str, Any],
    backbone_weights_name: str,
    backbone: str = DEFAULT_BACKBONE,
    input_size: tuple[int, int] = INPUT_SIZE,
    training_data_name: str = "HAM10000 (5,984-lesion subset, 224 px)",
    *,
    version: str = MODEL_VERSION,
    thresholds_note: str = "",
    member_backbones: tuple[str, ...] = (),
    member_sides: tuple[tuple[int, int], ...] = (),
) -> ModelCard:
    """The model card of the shipped model (``member_backbones``: an ensemble, one backbone name per member;
    ``member_sides``: each member's own input size, when they differ from ``input_size``).

    ``version`` must change with the recipe: the review log keys earlier reviews of an image by model version.
    """
    info = BACKBONES[backbone]
    side = f"{input_size[0]}x{input_size[1]}"
    what = info.description
    if member_backbones:
        backbone_card, what = _ensemble_backbone(member_backbones, side, member_sides)
    elif backbone == DEFAULT_BACKBONE:
        backbone_card = {"name": f"MobileNetV2 (alpha 0.35, {side})",
                         "weights": f"ImageNet, {info.weights_source} ({backbone_weights_name})",
                         "license": info.license}
    else:
        backbone_card = {"name": f"{info.description} ({side})",
                         "weights": _ported_weights(info, backbone_weights_name), "license": info.license}
    card = ModelCard(
        labels=list(labels),
        display_names={k: HAM10000_DISPLAY_NAMES[k] for k in labels if k in HAM10000_DISPLAY_NAMES},
        malignant_labels=default_malignant(labels),
        preprocessing=info.scaling,
        resize="squash",
        input_size=list(input_size),
        temperature=float(temperature),
        thresholds={"medium": float(thresholds["medium"]), "high": float(thresholds["high"])},
        thresholds_note=thresholds_note,
        output="probabilities",
        cam_layer=CAM_LAYER,
        name=MODEL_NAME,
        version=version,
        description=(
            f"{what} fine-tuned on HAM10000 to classify "
            "dermoscopic images into 7 classes; outputs softmax probabilities, temperature-calibrated by the engine."
        ),
        backbone=backbone_card,
        training_data={
            "name": training_data_name,
            "credit": (
                "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source "
                "dermatoscopic images of common pigmented skin lesions. Sci. Data 5, 180161 (2018), "
                "doi:10.1038/sdata.2018.161"
            ),
            "license": "CC BY-NC 4.0",
            "note": "The model is derived from CC BY-NC 4.0 data and inherits its non-commercial terms.",
        },
        intended_use=(
            "Decision support for research and education on dermoscopic images. Not a medical device; "
            "not for diagnosis or for deciding on treatment."
        ),
        limitations=limitations_for(provenance),
        metrics=metrics,
        provenance=provenance,
    )
    card.validate()
    return card


def _ensemble_backbone(member_backbones: tuple[str, ...], side: str,
                       member_sides: tuple[tuple[int, int], ...] = ()) -> tuple[dict, str]:
    """The card's backbone entry and the description's subject for an ensemble of these backbones."""
    infos = [BACKBONES[name] for name in member_backbones]
    kinds = list(dict.fromkeys(info.description for info in infos))  # in order, each once
    sides = [f"{h}x{w}" for h, w in member_sides]
    if any(own != side for own in sides):
        name = (" + ".join(f"{info.description} ({own})" for info, own in zip(infos, sides, strict=True))
                + f"; input {side}, resized inside the model to each network's size")
        what = f"An ensemble of {len(infos)} networks ({'; '.join(kinds)}),"
    elif len(kinds) == 1:
        name = f"{len(infos)} x {kinds[0]} ({side})"
        what = f"An ensemble of {len(infos)} networks, each a {kinds[0]},"
    else:
        name = " + ".join(info.description for info in infos) + f" ({side})"
        what = f"An ensemble of {len(infos)} networks ({'; '.join(kinds)}),"
    entry = {
        "name": f"{name}, the mean of their logits (one model)",
        "weights": "; ".join(dict.fromkeys(_ported_weights(info, info.weights_file) for info in infos)),
        "license": "; ".join(dict.fromkeys(info.license for info in infos)),
    }
    return entry, what


def _ported_weights(info, weights_name: str) -> str:
    """The card's weights credit of a backbone ported by ``train/backbones``."""
    return f"ImageNet, {info.weights_source} ({weights_name}), ported by dermascan/train/backbones"


def thresholds_in_words(thresholds: dict[str, float], validation: dict, malignant: list[str]) -> str:
    """The triage thresholds explained for a clinician, with what each flagged on the validation split."""
    from .calibration import HIGH_SENSITIVITY, MEDIUM_SENSITIVITY

    bands = (validation.get("malignant") or {}).get("at_thresholds") or {}
    goals = {"medium": MEDIUM_SENSITIVITY, "high": HIGH_SENSITIVITY}
    sentences = [f"The malignancy score is the summed probability of {', '.join(malignant)}."]
    for band in ("medium", "high"):
        seen = bands.get(band) or {}
        sentences.append(
            f"{band.title()} starts at a score of {thresholds[band]:.1%}: set as high as it could be while still "
            f"flagging at least {goals[band]:.0%} of the malignant validation images"
            + (f" (there it flagged {seen['sensitivity']:.1%} of malignant and {1 - seen['specificity']:.1%} of "
               "benign images)" if seen.get("sensitivity") is not None and seen.get("specificity") is not None
               else "")
            + ".")
    sentences.append("Set on the validation split only; on new populations sensitivity may be lower.")
    return " ".join(sentences)


def save_model_and_card(model: keras.Model, card: ModelCard, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<name>.keras`` and ``<name>.card.json`` into ``out_dir`` (kernels already rounded to float16 are
    stored as float16: ``weight_storage``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{MODEL_NAME}.keras"
    card_path = out_dir / f"{MODEL_NAME}.card.json"
    model.save(model_path)
    store_exact_float16(model_path)
    write_card(card, card_path)
    return model_path, card_path


def today() -> str:
    """The date for the provenance, ISO format."""
    return _dt.date.today().isoformat()


def fit_input_gate(model_path: Path, card_path: Path, train_images, train_classes, val_images) -> Path:
    """Fit the input gate's OOD statistics (train split) and threshold (validation split) beside the card."""
    from ..gate.fit import fit_for_export

    return fit_for_export(model_path, card_path, train_images, train_classes, val_images)
