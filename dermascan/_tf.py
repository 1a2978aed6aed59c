"""Import TensorFlow and Keras once, quietly.

TensorFlow prints C++ start-up chatter to stderr unless told otherwise before import;
keeping that out of the CLI and the app logs is why this module exists.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
