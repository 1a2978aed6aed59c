"""The training entry point end to end on a handful of real images (real TensorFlow, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATA = SHARED / "ham10000_224"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5"

pytestmark = pytest.mark.skipif(
    not (DATA / "labels.csv").is_file() or not WEIGHTS.is_file(),
    reason="needs the shared HAM10000 data and backbone weights in ../shared/data",
)


def test_split_is_stratified_and_reproducible(tmp_path):
    from dermascan.train.split import load_or_make_split, make_split, split_sizes

    labels = pd.read_csv(DATA / "labels.csv", dtype=str)
    split = make_split(labels, seed=42)
    sizes = split_sizes(split)
    assert sum(v["total"] for v in sizes.values()) == len(labels)
    assert abs(sizes["train"]["total"] / len(labels) - 0.70) < 0.01
    for dx in ("df", "vasc", "mel"):  # rare classes land in every split
        assert all(sizes[part][dx] > 0 for part in ("train", "val", "test"))
    saved = load_or_make_split(labels, tmp_path / "split.csv", seed=42)
    assert (tmp_path / "split.csv").is_file()
    again = load_or_make_split(labels, tmp_path / "split.csv", seed=7)  # read back, not remade
    pd.testing.assert_frame_equal(saved.reset_index(drop=True), again.reset_index(drop=True))


def test_training_entry_point_end_to_end(tmp_path):
    from dermascan.model.card import read_card
    from dermascan.train.__main__ import main

    out = tmp_path / "model"
    code = main(["--data", str(DATA), "--out", str(out), "--limit", "40", "--epochs-head", "1",
                 "--epochs-finetune", "1", "--seed", "3", "--time-budget-min", "5"])
    assert code == 0
    model_path = out / "dermascan-mnv2-ham10000.keras"
    card_path = out / "dermascan-mnv2-ham10000.card.json"
    assert model_path.is_file() and card_path.is_file()
    assert model_path.stat().st_size < 25 * 2**20
    for name in ("split.csv", "train_log.txt", "EVALUATION.md", "confusion_matrix.svg", "evaluation.json"):
        assert (out / name).is_file(), name

    card = read_card(card_path)
    assert card.labels == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert card.preprocessing == "tf" and card.resize == "squash" and card.output == "probabilities"
    assert card.cam_layer == "out_relu" and card.input_size == [224, 224]
    assert 0.0 <= card.thresholds["medium"] <= card.thresholds["high"] <= 1.0
    assert card.temperature > 0
    assert card.training_data["license"] == "CC BY-NC 4.0"
    assert card.provenance["seed"] == 3
    assert card.version == "1.0.0" and "High starts at a score of" in card.thresholds_note
    json.dumps(card.metrics, allow_nan=False)

    split = pd.read_csv(out / "split.csv")
    assert len(split) == 40 and set(split["split"]) == {"train", "val", "test"}
    log = (out / "train_log.txt").read_text()
    assert "phase head" in log and "phase finetune" in log and "input gate:" in log

    import dermascan

    lesion_model = dermascan.load_model(model_path)
    assert lesion_model.labels == card.labels
    # The recipe fitted the input gate for this model: OOD detection is on, its statistics beside the card.
    assert lesion_model.ood_stats is not None and lesion_model.ood_threshold > 0
    assert (out / card.gate["file"]).is_file()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)]
    probs = lesion_model.predict(images, calibrated=True)
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # The engine's uncalibrated output is the Keras model's own softmax on x/127.5 - 1.
    keras_probs = lesion_model.keras_model.predict(images[0][None].astype("float32") / 127.5 - 1.0, verbose=0)
    np.testing.assert_allclose(lesion_model.predict(images[:1], calibrated=False), keras_probs, atol=1e-4)
