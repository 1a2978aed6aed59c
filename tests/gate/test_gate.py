"""The input gate on real models and real images: OOD flags, quality, degenerate models, the sidecar, the CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from shared_data import HAM, needs_shared
from tiny_models import keras_lib, png_bytes, save_model, save_tiny_lesion_model, tiny_cnn

import dermascan
from dermascan.cli import main
from dermascan.errors import CardError
from dermascan.gate import GATE_INDETERMINATE, GATE_OK, judge
from dermascan.gate.degenerate import MODEL_REASON
from dermascan.gate.ood import GateStats, OODStats, fit_stats, load_stats
from dermascan.gate.verdict import OOD_OFF, OOD_REASON, UNIFORM_REASON
from dermascan.reviews import CaseRecord, ReviewStore


def text_image(size: int = 224) -> np.ndarray:
    """Black text lines on a white page: a document photo, not a lesion."""
    canvas = Image.new("RGB", (size, size), (250, 250, 245))
    draw = ImageDraw.Draw(canvas)
    for row in range(12):
        draw.text((6, 6 + 18 * row), "Invoice 2024  total 31.50 EUR  page 1", fill=(10, 10, 10))
    return np.asarray(canvas)


def split_images() -> list:
    """Four HAM10000 images of the bundled model's TEST split (never seen by the fit or the threshold)."""
    from dermascan.train.split import model_split_images

    return model_split_images(dermascan.load_model(), "test", HAM)[0][:4]


@pytest.fixture(scope="module")
def bundled():
    return dermascan.load_model()


@needs_shared
def test_the_bundled_gate_flags_synthetic_ood_images_and_passes_real_lesions(bundled):
    assert bundled.ood_stats is not None and bundled.degenerate is None
    real = bundled.analyze_many([p.read_bytes() for p in split_images()])
    assert [a.gate.status for a in real] == [GATE_OK] * 4
    assert all(a.triage in ("low", "medium", "high") and a.gate.ood_score < a.gate.ood_threshold for a in real)
    solid, text = bundled.analyze_many([np.full((300, 400, 3), (180, 120, 90), np.uint8), text_image()])
    for analysis in (solid, text):
        assert analysis.triage == GATE_INDETERMINATE and analysis.gate.status == GATE_INDETERMINATE
        assert OOD_REASON in analysis.gate.reasons and analysis.gate.ood_score > analysis.gate.ood_threshold
        assert not analysis.score_reliable and 0.0 <= analysis.malignant_score <= 1.0  # still computed
    assert "No lesion is visible: the image is nearly uniform." in solid.gate.reasons
    record = text.to_dict(include_overlay=False)
    assert record["triage"] == "indeterminate" and record["malignant_score_reliable"] is False
    assert record["gate"]["status"] == "indeterminate" and OOD_REASON in record["gate"]["reasons"]
    json.dumps(record, allow_nan=False)


@needs_shared
def test_the_features_come_from_the_same_compiled_call_as_probabilities_and_maps(bundled):
    x = bundled.preprocess([np.asarray(Image.open(split_images()[0]))])
    probs, maps, _, features = bundled.explain_prepared(x, with_features=True)
    assert features.shape == (1, bundled.feature_layout.width) and np.isfinite(features).all()
    # The penultimate features come first and are what the final Dense reads: applying it gives the probabilities.
    dense = bundled.keras_model.layers[-1]
    width = dense.kernel.shape[0]  # 2,560 for 2.2.0: its two networks' features side by side
    assert bundled.feature_layout.segments[0] == ("penultimate", width)
    np.testing.assert_allclose(bundled.predict_prepared(x, with_features=True)[1], features, rtol=1e-4, atol=1e-5)
    logits = features[:, :width] @ dense.kernel.numpy() + dense.bias.numpy()
    expected = np.exp(logits / bundled.card.temperature)
    np.testing.assert_allclose(probs, expected / expected.sum(), atol=1e-4)
    assert bundled._cam._explain.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("kind", ["random", "constant"])
def test_a_model_whose_outputs_do_not_depend_on_the_image_is_degenerate(tmp_path, kind):
    lib = keras_lib("keras")
    model = tiny_cnn(lib, "functional")  # random initial weights: every class about 1/7
    if kind == "constant":
        dense = model.layers[-1]
        dense.kernel.assign(np.zeros(dense.kernel.shape, np.float32))
        dense.bias.assign(np.arange(7, dtype=np.float32))  # far from uniform, but the same for every image
    loaded = dermascan.load_model(save_model(model, tmp_path / "m.keras"))
    assert loaded.degenerate is not None and MODEL_REASON in loaded.degenerate
    assert loaded.describe()["degenerate"] == loaded.degenerate
    analysis = loaded.analyze(png_bytes(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    assert analysis.triage == "indeterminate" and any(MODEL_REASON in r.lower() for r in analysis.gate.reasons)


def test_a_trained_like_model_is_not_degenerate_and_says_ood_detection_is_off(tmp_path):
    model = dermascan.load_model(save_tiny_lesion_model(tmp_path))
    assert model.degenerate is None and model.ood_stats is None
    analysis = model.analyze(png_bytes(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    assert analysis.gate.ood_score is None and analysis.gate.notes == (OOD_OFF,)
    assert analysis.gate.status == GATE_OK and analysis.triage in ("low", "medium", "high")


def test_a_near_uniform_probability_vector_is_indeterminate():
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    uniform = judge(image, np.full(7, 1 / 7), ood_score=None, ood_threshold=None)
    assert uniform.status == GATE_INDETERMINATE and uniform.reasons == (UNIFORM_REASON,)
    sure = judge(image, np.array([0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]), ood_score=None, ood_threshold=None)
    assert sure.status == GATE_OK
    nan_score = judge(image, np.array([0.7, 0.3]), ood_score=float("nan"), ood_threshold=1.0)
    assert nan_score.status == GATE_INDETERMINATE and OOD_REASON in nan_score.reasons


def _images_folder(folder, n: int = 12):
    rng = np.random.default_rng(3)
    folder.mkdir()
    for i in range(n):
        base = rng.integers(60, 200, 3)
        image = np.clip(base + rng.normal(0, 25, (64, 64, 3)), 0, 255).astype(np.uint8)
        (folder / f"img_{i:02d}.png").write_bytes(png_bytes(image))
    (folder / "broken.png").write_bytes(b"not an image")  # skipped, not fatal
    return folder


def test_fit_gate_writes_a_sidecar_that_the_loader_reads_back(tmp_path, capsys):
    model_path = save_tiny_lesion_model(tmp_path / "m")
    images = _images_folder(tmp_path / "train")
    assert main(["fit-gate", str(images), "--model", str(model_path)]) == 0
    assert "tiny.gate.npz" in capsys.readouterr().err
    card = json.loads(model_path.with_name("tiny.card.json").read_text())
    assert card["gate"]["file"] == "tiny.gate.npz" and card["gate"]["threshold"] > 0 and card["version"] == "test-1"
    model = dermascan.load_model(model_path)
    assert model.ood_stats is not None and model.ood_threshold == card["gate"]["threshold"]
    assert model.ood_stats.feature_dim == 8 and model.describe()["ood_detection"] is True
    analysis = model.analyze((images / "img_00.png").read_bytes())
    assert analysis.gate.ood_score is not None and np.isfinite(analysis.gate.ood_score)
    # The CSV of a batch carries the gate: a white page is indeterminate, with its reasons.
    (images / "white.png").write_bytes(png_bytes(np.full((64, 64, 3), 255, np.uint8)))
    out = tmp_path / "out.csv"
    assert main(["batch", str(images), "--csv", str(out), "--model", str(model_path)]) == 0
    rows = {r["file_name"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))}
    assert rows["white.png"]["triage"] == "indeterminate" and rows["white.png"]["gate"] == "indeterminate"
    assert "over-exposed" in rows["white.png"]["gate_reasons"]
    assert rows["broken.png"]["gate"] == "" and rows["broken.png"]["explanation"].startswith("Not analysed: ")


def _stats(d: int = 4, k: int = 2) -> OODStats:
    rng = np.random.default_rng(0)
    return OODStats(rng.normal(size=d), np.linalg.qr(rng.normal(size=(d, k)))[0], rng.normal(size=(3, k)),
                    np.eye(k), 1.0)


def _hostile(path, kind: str) -> None:
    good = _stats()
    arrays = {"format": np.array("dermascan-gate-1"), "mean": good.mean, "components": good.components,
              "class_means": good.class_means, "precision": good.precision, "residual_scale": np.array(1.0)}
    if kind == "pickle":
        arrays["mean"] = np.array([{"payload": "os.system"}], dtype=object)
    elif kind == "shapes":
        arrays["precision"] = np.eye(3)
    elif kind == "nan":
        arrays["class_means"] = np.full_like(good.class_means, np.nan)
    elif kind == "not-npz":
        path.write_bytes(b"\x80\x04 pickle bytes")
        return
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("kind", ["pickle", "shapes", "nan", "not-npz"])
def test_a_hostile_sidecar_is_refused_with_one_line(tmp_path, kind, capsys):
    GateStats((_stats(),)).save(tmp_path / "good.npz")
    assert load_stats(tmp_path / "good.npz").feature_dim == 4
    bad = tmp_path / "bad.npz"
    _hostile(bad, kind)
    with pytest.raises(CardError) as caught:
        load_stats(bad)
    assert "bad.npz was refused" in str(caught.value) and "\n" not in str(caught.value)
    model_path = save_tiny_lesion_model(tmp_path / "m", card={"gate": {"file": "tiny.gate.npz", "threshold": 2.0}})
    _hostile(model_path.with_name("tiny.gate.npz"), kind)
    assert main(["info", "--model", str(model_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tiny.gate.npz was refused" in err


def test_a_card_gate_entry_cannot_point_outside_its_folder(tmp_path):
    model_path = save_tiny_lesion_model(tmp_path / "m", card={"gate": {"file": "../x.gate.npz", "threshold": 1.0}})
    with pytest.raises(CardError, match="plain name"):
        dermascan.load_model(model_path)


def test_no_triage_band_is_stored_for_a_gated_image(tmp_path):
    model = dermascan.load_model(save_tiny_lesion_model(tmp_path / "m"))
    gated = model.analyze(png_bytes(np.full((64, 64, 3), 255, np.uint8)), name="white.png")
    assert gated.triage == "indeterminate"
    store = ReviewStore(tmp_path / "r.sqlite3")
    case_id = store.add_case(CaseRecord.from_analysis(gated))
    stored = store.get_case(case_id)
    assert stored.triage == "indeterminate" and stored.gate == "indeterminate"
    assert "over-exposed" in stored.gate_reasons and stored.malignant_score == pytest.approx(gated.malignant_score)


def test_l2_normalised_statistics_round_trip_and_ignore_the_feature_scale(tmp_path):
    rng = np.random.default_rng(5)
    features = np.abs(rng.normal(size=(60, 6)))
    classes = rng.integers(0, 3, size=60)
    stats = fit_stats(features, classes, 3)
    assert stats.feature_norm == "l2"  # new fits normalise
    GateStats((stats,)).save(tmp_path / "l2.npz")
    again = load_stats(tmp_path / "l2.npz")
    assert again.feature_norm == "l2"
    np.testing.assert_allclose(again.scores(features[:5]), stats.scores(features[:5]), rtol=1e-5)
    # A near-blank image's small features score like their direction, not like "close to the mean".
    np.testing.assert_allclose(stats.scores(features[:5] * 0.01), stats.scores(features[:5]), rtol=1e-9)
    raw = fit_stats(features, classes, 3, feature_norm="none")
    assert not np.allclose(raw.scores(features[:5] * 0.01), raw.scores(features[:5]))


def test_a_format_1_sidecar_still_loads_with_raw_features(tmp_path):
    good = _stats()
    with open(tmp_path / "v1.npz", "wb") as fh:
        np.savez(fh, format=np.array("dermascan-gate-1"), mean=good.mean, components=good.components,
                 class_means=good.class_means, precision=good.precision, residual_scale=np.array(1.0))
    loaded = load_stats(tmp_path / "v1.npz")
    assert loaded.feature_norm == "none"
    x = np.random.default_rng(1).normal(size=(3, 4))
    np.testing.assert_allclose(loaded.scores(x), good.scores(x), rtol=1e-5)


@pytest.mark.parametrize("value", ["l3", "", "none; import os"])
def test_an_unknown_feature_normalisation_is_refused(tmp_path, value):
    good = _stats()
    with open(tmp_path / "bad.npz", "wb") as fh:
        np.savez(fh, format=np.array("dermascan-gate-2"), feature_norm=np.array(value), mean=good.mean,
                 components=good.components, class_means=good.class_means, precision=good.precision,
                 residual_scale=np.array(1.0))
    with pytest.raises(CardError, match="feature_norm"):
        load_stats(tmp_path / "bad.npz")
