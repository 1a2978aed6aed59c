"""The shipped architecture: a flat ImageNet backbone (``backbones.BACKBONES``) with a 7-way softmax head."""

from __future__ import annotations

import importlib
from pathlib import Path

import keras

from .backbones import BACKBONES, CAM_LAYER

INPUT_SIZE = (224, 224)
DEFAULT_BACKBONE = "mnv2-0.35"
MODEL_GRAPH_NAME = "dermascan_mnv2"  # the Keras model's name; kept across backbones: cards and tests refer to it
# CAM_LAYER (backbones): the backbone's last 4-D activation (7x7), reachable because the model is flat.
__all__ = ["CAM_LAYER", "DEFAULT_BACKBONE", "INPUT_SIZE", "MODEL_GRAPH_NAME", "build_backbone", "build_model",
           "set_trainable"]


def build_backbone(name: str, weights: Path | None, input_size: tuple[int, int] = INPUT_SIZE) -> keras.Model:
    """The feature extractor ``name`` (a key of ``BACKBONES``) with ImageNet ``weights`` (None: random)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    info = BACKBONES[name]
    if info.module is not None:  # a PyTorch port; imported only when chosen (each reads its .pth through torch)
        port = importlib.import_module(f"{__package__}.backbones.{info.module}")
        variant = {"variant": info.variant} if info.variant else {}
        return port.pretrained_backbone(weights, input_size, **variant)
    backbone = keras.applications.MobileNetV2(
        input_shape=(*input_size, 3), alpha=0.35, include_top=False, weights=None
    )
    if weights is not None:
        backbone.load_weights(str(weights))
    return backbone


def build_model(n_classes: int, backbone_weights: Path | None, dropout: float = 0.3,
                backbone_name: str = DEFAULT_BACKBONE, input_size: tuple[int, int] = INPUT_SIZE) -> keras.Model:
    """Input (scaled as ``BACKBONES[backbone_name].scaling``) -> backbone layers -> GAP -> Dropout -> Dense softmax."""
    backbone = build_backbone(backbone_name, backbone_weights, input_size)
    # Reuse the backbone's own graph rather than nesting it, so `out_relu` is a layer of the final model.
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(backbone.input, outputs, name=MODEL_GRAPH_NAME)


def head_layer_names() -> set[str]:
    """Names of the layers added on top of the backbone."""
    return {"avg_pool", "head_dropout", "probabilities"}


def set_trainable(model: keras.Model, *, backbone: bool, from_layer: str | None = None,
                  batch_norm: bool = False) -> None:
    """Freeze or unfreeze the backbone; BatchNorm layers stay frozen unless ``batch_norm`` (and ``backbone``).

    Frozen BatchNorm in Keras 3 also runs in inference mode, so fine-tuning does not wreck the
    ImageNet statistics with small, augmented batches. ``batch_norm`` trains them like the rest of
    the unfrozen backbone (batch statistics in training, moving averages updated): PyTorch's usual
    fine-tuning, which lets the normalisation adapt from ImageNet photos to dermoscopy.
    """
    head = head_layer_names()
    unfrozen = from_layer is None
    for layer in model.layers:
        if layer.name == from_layer:
            unfrozen = True
        if layer.name in head:
            layer.trainable = True
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = backbone and unfrozen and batch_norm
        else:
            layer.trainable = backbone and unfrozen
