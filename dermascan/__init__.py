"""dermascan: UI-free engine for DermaScan Review.

Load any user's Keras skin-lesion model (``.keras`` or legacy ``.h5``), read images
safely, and get a ranked differential, a malignancy score with a triage band and a
Grad-CAM heatmap from one compiled pass.
"""

from .analysis import Analysis
from .card import ModelCard, read_card, write_card
from .errors import CardError, DermascanError, InvalidImage, ModelLoadError
from .intake import read_image, read_image_file
from .model import LesionModel, load_model

__version__ = "0.1.0"

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
