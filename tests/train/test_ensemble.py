"""dermascan.train.ensemble: several trained networks as one model (the mean of their logits), its heatmap over
every member, the gate reading each member's earlier layer, refusals of members that do not belong together,
and two tiny real runs combined end to end."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from shared_data import HAM_LABELS
from tiny_models import save_model

import dermascan
from dermascan._tf import keras, tf
from dermascan.errors import DermascanError
from dermascan.gate.features import PENULTIMATE
from dermascan.train.ensemble import check_compatible, combine

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def _member(seed: int, *, deeper: bool = False, side: int = 32) -> keras.Model:
    """A tiny network with the shipped layout: ... -> ``out_relu`` (a smaller map) -> avg_pool -> Dense softmax
    (``deeper``: another architecture, as a second backbone would be; ``side``: its input size)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((side, side, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="early")(inp)
    if deeper:
        x = keras.layers.Add(name="residual")([x, keras.layers.Conv2D(6, 1, name="extra")(x)])
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="late")(x)
    x = keras.layers.ReLU(name="out_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    dense = keras.layers.Dense(7, activation="softmax", name="probabilities")
    out = dense(x)
    dense.kernel.assign(dense.kernel * 30.0)  # outputs that depend on the image
    return keras.Model(inp, out, name="dermascan_mnv2")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    members = [_member(1), _member(2)]
    path = save_model(combine(members), tmp_path_factory.mktemp("ens") / "e.keras")
    loaded = dermascan.load_model(path, labels=HAM_LABELS, preprocessing="unit")
    images = [np.random.default_rng(i).integers(0, 256, (40, 36, 3), dtype=np.uint8) for i in range(3)]
    return members, loaded, loaded.preprocess(images)


def test_the_combined_model_is_the_softmax_of_the_members_mean_logits(ensemble):
    members, loaded, x = ensemble
    logits = np.mean([np.log(np.asarray(m(x), np.float64)) for m in members], axis=0)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loaded.predict_prepared(x, calibrated=False), expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(np.asarray(members[0](x)), np.asarray(members[1](x)), atol=1e-3)  # two real opinions


def test_members_of_different_architectures_combine_too():
    members = [_member(3), _member(4, deeper=True)]
    x = np.random.default_rng(5).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(combine(members)(x)), _mean_logit_softmax([m(x) for m in members]),
                               rtol=1e-4, atol=1e-6)


def _mean_logit_softmax(probabilities: list) -> np.ndarray:
    logits = np.mean([np.log(np.asarray(p, np.float64)) for p in probabilities], axis=0)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


@pytest.mark.parametrize("sides", [(32, 40), (40, 32), (32, 44)])
def test_members_of_different_input_sizes_each_see_the_image_at_their_own_size(sides):
    """The model takes the first member's input; the other is resized in front of it (bilinear, antialiased when
    shrinking); the coarser last map is area-resampled to the finer grid, which keeps each channel's mean, so the
    pooled features and the probabilities are each member's own."""
    members = [_member(6, side=sides[0]), _member(7, side=sides[1], deeper=True)]
    model = combine(members)
    x = np.random.default_rng(8).uniform(0, 1, (3, sides[0], sides[0], 3)).astype("float32")
    shrinking = sides[1] < sides[0]
    seen = [x, np.asarray(keras.layers.Resizing(sides[1], sides[1], antialias=shrinking)(x))]
    assert model.input_shape[1:3] == (sides[0], sides[0])
    assert type(model.get_layer("m1_input_resize")).__name__ == "Resizing"
    np.testing.assert_allclose(np.asarray(model(x)), _mean_logit_softmax([m(v) for m, v in zip(members, seen)]),
                               rtol=1e-4, atol=1e-6)
    finest = max(sides) // 2
    assert model.get_layer("out_relu").output.shape[1:3] == (finest, finest)
    pooled = np.asarray(keras.Model(model.input, model.get_layer("avg_pool").output)(x))
    own = [np.asarray(keras.Model(m.input, m.get_layer("out_relu").output)(v)).mean(axis=(1, 2))
           for m, v in zip(members, seen)]
    np.testing.assert_allclose(pooled, np.concatenate(own, axis=1), rtol=1e-4, atol=1e-6)
    assert not np.allclose(np.asarray(members[0](seen[0])), np.asarray(members[1](seen[1])), atol=1e-3)


@pytest.mark.parametrize("sides", [(32, 40), (40, 32)])
def test_a_resized_members_heatmap_and_gate_come_from_the_same_pass(tmp_path, sides):
    """Every layer ``combine`` adds has a gradient (the heatmap's tape needs one for each op it recorded), and the
    gate reads each member's own earlier layer, never a resampled copy."""
    path = save_model(combine([_member(9, side=sides[0]), _member(10, side=sides[1])]), tmp_path / "e.keras")
    loaded = dermascan.load_model(path, labels=HAM_LABELS, preprocessing="unit")
    assert loaded.feature_layout.segments == ((PENULTIMATE, 16), ("m0_early", 6), ("m1_early", 6))
    x = loaded.preprocess([np.random.default_rng(11).integers(0, 256, (50, 60, 3), dtype=np.uint8)])
    probs, heat = loaded.explain_prepared(x, calibrated=False)[:2]
    assert heat.shape == (1, 20, 20) and np.isfinite(heat).all() and heat.max() == pytest.approx(1.0)
    np.testing.assert_allclose(probs, loaded.predict_prepared(x, calibrated=False), atol=1e-6)


def test_the_gate_reads_each_members_features_and_earlier_layer_from_the_same_pass(ensemble):
    members, loaded, x = ensemble
    assert loaded.cam_layer == "out_relu"
    assert loaded.feature_layout.segments == ((PENULTIMATE, 16), ("m0_early", 6), ("m1_early", 6))
    _, features = loaded.predict_prepared(x, calibrated=False, with_features=True)
    parts = []
    for layer in ("out_relu", "early"):
        for m in members:
            parts.append(np.asarray(keras.Model(m.input, m.get_layer(layer).output)(x)).mean(axis=(1, 2)))
    np.testing.assert_allclose(features, np.concatenate(parts, axis=1), rtol=1e-4, atol=1e-6)


def test_the_heatmap_sums_every_members_grad_cam(ensemble):
    """Grad-CAM on the concatenated map is ReLU(member 0's weighted map + member 1's), normalised."""
    _, loaded, x = ensemble
    model = loaded.keras_model
    maps = keras.Model(model.input, [model.get_layer("m0_out_relu").output, model.get_layer("m1_out_relu").output])
    a0, a1 = (tf.constant(np.asarray(a)) for a in maps(x))
    kernel, bias = model.get_layer("probabilities").get_weights()
    probs, heat, chosen = loaded.explain_prepared(x, calibrated=False)[:3]
    with tf.GradientTape() as tape:
        tape.watch([a0, a1])
        pooled = tf.concat([tf.reduce_mean(a0, axis=[1, 2]), tf.reduce_mean(a1, axis=[1, 2])], axis=1)
        scores = pooled @ kernel + bias  # the engine explains the logit (the softmax is stripped)
        target = tf.reduce_sum(scores * tf.one_hot(chosen, 7), axis=1)
    g0, g1 = tape.gradient(target, [a0, a1])
    per_member = [np.einsum("nhwk,nk->nhw", a.numpy(), g.numpy().mean(axis=(1, 2))) for a, g in ((a0, g0), (a1, g1))]
    cam = np.maximum(per_member[0] + per_member[1], 0.0)
    cam /= cam.max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(per_member[1]).max(axis=(1, 2)) > 1e-6)  # the second member does contribute
    np.testing.assert_allclose(heat, cam, atol=1e-4)


def _stub(tmp_path: Path, name: str, *, split: str = "a,b\n", recipe: dict | None = None, **card):
    """What ``check_compatible`` reads of a member: its card, recipe and split file."""
    split_file = tmp_path / name / "split_v2.csv"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(split)
    fields = {"labels": HAM_LABELS, "preprocessing": "raw", "resize": "squash", "input_size": [224, 224],
              "malignant_labels": ["mel"], **card}
    return SimpleNamespace(folder=split_file.parent, card=SimpleNamespace(**fields), split_file=split_file,
                           recipe={"backbone": "mnv2-1.0-torch", "input_size": 224, "sog_prob": 0.0, **(recipe or {})})


def test_members_that_belong_together_share_their_common_recipe(tmp_path):
    shared = check_compatible([_stub(tmp_path, "a"), _stub(tmp_path, "b", recipe={"sog_prob": 0.5})])
    assert shared == {"backbone": "mnv2-1.0-torch", "input_size": 224}  # sog_prob differs: listed per member
    # Two backbones, each at its own size: both become per-member fields (``combine`` resizes the input).
    lite2 = _stub(tmp_path, "b", input_size=[260, 260], recipe={"backbone": "effnet-lite2-torch", "input_size": 260})
    assert check_compatible([_stub(tmp_path, "a"), lite2]) == {"sog_prob": 0.0}


def test_an_ensembles_card_names_every_members_backbone_and_license():
    from dermascan.train.backbones import BACKBONES
    from dermascan.train.export import build_card

    def card(*backbones):
        return build_card(HAM_LABELS, 1.2, {"medium": 0.1, "high": 0.3}, {}, {}, "", backbones[0], (224, 224),
                          version="9.0.0", member_backbones=backbones)

    same = card("mnv2-1.0-torch", "mnv2-1.0-torch")
    mnv2, lite = BACKBONES["mnv2-1.0-torch"], BACKBONES["effnet-lite0-torch"]
    assert same.backbone["name"].startswith(f"2 x {mnv2.description} (224x224)")
    assert same.backbone["license"] == mnv2.license and same.description.startswith("An ensemble of 2 networks")
    mixed = card("mnv2-1.0-torch", "effnet-lite0-torch")
    assert mixed.backbone["name"].startswith(f"{mnv2.description} + {lite.description}")
    assert mixed.backbone["license"] == f"{mnv2.license}; {lite.license}"
    assert mnv2.weights_file in mixed.backbone["weights"] and lite.weights_file in mixed.backbone["weights"]
    sized = build_card(HAM_LABELS, 1.2, {"medium": 0.1, "high": 0.3}, {}, {}, "", "mnv2-1.0-torch", (224, 224),
                       version="9.0.0", member_backbones=("mnv2-1.0-torch", "effnet-lite2-torch"),
                       member_sides=((224, 224), (260, 260)))
    lite2 = BACKBONES["effnet-lite2-torch"]
    assert sized.backbone["name"].startswith(f"{mnv2.description} (224x224) + {lite2.description} (260x260); "
                                             "input 224x224, resized inside the model")


@pytest.mark.parametrize("second,message", [
    ({"preprocessing": "tf"}, "preprocessing"),
    ({"resize": "pad"}, "resize"),
    ({"labels": HAM_LABELS[::-1]}, "labels"),
    ({"recipe": {"logit_adjust": 1.0}}, "logit_adjust"),  # a balanced posterior and a prevalence one: two priors
    ({"split": "a,b\nc,d\n"}, "different splits"),
])
def test_members_that_do_not_belong_together_are_refused(tmp_path, second, message):
    with pytest.raises(DermascanError, match=message):
        check_compatible([_stub(tmp_path, "a"), _stub(tmp_path, "b", **second)])


def test_one_member_or_a_v1_split_is_refused(tmp_path):
    with pytest.raises(DermascanError, match="at least two"):
        check_compatible([_stub(tmp_path, "a")])
    v1 = _stub(tmp_path, "b")
    v1.split_file = v1.split_file.with_name("split.csv")
    v1.split_file.write_text("a,b\n")
    with pytest.raises(DermascanError, match="lesion-grouped"):
        check_compatible([_stub(tmp_path, "a"), v1])


@pytest.mark.skipif(not (SHARED / "ham10000_full_200x150" / "labels.csv").is_file(),
                    reason="needs ../shared/data (both HAM10000 folders)")
def test_two_tiny_runs_combined_end_to_end(tmp_path):
    from dermascan.model.card import read_card
    from dermascan.train.__main__ import main as train
    from dermascan.train.ensemble import main as combine_runs

    common = ["--data", str(SHARED / "ham10000_224"), "--data-v2", "--limit", "48", "--backbone", "mnv2-1.0-torch",
              "--weights", "none", "--input-size", "160", "--logit-adjust", "1.0", "--class-weight-power", "0",
              "--epochs-head", "1", "--epochs-finetune", "1", "--seed", "5", "--time-budget-min", "5"]
    # The members are recipe probes: saved for comparison with validation metrics only, the test split never read.
    assert train([*common, "--out", str(tmp_path / "a"), "--probe"]) == 0
    assert train([*common, "--out", str(tmp_path / "b"), "--sog-prob", "0.5", "--input-size", "192", "--probe"]) == 0
    probe = read_card(tmp_path / "a" / "dermascan-mnv2-ham10000.card.json")
    assert probe.version == "2.0.0-probe" and probe.metrics["split"] == "validation" and "test" not in probe.metrics
    assert not probe.gate and not (tmp_path / "a" / "evaluation.json").exists()
    assert "test:" not in (tmp_path / "a" / "probe_log.txt").read_text()

    # A member's version would let the review log attach that member's reviews to the ensemble.
    assert combine_runs(["--members", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "same"),
                         "--model-version", "2.0.0"]) == 2
    assert not (tmp_path / "same").exists()

    probe_out = tmp_path / "ens-probe"
    assert combine_runs(["--members", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(probe_out),
                         "--data", str(SHARED / "ham10000_224"), "--model-version", "9.0.0", "--probe"]) == 0
    assert read_card(probe_out / "dermascan-mnv2-ham10000.card.json").version == "9.0.0-probe"
    assert not (probe_out / "evaluation.json").exists() and "test:" not in (probe_out / "probe_log.txt").read_text()

    out = tmp_path / "ens"
    assert combine_runs(["--members", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out),
                         "--data", str(SHARED / "ham10000_224"), "--model-version", "9.1.0",
                         "--float16-kernels"]) == 0

    card = read_card(out / "dermascan-mnv2-ham10000.card.json")
    assert card.version == "9.1.0" and card.input_size == [160, 160] and card.cam_layer == "out_relu"
    assert "(160x160) + " in card.backbone["name"] and "(192x192); input 160x160" in card.backbone["name"]
    assert card.description.startswith("An ensemble of 2 networks")
    members = card.provenance["members"]
    assert [m["recipe"] for m in members] == [{"sog_prob": 0.0, "input_size": 160},
                                              {"sog_prob": 0.5, "input_size": 192}]
    assert all(m["command"].startswith("python -m dermascan.train ") for m in members)
    assert card.provenance["total_minutes_incl_evaluation"] > sum(m["minutes"] for m in members) > 0
    assert card.provenance["recipe"]["logit_adjust"] == 1.0 and "sog_prob" not in card.provenance["recipe"]
    assert card.provenance["recipe"]["float16_kernels"] is True
    with zipfile.ZipFile(out / "dermascan-mnv2-ham10000.keras") as archive, \
            h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        dtypes = set()
        weights.visititems(lambda _, item: dtypes.add((item.ndim >= 2, item.dtype.name))
                           if isinstance(item, h5py.Dataset) else None)
    assert dtypes == {(True, "float16"), (False, "float32")}  # kernels in half precision, vectors in full
    assert card.gate["layers"] == [PENULTIMATE, "m0_features_14_conv_0_2", "m1_features_14_conv_0_2"]
    assert "An ensemble of 2 networks, trained one by one" in (out / "EVALUATION.md").read_text()
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["after"]["n"] == card.metrics["test"]["n"] > 0

    served = dermascan.load_model(out / "dermascan-mnv2-ham10000.keras")
    image = np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    result = served.analyze(image)
    assert np.isfinite(result.probabilities).all() and result.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert served.describe()["ood_layers"] == card.gate["layers"]


def test_a_single_member_on_the_command_line_is_one_line(tmp_path, capsys):
    from dermascan.train.ensemble import main as combine_runs

    assert combine_runs(["--members", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                         "--model-version", "9.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before anything is written
