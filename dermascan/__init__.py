"""dermascan: UI-free engine for DermaScan Review.

Load any user's Keras skin-lesion model (``.keras`` or legacy ``.h5``), read images
safely, and get a ranked differential, a malignancy score with a triage band and a
Grad-CAM heatmap from one compiled pass.

TensorFlow takes seconds to import, so the names that need it (``load_model``,
``LesionModel``) are imported on first use: ``import dermascan.reviews`` or
``dermascan.intake.images`` stays fast.
"""

from .errors import CardError, DermascanError, InvalidImage, ModelLoadError
from .intake.images import read_image, read_image_file
from .model.card import ModelCard, read_card, write_card

__version__ = "0.1.0"

_LAZY = {"load_model": "model.lesion", "LesionModel": "model.lesion", "Analysis": "inference.analysis"}

__all__ = [
    "Analysis",
    "CardError",
    "DermascanError",
    "InvalidImage",
    "LesionModel",
    "ModelCard",
    "ModelLoadError",
    "load_model",
    "read_card",
    "read_image",
    "read_image_file",
    "write_card",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
