"""Import TensorFlow and Keras once, quietly.

TensorFlow's native code writes start-up chatter (oneDNN notes, "could not find cuda
drivers", cuInit failures on a CPU-only machine) straight to file descriptor 2 before
its logging is configured, so neither ``TF_CPP_MIN_LOG_LEVEL`` nor Python's logging can
stop it. We point fd 2 at /dev/null while TensorFlow imports and finds its devices, so
the CLI and the app logs show only what concerns the user.
"""

import contextlib
import os
import sys

from .config import TF_LOG_LEVEL, TF_LOG_LEVEL_ENV

os.environ.setdefault(TF_LOG_LEVEL_ENV, TF_LOG_LEVEL)


@contextlib.contextmanager
def _native_stderr_silenced():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture): nothing to do
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


with _native_stderr_silenced():
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices()  # device discovery prints its own notes; do it now

__all__ = ["keras", "tf"]
