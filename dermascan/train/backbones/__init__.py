"""ImageNet backbones for the training recipe, one module per backbone.

Each module builds a flat Keras functional backbone (input 0-255 RGB, normalisation inside, last
4-D activation named ``out_relu`` so the engine finds the CAM layer) and says how its inputs are scaled.
``BACKBONES`` names them for the ``--backbone`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass

CAM_LAYER = "out_relu"  # every backbone's last 4-D activation: the engine's Grad-CAM layer


@dataclass(frozen=True)
class BackboneInfo:
    """What the recipe needs to know about a backbone: its card scaling, weights file and description."""

    name: str
    scaling: str  # the card's preprocessing option (dermascan.inference.preprocessing)
    weights_file: str  # default file name, looked up in the weights folder
    description: str


BACKBONES = {
    "mnv2-0.35": BackboneInfo(
        "mnv2-0.35", "tf", "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5",
        "MobileNetV2 (alpha 0.35, ImageNet), Keras Applications",
    ),
    "mnv2-1.0-torch": BackboneInfo(
        "mnv2-1.0-torch", "raw", "mobilenet_v2-b0353104.pth",
        "MobileNetV2 (width 1.0, ImageNet, 71.9% top-1), torchvision weights ported to Keras",
    ),
}
