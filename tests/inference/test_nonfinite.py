"""Non-finite numbers are errors: never a triage band, never a stored case, never invalid JSON.

The models are real Keras models built from built-in layers: one whose weights are NaN
(refused at load), and one that is finite on ordinary images but overflows to infinity on
a white one (refused per image, while the rest of a batch goes on).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from shared_data import HAM_LABELS
from tiny_models import keras_lib, nan_weights_model, overflow_on_white_model, png_bytes, save_model

import dermascan
from dermascan.cli import main
from dermascan.errors import DermascanError, InvalidModelOutput, ModelLoadError
from dermascan.evaluation.evaluate import metrics_for
from dermascan.inference.analysis import Analysis
from dermascan.inference.batch import bytes_sources, run_batch
from dermascan.inference.scoring import TRIAGE_VALUES, triage_band
from dermascan.model.card import DEFAULT_MALIGNANT, ModelCard
from dermascan.reviews.csvio import NOT_ANALYSED

SIZE = 32  # the odd models' input size


WHITE = np.full((SIZE, SIZE, 3), 255, np.uint8)
DARK = np.full((SIZE, SIZE, 3), 90, np.uint8)


@pytest.fixture(scope="module")
def overflow_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overflow")
    path = save_model(overflow_on_white_model(SIZE), folder / "overflow.keras")
    (folder / "overflow.card.json").write_text(json.dumps({"labels": HAM_LABELS, "preprocessing": "raw",
                                                           "version": "overflow-1"}))
    return path


@pytest.fixture(scope="module")
def overflow(overflow_path):
    return dermascan.load_model(overflow_path)


@pytest.mark.parametrize(("lib", "suffix"), [("keras", ".keras"), ("tf_keras", ".h5")])
def test_a_model_with_nan_weights_is_refused_at_load(tmp_path, lib, suffix):
    path = save_model(nan_weights_model(keras_lib(lib), SIZE), tmp_path / f"nan{suffix}")
    with pytest.raises(ModelLoadError, match="invalid numbers"):
        dermascan.load_model(path, labels=HAM_LABELS, preprocessing="unit")


def test_cli_refuses_a_nan_model_in_one_line(tmp_path, capsys):
    path = save_model(nan_weights_model(keras_lib("keras"), SIZE), tmp_path / "nan.keras")
    image = tmp_path / "dark.png"
    image.write_bytes(png_bytes(DARK))
    assert main(["analyze", str(image), "--model", str(path), "--labels", ",".join(HAM_LABELS), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "invalid numbers" in err


def test_an_image_with_non_finite_outputs_is_an_error_not_a_triage(overflow):
    assert np.isfinite(overflow.predict([DARK])).all()
    with pytest.raises(InvalidModelOutput, match="invalid numbers"):
        overflow.analyze(WHITE)
    # The dark frame is a result, not an error (the gate calls it indeterminate: a uniform frame, a flat model).
    analysis = overflow.analyze(DARK)
    assert math.isfinite(analysis.malignant_score) and analysis.triage in TRIAGE_VALUES


def test_one_non_finite_image_never_spoils_a_batch(overflow):
    dark, white = png_bytes(DARK), png_bytes(WHITE)
    sources = bytes_sources([("dark.png", dark), ("white.png", white), ("dark2.png", dark)])
    for with_cam in (True, False):
        items = list(run_batch(overflow, sources, with_cam=with_cam))
        assert [i.name for i in items] == ["dark.png", "white.png", "dark2.png"]
        assert items[1].analysis is None and "invalid numbers" in items[1].error
        assert all(i.analysis is not None and math.isfinite(i.analysis.malignant_score) for i in (items[0], items[2]))


def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_cli_json_stays_valid_json_when_one_image_has_non_finite_outputs(overflow_path, tmp_path, capsys):
    (tmp_path / "white.png").write_bytes(png_bytes(WHITE))
    (tmp_path / "dark.png").write_bytes(png_bytes(DARK))
    code = main(["analyze", str(tmp_path / "white.png"), str(tmp_path / "dark.png"), "--model", str(overflow_path),
                 "--json"])
    out, err = capsys.readouterr()
    records = _strict_json(out)
    assert code == 2 and "white.png" in err and "invalid numbers" in err
    assert set(records[0]) == {"file", "error"} and "invalid numbers" in records[0]["error"]
    assert records[1]["triage"] in TRIAGE_VALUES


def test_cli_batch_writes_an_error_row_for_the_non_finite_image(overflow_path, tmp_path, capsys):
    import csv

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "white.png").write_bytes(png_bytes(WHITE))
    (tmp_path / "in" / "dark.png").write_bytes(png_bytes(DARK))
    out = tmp_path / "out.csv"
    assert main(["batch", str(tmp_path / "in"), "--csv", str(out), "--model", str(overflow_path)]) == 0
    rows = {r["file_name"]: r for r in csv.DictReader(out.open(encoding="utf-8-sig"))}
    white, dark = rows["white.png"], rows["dark.png"]
    assert white["triage"] == "" and white["explanation"].startswith(NOT_ANALYSED)
    assert "invalid numbers" in white["explanation"]
    assert dark["triage"] in TRIAGE_VALUES and not dark["explanation"].startswith(NOT_ANALYSED)


def _build(probs, heatmap=None) -> Analysis:
    card = ModelCard(labels=list(HAM_LABELS), malignant_labels=list(DEFAULT_MALIGNANT))
    return Analysis.build(image=DARK, probs=np.asarray(probs, float), heatmap=heatmap, explained_index=0, card=card,
                          sha256="0" * 64, name="x.png", preprocessing="raw", resize="squash", cam_layer="feat",
                          warnings=[], processing_time_ms=1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_no_record_exists_with_non_finite_probabilities_or_heatmap(bad):
    probs = np.full(len(HAM_LABELS), 1 / len(HAM_LABELS))
    assert _build(probs).triage == "medium"  # 3 malignant classes of 7: 0.43
    broken = probs.copy()
    broken[4] = bad
    with pytest.raises(InvalidModelOutput):
        _build(broken)
    heatmap = np.zeros((4, 4), np.float32)
    heatmap[1, 2] = bad
    with pytest.raises(InvalidModelOutput):
        _build(probs, heatmap)


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_has_no_triage_band(score):
    with pytest.raises(ValueError, match="finite"):
        triage_band(score, {"medium": 0.2, "high": 0.5})


def test_metrics_refuse_non_finite_probabilities(overflow):
    probs = np.full((2, len(HAM_LABELS)), 1 / len(HAM_LABELS))
    probs[1, 0] = np.nan
    with pytest.raises(DermascanError, match="invalid numbers"):
        metrics_for(overflow, ["mel", "nv"], probs)


@pytest.mark.parametrize("card", [{"thresholds": {"medium": float("nan"), "high": 0.5}},
                                  {"thresholds": {"medium": "0.2", "high": 0.5}}, {"thresholds": [0.2, 0.5]},
                                  {"temperature": float("inf")}, {"temperature": True}, {"labels": "mel,nv"}])
def test_cards_with_non_finite_or_mistyped_numbers_are_refused_in_one_line(card):
    from dermascan.errors import CardError

    with pytest.raises(CardError):
        ModelCard.from_dict(card)
