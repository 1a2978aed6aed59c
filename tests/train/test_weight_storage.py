"""dermascan.train.weight_storage: kernels rounded to float16 are stored as float16, and the file the engine loads
back is the network that was evaluated, bit for bit; an ordinary float32 file is left as it is."""

from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np
import pytest
from shared_data import HAM_LABELS

import dermascan
from dermascan._tf import keras
from dermascan.train.weight_storage import WEIGHTS_ENTRY, round_kernels_to_float16, store_exact_float16


def _network() -> keras.Model:
    keras.utils.set_random_seed(3)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="out_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(7, activation="softmax", name="probabilities")(x)
    model = keras.Model(inp, out)
    # BatchNorm statistics as training leaves them, one variance far below float16's smallest normal value.
    model.get_layer("bn").set_weights([np.full(16, 1.1, "float32"), np.full(16, 0.1, "float32"),
                                       np.linspace(-0.3, 0.3, 16, dtype="float32"),
                                       np.geomspace(1e-9, 3.0, 16).astype("float32")])
    return model


def _stored_dtypes(path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read(WEIGHTS_ENTRY))) as weights:
        found = {}
        weights.visititems(lambda name, item: found.update({name: (item.ndim, item.dtype.name)})
                           if isinstance(item, h5py.Dataset) else None)
    return found


def test_rounded_kernels_are_stored_in_half_precision_and_load_back_as_evaluated(tmp_path):
    model = _network()
    x = np.random.default_rng(0).uniform(0, 1, (4, 24, 24, 3)).astype("float32")
    before = np.asarray(model(x))
    vectors = [w for w in model.get_weights() if w.ndim < 2]
    assert round_kernels_to_float16(model) == 3 * 3 * 3 * 16 + 16 * 7
    assert all(np.array_equal(a, b) for a, b in zip(vectors, [w for w in model.get_weights() if w.ndim < 2]))
    rounded = np.asarray(model(x))
    assert 0 < np.abs(rounded - before).max() < 1e-2  # a real, small change: why evaluation follows the rounding

    full, half = tmp_path / "full.keras", tmp_path / "half.keras"
    model.save(full)
    model.save(half)
    assert store_exact_float16(half) == 2  # the convolution's and the Dense layer's kernels
    assert {ndim >= 2 for ndim, dtype in _stored_dtypes(half).values() if dtype == "float16"} == {True}
    assert {dtype for ndim, dtype in _stored_dtypes(half).values() if ndim < 2} == {"float32"}
    assert half.stat().st_size < full.stat().st_size
    assert half.stat().st_mode == full.stat().st_mode  # as readable as any saved model, not a private temp file

    served = dermascan.load_model(half, labels=HAM_LABELS, preprocessing="unit")
    assert all(w.dtype == "float32" for w in served.keras_model.weights)  # computes in float32
    for loaded, kept in zip(served.keras_model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, kept)
    np.testing.assert_array_equal(served.predict_prepared(x, calibrated=False),
                                  np.asarray(keras.models.load_model(full, compile=False)(x)))


def test_an_ordinary_float32_file_is_left_untouched(tmp_path):
    path = tmp_path / "plain.keras"
    _network().save(path)
    before = path.read_bytes()
    assert store_exact_float16(path) == 0
    assert path.read_bytes() == before
    assert {dtype for _, dtype in _stored_dtypes(path).values()} == {"float32"}


def test_a_kernel_beyond_float16s_range_is_refused_and_the_model_kept():
    model = _network()
    kernel = model.get_layer("conv").kernel
    kernel.assign(kernel.numpy() * 0 + 1e6)
    kept = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="float16's range"):
        round_kernels_to_float16(model)
    assert all(np.array_equal(a, b) for a, b in zip(kept, model.get_weights()))
