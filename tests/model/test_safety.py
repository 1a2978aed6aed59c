"""Model files are data, never code: files whose layers carry code are refused before any layer is built."""

from __future__ import annotations

import json
import re
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image
from shared_data import HAM_LABELS, USER_MODELS
from tiny_models import keras_lib, save_model, tiny_cnn
from unsafe_models import save_keras2_lambda_h5, save_keras3_lambda

import dermascan
from dermascan.cli import main
from dermascan.config import BUNDLED_MODEL
from dermascan.errors import ModelLoadError
from dermascan.model import loading
from dermascan.model import safety as model_safety
from dermascan.model.loading import sniff_format
from dermascan.model.safety import UnsafeModelError, check_model_file, find_code, tf_op_allowed

OPT_IN = "--trust-model-code (CLI) or trust_code=True (Python)"


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "code-ran.marker"


def _one_line_refusal(info, layer: str, cls: str) -> str:
    message = str(info.value)
    assert f"layer '{layer}' ({cls})" in message and OPT_IN in message
    assert "\n" not in message
    return message


def test_keras2_lambda_h5_is_refused_and_its_code_never_runs(tmp_path, marker):
    path = save_keras2_lambda_h5(tmp_path / "lambda.h5", marker)
    with pytest.raises(UnsafeModelError) as info:
        dermascan.load_model(path, preprocessing="unit")
    message = _one_line_refusal(info, "evil", "Lambda")
    assert "lambda.h5 was refused" in message and str(tmp_path) not in message
    assert not marker.exists()
    # The opt-in loads it, and the file's code really runs: the refusal above is what kept it from running.
    model = dermascan.load_model(path, preprocessing="unit", trust_code=True)
    assert model.labels == HAM_LABELS and marker.exists()


def test_lambda_inside_a_nested_base_model_is_found(tmp_path, marker):
    path = save_keras2_lambda_h5(tmp_path / "nested.h5", marker, nested=True)
    with pytest.raises(UnsafeModelError) as info:
        dermascan.load_model(path)
    _one_line_refusal(info, "evil", "Lambda")
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_lambda_is_refused_in_both_formats(tmp_path, marker, suffix):
    path = save_keras3_lambda(tmp_path / f"lambda{suffix}", marker)
    with pytest.raises(UnsafeModelError) as info:
        dermascan.load_model(path, preprocessing="unit")
    _one_line_refusal(info, "evil", "Lambda")
    assert not marker.exists()
    model = dermascan.load_model(path, preprocessing="unit", trust_code=True)
    assert model.loader == "keras" and marker.exists()


def test_keras3_safe_mode_refusal_never_falls_back_to_tf_keras(tmp_path, marker, monkeypatch):
    # Belt and braces: were the content check to miss a Lambda, Keras 3's safe mode refuses the
    # file and the loader stops there instead of handing it to tf_keras (which would run it).
    path = save_keras2_lambda_h5(tmp_path / "lambda.h5", marker)
    monkeypatch.setattr(loading, "check_model_file", lambda *a: None)
    with pytest.raises(UnsafeModelError, match="Keras found code in it.*--trust-model-code"):
        dermascan.load_model(path)
    assert not marker.exists()


def test_cli_refuses_a_lambda_model_in_one_line_and_opts_in_with_the_flag(tmp_path, marker, capsys):
    path = save_keras2_lambda_h5(tmp_path / "lambda.h5", marker)
    image = tmp_path / "lesion.png"
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(image)
    assert main(["analyze", str(image), "--model", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "layer 'evil' (Lambda)" in err and "--trust-model-code" in err
    assert not marker.exists()
    assert main(["info", "--model", str(path), "--trust-model-code", "--preprocessing", "unit"]) == 0
    assert marker.exists()


def _doubler_layer(keras, registered: bool):
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    if registered:
        return keras.saving.register_keras_serializable(package="evilpkg")(Doubler)
    return Doubler


@pytest.mark.parametrize(("registered", "reason"), [(True, "custom registered object"),
                                                    (False, "needs code from module")])
def test_custom_layer_classes_are_refused(tmp_path, registered, reason):
    keras = keras_lib("keras")
    inp = keras.Input((8, 8, 3))
    x = _doubler_layer(keras, registered)(name="dbl")(inp)
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x))
    path = save_model(keras.Model(inp, out), tmp_path / "custom.keras")
    with pytest.raises(UnsafeModelError, match=reason) as info:
        dermascan.load_model(path)
    _one_line_refusal(info, "dbl", "Doubler")


def _tf_ops_model(path):
    """A tf_keras functional model with raw tf ops: TFOpLambda (math.multiply, reshape) and SlicingOpLambda."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((8, 8, 3))
    x = tf.math.multiply(inp, 2.0)
    x = x[:, 1:, :, :]
    x = tf.reshape(x, (-1, 7 * 8 * 3))
    model = tf_keras.Model(inp, tf_keras.layers.Dense(7, activation="softmax")(x))
    model.save(path)
    return model


def test_tf_op_lambda_with_tensor_math_loads_and_predicts(tmp_path, rgb_images):
    keras_model = _tf_ops_model(tmp_path / "ops.h5")
    with h5py.File(tmp_path / "ops.h5") as fh:
        classes = {layer["class_name"] for layer in json.loads(fh.attrs["model_config"])["config"]["layers"]}
    assert {"TFOpLambda", "SlicingOpLambda"} <= classes  # the file really holds the op layers under test
    model = dermascan.load_model(tmp_path / "ops.h5", preprocessing="unit")
    image = np.resize(rgb_images[0], (8, 8, 3))
    expected = keras_model.predict(image[None] / 255.0, verbose=0)
    np.testing.assert_allclose(model.predict([image], calibrated=False), expected, atol=1e-5)


@pytest.mark.parametrize("function", ["io.write_file", "compat.v1.py_func", "load_op_library", "numpy_function"])
def test_tf_op_lambda_calling_anything_but_tensor_math_is_refused(tmp_path, function):
    path = tmp_path / "ops.h5"
    _tf_ops_model(path)
    with h5py.File(path, "r+") as fh:  # a hand-edited file: the same op layer naming another TF symbol
        fh.attrs["model_config"] = fh.attrs["model_config"].replace("math.multiply", function)
    with pytest.raises(UnsafeModelError, match=f"calls TensorFlow function '{function}'") as info:
        dermascan.load_model(path)
    # The edit renamed the layer too; tf_keras numbers a second model's op layers (tf.math.multiply_1).
    assert re.search(rf"layer 'tf\.{re.escape(function)}(_\d+)?' \(TFOpLambda\)", str(info.value))


def test_tf_op_allow_list():
    assert all(map(tf_op_allowed, ["math.multiply", "nn.relu", "reshape", "__operators__.add", "compat.v1.transpose"]))
    assert not any(map(tf_op_allowed, ["io.write_file", "py_function", "print", "compat.v1.py_func", None, 3]))


def test_unreadable_configs_are_refused_not_handed_to_a_loader(tmp_path, monkeypatch):
    weights_only = tmp_path / "weights.h5"
    tiny_cnn(keras_lib("tf_keras"), "functional").save_weights(weights_only)
    no_config = tmp_path / "no-config.keras"
    with zipfile.ZipFile(no_config, "w") as archive:
        archive.writestr("metadata.json", "{}")
    bad_json = tmp_path / "bad-json.keras"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("config.json", "[" * 100_000)  # deep nesting: json's recursion limit
    for path, message in [(weights_only, "configuration could not be read"),
                          (no_config, "configuration could not be read"), (bad_json, "not valid JSON")]:
        with pytest.raises(UnsafeModelError, match=message):
            dermascan.load_model(path)
    big = save_model(tiny_cnn(keras_lib("keras"), "functional"), tmp_path / "big.keras")
    monkeypatch.setattr(model_safety, "MAX_CONFIG_BYTES", 1000)  # the tiny config is ~8 kB
    with pytest.raises(UnsafeModelError, match="larger than"):
        dermascan.load_model(big)


def test_keras_own_classes_outside_keras_layers_are_allowed():
    # keras.ops nodes and ConvNeXt's LayerScale (Keras 3), TFOpLambda and LayerScale (tf_keras).
    import tf_keras

    keras = keras_lib("keras")
    k3 = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=7)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(k3)))
    assert find_code(config, kind="keras") is None
    k2 = tf_keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=7)
    assert find_code(json.loads(k2.to_json()), kind="h5") is None


def test_lambda_in_a_wrapper_and_in_an_old_list_config_is_found():
    inner = {"class_name": "Lambda", "config": {"name": "hidden", "function": ["bytecode", None, None]}}
    wrapped = {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "TimeDistributed", "config": {"name": "td", "layer": inner}}]}}
    assert find_code(wrapped, kind="h5").layer == "hidden"
    keras_2_2 = {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "d"}},
                                                        {"class_name": "MyLayer", "config": {"name": "mine"}}]}
    finding = find_code(keras_2_2, kind="h5")
    assert (finding.layer, finding.class_name) == ("mine", "MyLayer")


def _model_files() -> list:
    files = sorted(USER_MODELS.glob("*/*.h5")) if USER_MODELS.is_dir() else []
    return files + ([BUNDLED_MODEL] if BUNDLED_MODEL.is_file() else [])


@pytest.mark.skipif(not _model_files(), reason="neither ../shared/data/user-models nor the bundled model is present")
def test_every_shared_user_model_and_the_bundled_one_pass_the_check():
    for path in _model_files():
        check_model_file(path, sniff_format(path))  # raises on a refusal
    # (They also load and explain end to end: test_model_loading.py and test_bundled_model.py.)


def test_a_refusal_is_a_model_load_error():
    assert issubclass(UnsafeModelError, ModelLoadError)  # the app and the CLI show it like any load failure
