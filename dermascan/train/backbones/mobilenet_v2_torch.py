"""torchvision's MobileNetV2 (width 1.0) rebuilt in Keras, and the copy of its ``.pth`` tensors.

The topology follows ``torchvision.models.mobilenet_v2``: stride-2 3x3 convolutions pad one pixel
on every side (``ZeroPadding2D(1)`` + ``valid``; Keras' ``same`` pads bottom/right only and would
shift every feature), BatchNorm epsilon 1e-5, ReLU6. The ImageNet mean/std normalisation is a
``Normalization`` layer, so the model takes 0-255 RGB (card scaling ``raw``) and the saved file stays
data only. Layer names are the torch module paths with ``_`` for ``.`` (``features_3_conv_1_0``), which
is the whole mapping ``port_state_dict`` needs; the last activation is ``out_relu``, the CAM layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import keras

from ...inference.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from . import CAM_LAYER
from .torch_weights import copy_into, load_state_dict

BN_EPSILON = 1e-5
# (expansion t, output channels c, repeats n, first stride s): torchvision's inverted_residual_setting.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
LAST_CHANNELS = 1280


def _bn(x, name: str):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=name)(x)


def _conv_bn_relu(x, filters: int | None, kernel: int, stride: int, prefix: str, *, depthwise: bool = False,
                  relu_name: str | None = None):
    """torchvision's Conv2dNormActivation: ``<prefix>_0`` conv, ``<prefix>_1`` BatchNorm, ReLU6."""
    if kernel == 3 and stride == 2:
        x = keras.layers.ZeroPadding2D(1, name=f"{prefix}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=f"{prefix}_0")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=f"{prefix}_0")(x)
    x = _bn(x, f"{prefix}_1")
    return keras.layers.ReLU(6.0, name=relu_name or f"{prefix}_2")(x)


def _inverted_residual(x, in_ch: int, out_ch: int, stride: int, expand: int, index: int):
    prefix = f"features_{index}_conv"
    shortcut = x
    hidden = in_ch * expand
    parts = 0
    if expand != 1:
        x = _conv_bn_relu(x, hidden, 1, 1, f"{prefix}_0")
        parts = 1
    x = _conv_bn_relu(x, None, 3, stride, f"{prefix}_{parts}", depthwise=True)
    x = keras.layers.Conv2D(out_ch, 1, use_bias=False, name=f"{prefix}_{parts + 1}")(x)
    x = _bn(x, f"{prefix}_{parts + 2}")
    if stride == 1 and in_ch == out_ch:
        x = keras.layers.Add(name=f"features_{index}_add")([shortcut, x])
    return x


def build_backbone(input_size: tuple[int, int] = (224, 224)) -> keras.Model:
    """The feature extractor (``model.features`` in torchvision): 0-255 RGB -> (H/32, W/32, 1280) ``out_relu``."""
    inputs = keras.Input((*input_size, 3), name="image")
    x = keras.layers.Normalization(mean=IMAGENET_MEAN.tolist(), variance=(IMAGENET_STD**2).tolist(),
                                   name="imagenet_normalization")(inputs)
    x = _conv_bn_relu(x, 32, 3, 2, "features_0")
    in_ch, index = 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            x = _inverted_residual(x, in_ch, c, s if i == 0 else 1, t, index)
            in_ch, index = c, index + 1
    x = _conv_bn_relu(x, LAST_CHANNELS, 1, 1, f"features_{index}", relu_name=CAM_LAYER)
    return keras.Model(inputs, x, name="mobilenet_v2_torch")


def _torch_prefix(layer_name: str) -> str:
    return layer_name.replace("_", ".")


def port_state_dict(model: keras.Model, state_dict: Mapping[str, object]) -> int:
    """Copy torchvision ``features.*`` tensors into the Keras layers of ``build_backbone``; returns tensors copied.

    ``ValueError`` when a conv or BatchNorm layer finds no tensor or a ``features.*`` tensor is left over
    (``torch_weights.copy_into``); the classifier's tensors are not part of the backbone.
    """
    return copy_into(model, state_dict, _torch_prefix, lambda key: key.startswith("features."))


def pretrained_backbone(weights: Path | None, input_size: tuple[int, int] = (224, 224)) -> keras.Model:
    """``build_backbone`` with the ImageNet tensors of ``weights`` (a torchvision ``.pth``), or random when None."""
    model = build_backbone(input_size)
    if weights is not None:
        port_state_dict(model, load_state_dict(weights))
    return model
