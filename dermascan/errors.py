"""Errors the engine raises on bad input.

Every message is one plain sentence that can be shown as-is in the UI or the CLI:
no file-system internals, no stack trace, no image bytes.
"""


class DermascanError(Exception):
    """Base class: the message is safe and meaningful to show to a user."""


class InvalidImage(DermascanError):
    """The bytes are not an image we can analyse (unreadable, too large, empty...)."""


class ModelLoadError(DermascanError):
    """The model file is missing, unreadable, or not a Keras model."""


class CardError(DermascanError):
    """The model card (or an override) is inconsistent with itself or with the model."""


class InvalidModelOutput(DermascanError):
    """The model returned NaN or infinite numbers: there is no result to show, score or store."""


INVALID_OUTPUT_MESSAGE = (
    "The model produced invalid numbers (NaN or infinity) for this image, so no result or triage is given."
)
