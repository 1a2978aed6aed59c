"""Shared fixtures: paths to ../shared data, real images, and tiny real Keras models.

Tiny models are built in the test, saved to disk and loaded back through the engine,
as tf-keras-vis does: the file formats are part of what is tested.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
HAM = SHARED / "ham10000_224"
USER_MODELS = SHARED / "user-models"
HAM_LABELS = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]

needs_shared = pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data (HAM10000 images) is not present")


def ham_labels() -> dict[str, str]:
    """``{image_id: dx}`` for the shared HAM10000 images."""
    with open(HAM / "labels.csv", newline="") as fh:
        return {row["image_id"]: row["dx"] for row in csv.DictReader(fh)}


def ham_sample(n: int, *, per_class: bool = False) -> list[Path]:
    """``n`` real image paths (sorted ids; one of each class first when ``per_class``)."""
    labels = ham_labels()
    ids = sorted(labels)
    if per_class:
        firsts = {}
        for image_id in ids:
            firsts.setdefault(labels[image_id], image_id)
        ids = list(firsts.values()) + [i for i in ids if i not in firsts.values()]
    return [HAM / "images" / f"{i}.jpg" for i in ids[:n]]


@pytest.fixture(scope="session")
def ham_paths() -> list[Path]:
    """Eight real HAM10000 images, one per class first."""
    if not HAM.is_dir():
        pytest.skip("../shared/data (HAM10000 images) is not present")
    return ham_sample(8, per_class=True)


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


@pytest.fixture
def rgb_images() -> list[np.ndarray]:
    """Four deterministic synthetic RGB images of different sizes."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=s, dtype=np.uint8) for s in [(40, 40, 3), (64, 48, 3), (30, 90, 3), (32, 32, 3)]]
