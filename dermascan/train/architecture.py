"""The shipped architecture: a flat MobileNetV2-0.35 with a 7-way softmax head."""

from __future__ import annotations

from pathlib import Path

import keras

INPUT_SIZE = (224, 224)
CAM_LAYER = "out_relu"  # the backbone's last 4-D activation (7x7), reachable because the model is flat


def build_model(n_classes: int, backbone_weights: Path | None, dropout: float = 0.3) -> keras.Model:
    """Input (already scaled x/127.5-1) -> MobileNetV2 layers -> GAP -> Dropout -> Dense softmax."""
    backbone = keras.applications.MobileNetV2(
        input_shape=(*INPUT_SIZE, 3), alpha=0.35, include_top=False, weights=None
    )
    if backbone_weights is not None:
        backbone.load_weights(str(backbone_weights))
    # Reuse the backbone's own graph rather than nesting it, so `out_relu` is a layer of the final model.
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(backbone.input, outputs, name="dermascan_mnv2")


def head_layer_names() -> set[str]:
    """Names of the layers added on top of the backbone."""
    return {"avg_pool", "head_dropout", "probabilities"}


def set_trainable(model: keras.Model, *, backbone: bool, from_layer: str | None = None) -> None:
    """Freeze or unfreeze the backbone; BatchNorm layers always stay frozen.

    Frozen BatchNorm in Keras 3 also runs in inference mode, so fine-tuning does not
    wreck the ImageNet statistics with small, augmented batches.
    """
    head = head_layer_names()
    unfrozen = from_layer is None
    for layer in model.layers:
        if layer.name == from_layer:
            unfrozen = True
        if layer.name in head:
            layer.trainable = True
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        else:
            layer.trainable = backbone and unfrozen
