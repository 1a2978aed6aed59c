"""dermascan.train.promote: a recipe probe finished into a release (test report, card, gate) without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dermascan

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
CARD = "dermascan-mnv2-ham10000.card.json"
MODEL = "dermascan-mnv2-ham10000.keras"


@pytest.mark.skipif(not (SHARED / "ham10000_full_200x150" / "labels.csv").is_file(),
                    reason="needs ../shared/data (both HAM10000 folders)")
def test_a_probe_is_promoted_with_its_own_weights_and_a_test_report(tmp_path, capsys):
    from dermascan.model.card import read_card
    from dermascan.train.__main__ import main as train
    from dermascan.train.promote import main as promote

    probe = tmp_path / "probe"
    assert train(["--data", str(SHARED / "ham10000_224"), "--data-v2", "--limit", "48", "--backbone",
                  "mnv2-1.0-torch", "--weights", "none", "--input-size", "160", "--logit-adjust", "1.0",
                  "--class-weight-power", "0", "--epochs-head", "1", "--epochs-finetune", "1", "--seed", "5",
                  "--time-budget-min", "5", "--out", str(probe), "--probe"]) == 0
    probe_card = read_card(probe / CARD)
    assert probe_card.version == "2.0.0-probe" and "test" not in probe_card.metrics

    # The bundled model's version would attach its reviews to another network; a non-probe is not promoted.
    bundled = read_card(REPO / "model" / CARD).version
    assert promote(["--run", str(probe), "--out", str(tmp_path / "same"), "--model-version", bundled]) == 2
    assert "bundled model's" in capsys.readouterr().err and not (tmp_path / "same").exists()

    out = tmp_path / "release"
    assert promote(["--run", str(probe), "--out", str(out), "--data", str(SHARED / "ham10000_224"),
                    "--model-version", "9.2.0"]) == 0
    card = read_card(out / CARD)
    assert card.version == "9.2.0" and card.metrics["test"]["n"] > 0 and card.gate
    assert card.temperature == pytest.approx(probe_card.temperature, rel=1e-6)  # same weights, same validation
    assert card.thresholds == pytest.approx(probe_card.thresholds, rel=1e-6)
    assert card.provenance["command"] == probe_card.provenance["command"]  # the training command is kept
    assert card.provenance["promoted"]["from"] == "probe"
    assert card.provenance["promoted"]["command"].startswith("python -m dermascan.train.promote ")
    assert card.provenance["recipe"] == probe_card.provenance["recipe"]
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["after"]["n"] == card.metrics["test"]["n"]
    assert (out / "EVALUATION.md").is_file()

    image = np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    released, probed = dermascan.load_model(out / MODEL), dermascan.load_model(probe / MODEL)
    assert np.array_equal(released.predict([image], calibrated=False), probed.predict([image], calibrated=False))

    assert promote(["--run", str(out), "--out", str(tmp_path / "again"), "--model-version", "9.3.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a recipe probe" in err and "\n" not in err


@pytest.mark.parametrize("version,provenance,split,message", [
    ("2.0.0", {}, "split_v2.csv", "not a recipe probe"),
    ("2.0.0-probe", {"members": [{}, {}]}, "split_v2.csv", "ensemble probe"),
    ("2.0.0-probe", {}, "split.csv", "lesion-grouped"),
    ("2.0.0-probe", {}, "absent/split_v2.csv", "missing"),
])
def test_only_a_single_network_probe_on_the_lesion_grouped_split_is_promoted(tmp_path, version, provenance, split,
                                                                           message):
    from types import SimpleNamespace

    from dermascan.errors import DermascanError
    from dermascan.train.promote import check_promotable

    (tmp_path / "split_v2.csv").write_text("image_id,split\n")
    (tmp_path / "split.csv").write_text("image_id,split\n")
    run = SimpleNamespace(folder=tmp_path / "run", split_file=tmp_path / split,
                          card=SimpleNamespace(version=version, provenance=provenance))
    with pytest.raises(DermascanError, match=message):
        check_promotable(run, "9.9.9")


def test_a_missing_run_is_one_line(tmp_path, capsys):
    from dermascan.train.promote import main as promote

    assert promote(["--run", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--model-version", "9.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
