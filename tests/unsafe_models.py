"""Real model files that carry code, built in the tests: the attacks the loader must refuse.

Each Lambda writes a marker file when Keras calls it, which it does while rebuilding the model
from its config: if the marker appears after a refused load, the file's code ran on the server.
"""

from __future__ import annotations

from pathlib import Path


def _marker_lambda(marker: Path):
    # eval, so that the path is a constant inside the lambda's own bytecode (what gets marshalled).
    return eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # the attack under test


def save_keras2_lambda_h5(path: Path, marker: Path, *, nested: bool = False) -> Path:
    """A ``tf_keras`` functional model (optionally a Sequential around a base holding it) with a marker Lambda."""
    import tf_keras

    L = tf_keras.layers
    inp = tf_keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = L.Lambda(_marker_lambda(marker), name="evil")(x)
    x = L.GlobalAveragePooling2D()(x)
    if nested:
        base = tf_keras.Model(inp, x, name="base")
        model = tf_keras.Sequential([tf_keras.Input((16, 16, 3)), base, L.Dense(7, activation="softmax")])
    else:
        model = tf_keras.Model(inp, L.Dense(7, activation="softmax")(x))
    model.save(path)
    marker.unlink(missing_ok=True)  # building the model called the lambda once
    return path


def save_keras3_lambda(path: Path, marker: Path) -> Path:
    """A Keras 3 model with a marker Lambda, saved as ``.keras`` or legacy ``.h5`` by the suffix."""
    from dermascan._tf import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.Lambda(_marker_lambda(marker), name="evil")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x)).save(path)
    marker.unlink(missing_ok=True)
    return path
