"""Class-activation maps: one module per method over a shared compiled base.

The method names live here without TensorFlow, so the model card and the CLI can check a
name without importing it; the classes (``METHODS``) load on first use.
"""

from __future__ import annotations

import importlib

# name -> (module, class, what a reader is told about it); one entry per method.
METHOD_INFO = {
    "gradcam": ("gradcam", "GradCAM", "Grad-CAM: channels weighted by their mean gradient"),
    "gradcam++": ("gradcam_plus_plus", "GradCAMPlusPlus", "Grad-CAM++: positive gradients weighted per position"),
    "hirescam": ("hirescam", "HiResCAM", "HiResCAM: gradient x activation at each position"),
    "xgradcam": ("xgradcam", "XGradCAM", "XGradCAM: gradients weighted by their activations"),
    "layercam": ("layercam", "LayerCAM", "LayerCAM: positive gradient x activation at each position"),
    "eigencam": ("eigencam", "EigenCAM", "Eigen-CAM: first principal component of the activations (no gradients)"),
    "scorecam": ("scorecam", "ScoreCAM", "Score-CAM: channels weighted by the score of the image they mask (slower)"),
}
METHOD_NAMES = tuple(METHOD_INFO)
DEFAULT_METHOD = "gradcam"

_LAZY = {"BaseCAM": "base", "Target": "target", "build_explain_model": "target", "find_target": "target",
         **{cls: module for module, cls, _ in METHOD_INFO.values()}}

__all__ = ["DEFAULT_METHOD", "METHODS", "METHOD_INFO", "METHOD_NAMES", *_LAZY]


def _load(module: str, name: str):
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __getattr__(name: str):
    if name == "METHODS":
        value = {method: _load(module, cls) for method, (module, cls, _) in METHOD_INFO.items()}
    elif name in _LAZY:
        value = _load(_LAZY[name], name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
