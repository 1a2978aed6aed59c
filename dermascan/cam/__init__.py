"""Class-activation maps: one module per method over a shared compiled base."""

from .base import BaseCAM
from .gradcam import GradCAM
from .target import Target, build_explain_model, find_target

METHODS = {"gradcam": GradCAM}

__all__ = ["METHODS", "BaseCAM", "GradCAM", "Target", "build_explain_model", "find_target"]
