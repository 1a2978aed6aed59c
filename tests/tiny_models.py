"""Tiny real Keras models built in the tests, as tf-keras-vis does: saved, then loaded back.

``tiny_cnn`` builds every layout a user's file may have (functional, Sequential, nested base)
in Keras 3 or Keras 2 (``tf_keras``); ``save_tiny_lesion_model`` is the small lesion classifier
the feature, app and browser tests share; ``nan_weights_model`` and ``overflow_on_white_model``
are odd models whose numbers are not finite; ``evidence_model`` has
known evidence (the red pixels).
"""

from __future__ import annotations

import json
from pathlib import Path

from shared_data import HAM_LABELS


def save_tiny_lesion_model(folder: Path, *, rescaling: bool = False, card: dict | None = None) -> Path:
    """Save the model (optionally rescaling pixels inside) and its card in ``folder``; return the .keras path."""
    from dermascan._tf import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp) if rescaling else inp
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    dense = keras.layers.Dense(7, activation="softmax", name="probs")
    out = dense(x)
    # Random initial weights give every class about 1/7 whatever the image: the engine rightly flags that model
    # as degenerate (indeterminate everywhere), so the head is scaled up until its outputs depend on the image.
    dense.kernel.assign(dense.kernel * 40.0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.keras"
    keras.Model(inp, out, name="tiny").save(path)
    full_card = {"labels": HAM_LABELS, "preprocessing": "raw" if rescaling else "unit", "version": "test-1",
                 **(card or {})}
    path.with_name("tiny.card.json").write_text(json.dumps(full_card), encoding="utf-8")
    return path


def load_tiny_lesion_model(folder: Path, **kwargs):
    """``save_tiny_lesion_model`` then load it through the engine."""
    import dermascan

    return dermascan.load_model(save_tiny_lesion_model(folder, **kwargs))


def keras_lib(name: str):
    """The Keras 3 module (``keras``) or the Keras 2 API (``tf_keras``)."""
    if name == "tf_keras":
        import tf_keras

        return tf_keras
    from dermascan._tf import keras

    return keras


def tiny_cnn(lib, kind: str = "functional", *, size: int = 32, n_classes: int = 7, seed: int = 0):
    """A small real CNN: ``functional``, ``sequential``, or with a nested base (``nested-seq`` / ``nested-func``)."""
    L = lib.layers
    lib.utils.set_random_seed(seed)

    def base_layers():
        return [L.Conv2D(6, 3, padding="same", activation="relu", name="conv_a"),
                L.MaxPooling2D(2, name="pool"),
                L.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")]

    head = [L.GlobalAveragePooling2D(name="gap"), L.Dense(n_classes, activation="softmax", name="probs")]
    if kind == "sequential":
        return lib.Sequential([lib.Input((size, size, 3)), *base_layers(), *head], name="tiny_seq")
    if kind == "functional":
        inp = lib.Input((size, size, 3))
        x = inp
        for layer in base_layers() + head:
            x = layer(x)
        return lib.Model(inp, x, name="tiny_func")
    base_in = lib.Input((size, size, 3))
    x = base_in
    for layer in base_layers():
        x = layer(x)
    base = lib.Model(base_in, x, name="base")
    if kind == "nested-seq":
        return lib.Sequential([lib.Input((size, size, 3)), base, *head], name="tiny_nested_seq")
    inp = lib.Input((size, size, 3))
    x = L.Rescaling(1.0)(inp)  # something before the base, so the "pre" piece is exercised
    x = base(x)
    for layer in head:
        x = layer(x)
    return lib.Model(inp, x, name="tiny_nested_func")


def save_model(model, path: Path) -> Path:
    """Save in the format the suffix names (.keras or legacy .h5)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def nan_weights_model(lib, size: int = 32):
    """The tiny CNN with every weight of its classifier set to NaN."""
    import numpy as np

    model = tiny_cnn(lib, "functional", size=size)
    dense = model.get_layer("probs")
    dense.set_weights([np.full_like(w, np.nan) for w in dense.get_weights()])
    return model


def overflow_on_white_model(size: int = 32):
    """Finite for ordinary images; infinite logits when every pixel is (nearly) white.

    A 1x1 convolution sums the channels minus 760 (raw 0-255 input), so only near-white pixels stay
    positive after the ReLU; two 1x1 convolutions by 1e30 then overflow float32 to infinity there
    and leave exact zeros everywhere else (weights, not constants, so no graph optimiser folds
    them into one multiplication by infinity).
    """
    import numpy as np

    keras = keras_lib("keras")
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(1, 1, activation="relu", name="white")(inp)
    x = keras.layers.Conv2D(1, 1, use_bias=False, name="huge_a")(x)
    x = keras.layers.Conv2D(1, 1, use_bias=False, name="huge_b")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="feat")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(len(HAM_LABELS), activation="softmax", name="probs")(x)
    model = keras.Model(inp, out)
    model.get_layer("white").set_weights([np.ones((1, 1, 3, 1), np.float32), np.array([-760.0], np.float32)])
    for name in ("huge_a", "huge_b"):
        model.get_layer(name).set_weights([np.full((1, 1, 1, 1), 1e30, np.float32)])
    return model


def evidence_model(size: int = 32, *, weight: float = 4.0, bias: float = 0.0):
    """Class 0's logit is ``weight`` x the mean brightness of the red channel - ``bias``; class 1's is its negative.

    So the evidence for class 0 sits exactly where the image is red, and class 1 has no
    positive evidence anywhere (its map must be all zero, not NaN). A large ``weight`` and a
    ``bias`` make the probability of class 0 swing from near 0 to near 1 with the red area.
    """
    import numpy as np

    keras = keras_lib("keras")
    inp = keras.Input((size, size, 3))
    red = keras.layers.Conv2D(1, 1, use_bias=False, name="red")(inp)
    pooled = keras.layers.AveragePooling2D(2, name="evidence")(keras.layers.Activation("relu")(red))
    gap = keras.layers.GlobalAveragePooling2D()(pooled)
    out = keras.layers.Dense(2, activation="softmax", name="probs")(gap)
    model = keras.Model(inp, out)
    model.get_layer("red").set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1)])
    model.get_layer("probs").set_weights([np.array([[weight, -weight]], np.float32),
                                            np.array([-bias, bias], np.float32)])
    return model


def load_strong_evidence_model(folder: Path):
    """``evidence_model`` strong enough that a red square moves class "red" from ~2% to ~100%, saved in ``folder``
    and loaded through the engine (labels "red" (malignant) and "other", pixels scaled to [0, 1])."""
    import dermascan

    path = save_model(evidence_model(32, weight=80.0, bias=2.0), folder / "evidence.keras")
    return dermascan.load_model(path, labels=["red", "other"], malignant_labels=["red"], preprocessing="unit")


def png_bytes(pixels) -> bytes:
    """``pixels`` (H, W, 3 uint8) encoded as PNG."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
