"""Faithfulness curves on a model with known evidence, the randomisation check, and ``explain-check``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from shared_data import ham_labels
from tiny_models import (
    evidence_model,
    keras_lib,
    load_strong_evidence_model,
    save_model,
    save_tiny_lesion_model,
    tiny_cnn,
)

import dermascan
from dermascan.cli import main
from dermascan.errors import DermascanError
from dermascan.evaluation.explain_check import (
    SANITY_MAX_CORRELATION,
    randomisation_check,
    randomised_copy,
    randomised_model,
    rank_correlation,
)
from dermascan.evaluation.faithfulness import (
    STEPS,
    STRONG_DROP,
    TOP_FRACTION,
    WEAK_DROP,
    faithfulness,
    faithfulness_sentence,
    random_baseline,
)

SQUARE = (slice(4, 12), slice(18, 26))  # the red square: 8 x 8 of 32 x 32 pixels, the only evidence


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    """The evidence model, strong enough that the red square moves class "red" from ~2% to ~100%."""
    return load_strong_evidence_model(tmp_path_factory.mktemp("faith"))


@pytest.fixture(scope="module")
def red_square(evidence):
    image = np.full((32, 32, 3), 40, np.uint8)
    image[..., 0] = 0
    image[SQUARE[0], SQUARE[1], 0] = 255
    analysis = evidence.analyze(image)
    assert analysis.explained_label == "red" and analysis.probabilities[0] > 0.99
    return analysis


def no_evidence_map(analysis) -> np.ndarray:
    """A map that highlights the bottom-left corner, far from the red square."""
    other = np.zeros_like(analysis.heatmap)
    other[10:, :6] = 1.0
    return other


def test_deletion_of_the_true_map_falls_monotonically_and_beats_a_random_map(evidence, red_square):
    true = faithfulness(evidence, red_square)
    assert len(true.deletion_curve) == STEPS + 1
    assert np.all(np.diff(true.deletion_curve) <= 1e-6)  # never rises
    assert true.deletion_curve[1] < 0.05  # the first 10 % removed is the square: the evidence is gone
    rand = random_baseline(evidence, red_square)
    assert 0.0 <= true.deletion_auc < 0.2 < 0.8 < rand.deletion_auc <= 1.0


def test_insertion_of_the_true_map_beats_a_random_map_and_a_region_without_evidence(evidence, red_square):
    true = faithfulness(evidence, red_square)
    assert true.insertion_curve[0] < 0.05 and true.insertion_curve[1] > 0.99  # revealing the square restores it
    assert true.insertion_auc > random_baseline(evidence, red_square).insertion_auc
    elsewhere = faithfulness(evidence, red_square, saliency=no_evidence_map(red_square))
    assert true.insertion_auc > elsewhere.insertion_auc + 0.05


def test_drop_is_large_for_the_evidence_region_and_small_elsewhere(evidence, red_square):
    true = faithfulness(evidence, red_square)
    assert true.drop > 0.9 >= STRONG_DROP
    assert "depends strongly" in true.sentence and f"top {TOP_FRACTION:.0%}" in true.sentence
    elsewhere = faithfulness(evidence, red_square, saliency=no_evidence_map(red_square))
    assert abs(elsewhere.drop) < 0.05 < WEAK_DROP
    assert "depends weakly" in elsewhere.sentence


def test_every_step_goes_through_one_model_call(evidence, red_square, monkeypatch):
    real = evidence.predict_prepared
    calls = []

    def counting(x, **kwargs):
        calls.append(len(x))
        return real(x, **kwargs)

    monkeypatch.setattr(evidence, "predict_prepared", counting)
    faithfulness(evidence, red_square)
    assert calls == [2 * (STEPS + 1) + 1]  # both curves and the drop in one batch


def test_random_baseline_is_seeded(evidence, red_square):
    a, b = random_baseline(evidence, red_square, seed=3), random_baseline(evidence, red_square, seed=3)
    assert a == b
    assert random_baseline(evidence, red_square, seed=4).deletion_curve != a.deletion_curve


def test_sentence_thresholds_and_an_empty_map(evidence):
    assert "strongly" in faithfulness_sentence(STRONG_DROP, "Melanoma")
    assert "moderately" in faithfulness_sentence((STRONG_DROP + WEAK_DROP) / 2, "Melanoma")
    weak = faithfulness_sentence(-0.3, "Melanoma")
    assert "weakly" in weak and "raises it by 30%" in weak
    image = np.zeros((32, 32, 3), np.uint8)
    image[4:12, 4:12, 0] = 255
    other = evidence.analyze(image, class_label="other")  # no positive evidence: an all-zero map
    result = faithfulness(evidence, other)
    assert "no positive evidence" in result.sentence
    assert all(np.isfinite(v) for v in (result.deletion_auc, result.insertion_auc, result.drop))
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize("bad", [np.full((4, 4), np.nan), np.zeros((2, 2, 2)), np.zeros((0, 3))])
def test_a_broken_map_is_refused(evidence, red_square, bad):
    with pytest.raises(DermascanError, match="finite"):
        faithfulness(evidence, red_square, saliency=bad)


def test_rank_correlation():
    a = np.arange(16.0).reshape(4, 4)
    assert rank_correlation(a, a * 3 + 1) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    assert rank_correlation(np.zeros((4, 4)), a) == 0.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = save_model(tiny_cnn(keras_lib("keras"), "functional", seed=3), tmp_path_factory.mktemp("rand") / "t.keras")
    return dermascan.load_model(path, preprocessing="unit")


def test_randomisation_check_passes_for_a_randomised_copy_and_fails_for_the_model_itself(tiny, ham_paths):
    from dermascan.intake.images import read_image_file

    images = [read_image_file(p) for p in ham_paths[:6]]
    copy = randomised_model(tiny)
    passed = randomisation_check(tiny, copy, images, "gradcam")
    assert passed.passed and passed.correlation < SANITY_MAX_CORRELATION and passed.n_images == 6
    same = randomisation_check(tiny, tiny, images)  # a "randomised" copy that is the model: identical maps
    assert not same.passed and same.correlation == pytest.approx(1.0)


def test_a_randomised_copy_without_evidence_does_not_pass(evidence, red_square, tmp_path):
    blind = evidence_model(32, weight=80.0, bias=2.0)
    blind.get_layer("red").set_weights([np.zeros((1, 1, 3, 1), np.float32)])  # sees nothing: every map is zero
    path = save_model(blind, tmp_path / "blind.keras")
    copy = dermascan.load_model(path, labels=["red", "other"], malignant_labels=["red"], preprocessing="unit")
    result = randomisation_check(evidence, copy, [red_square.image] * 3)
    assert result.correlation is None and not result.passed and result.empty_maps == 3 and result.n_images == 0


@pytest.mark.parametrize(("lib", "kind"), [("keras", "nested-func"), ("keras", "nested-seq"),
                                           ("tf_keras", "nested-func"), ("tf_keras", "sequential")])
def test_randomised_copy_reinitialises_nested_models_and_leaves_the_original_alone(lib, kind):
    model = tiny_cnn(keras_lib(lib), kind, seed=1)
    before = model.get_weights()
    copy = randomised_copy(model, lib)
    after, fresh = model.get_weights(), copy.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # the real model is untouched
    kernels = [(a, b) for a, b in zip(before, fresh) if a.ndim >= 2]
    assert len(kernels) == 3 and all(not np.array_equal(a, b) for a, b in kernels)  # nested kernels included
    again = randomised_copy(model, lib).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(fresh, again))  # seeded: the same copy every run


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, ham_paths):
    folder = tmp_path_factory.mktemp("check")
    images = folder / "images"
    images.mkdir()
    for path in ham_paths[:3]:
        shutil.copy(path, images / path.name)
    (images / "broken.jpg").write_bytes(b"not an image")
    labels = ham_labels()
    csv = folder / "labels.csv"
    csv.write_text("image_id,dx\n" + "".join(f"{p.stem},{labels[p.stem]}\n" for p in ham_paths[:2]), encoding="utf-8")
    model = save_tiny_lesion_model(folder / "model")
    return images, csv, model


def test_explain_check_text_table(image_folder, capsys):
    images, _, model = image_folder
    assert main(["explain-check", str(images), "--model", str(model), "--cam", "gradcam", "--cam", "eigencam"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("3 images.")
    assert [line.split()[0] for line in lines[2:5]] == ["gradcam", "eigencam", "random"]
    assert all(("PASS" in line) != ("FAIL" in line) for line in lines[2:4])
    assert [line.split(" deletion / random by explained class: ")[0] for line in lines[5:]] == ["gradcam", "eigencam"]
    assert "broken.jpg could not be read" in captured.err and "Traceback" not in captured.err


def test_explain_check_json_with_labels(image_folder, capsys):
    images, csv, model = image_folder
    argv = ["explain-check", str(images), str(csv), "--model", str(model), "--cam", "hirescam", "--json"]
    assert main(argv) == 0

    def refuse(name):
        raise AssertionError(f"{name} in strict JSON")

    report = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert report["n_images"] == 2 and report["model"]["version"] == "test-1"
    (row,) = report["methods"]
    assert row["method"] == "hirescam" and isinstance(row["randomisation_passed"], bool)
    for key in ("deletion_auc", "insertion_auc"):
        assert 0.0 <= row[key] <= 1.0 and 0.0 <= report["random_map"][key] <= 1.0
    assert row["deletion_vs_random"] == pytest.approx(row["deletion_auc"] / report["random_map"]["deletion_auc"])
    labels = ham_labels()
    assert sum(c["n"] for c in row["by_class"].values()) == 2 and set(row["by_class"]) <= set(labels.values())
    assert report["unreadable_images"] == []


@pytest.mark.parametrize(("extra", "message"), [(["--limit", "0"], "--limit must be at least 1"),
                                                (["--cam", "magic"], "invalid choice")])
def test_explain_check_usage_errors_are_one_line(image_folder, capsys, extra, message):
    images, _, model = image_folder
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(["explain-check", str(images), "--model", str(model), *extra]))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_explain_check_on_a_missing_folder(image_folder, capsys):
    _, _, model = image_folder
    assert main(["explain-check", "/nonexistent/folder", "--model", str(model)]) == 2
    assert capsys.readouterr().err == "error: The images folder folder does not exist.\n"
