"""Comparing preprocessing options on tiny real Keras models and real images."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import HAM_LABELS, ham_labels, ham_sample, needs_shared
from tiny_models import load_tiny_lesion_model

from dermascan.evaluation.compare import (
    agreement,
    best_option,
    build_options,
    double_scales,
    metrics_table,
    notes,
    option_probabilities,
    run_option,
)
from dermascan.evaluation.evaluate import metrics_for
from dermascan.inference.options import PreprocessingOption as Option
from dermascan.intake.images import read_image_file


def tiny_model(folder, *, rescaling: bool = False):
    """The shared tiny real CNN, optionally rescaling inside, loaded through the engine."""
    return load_tiny_lesion_model(folder, rescaling=rescaling)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def rescaling_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("rescaling"), rescaling=True)


@pytest.fixture(scope="module")
def real():
    if not ham_sample(1)[0].is_file():
        pytest.skip("../shared is not present")
    paths = ham_sample(12, per_class=True)
    truth = ham_labels()
    return [read_image_file(p) for p in paths], [p.name for p in paths], [truth[p.stem] for p in paths]


def test_options_are_the_product_of_the_choices_in_order():
    options = build_options(["unit", "tf"], ["squash", "pad"], [(), ("identity", "hflip")])
    assert len(options) == 8 and options[0] == Option("unit", "squash", ())
    assert options[1].label == "unit · squash · TTA×2"


@needs_shared
def test_each_option_runs_and_the_card_option_matches_plain_analysis(model, real):
    images, names, _ = real
    options = [Option.for_card(model.card), Option("tf", "squash"), Option("unit", "pad", ("identity", "hflip"))]
    hashes = [f"{i:064x}" for i in range(len(images))]
    results = {o: run_option(model, images, o, hashes=hashes, names=names) for o in options}
    plain = model.analyze_many(images)
    assert np.allclose([a.probabilities for a in results[options[0]]], [a.probabilities for a in plain], atol=1e-6)
    assert [a.sha256 for a in results[options[1]]] == hashes and [a.name for a in results[options[2]]] == names
    assert {a.preprocessing for a in results[options[1]]} == {"tf"} and {a.resize for a in results[options[2]]} == {
        "pad"}
    for o in options:  # the metrics path gives the same numbers as the display path
        assert np.allclose(option_probabilities(model, images, o), [a.probabilities for a in results[o]], atol=1e-5)


@needs_shared
def test_agreement_reports_the_largest_shift(model, real):
    images, names, _ = real
    a, b = Option("unit", "squash"), Option("imagenet", "squash")
    res = {o: run_option(model, images[:1], o, hashes=["0" * 64], names=names[:1])[0] for o in (a, b)}
    agree = agreement(res)
    diff = np.abs(res[a].probabilities - res[b].probabilities)
    assert agree.max_shift == pytest.approx(diff.max()) and agree.shift_label == HAM_LABELS[int(diff.argmax())]
    assert agree.shift_options == (a, b) and agree.same_top == (res[a].top_label == res[b].top_label)
    same = agreement({a: res[a]})
    assert same.same_top and same.max_shift == 0.0 and same.shift_options is None


@needs_shared
def test_metrics_per_option_are_the_cli_metrics(model, real):
    images, _, y_true = real
    option = Option("tf", "center-crop")
    probs = option_probabilities(model, images, option)
    # The CLI's evaluate scores the same images through the engine's own prediction path.
    cli_probs = model.predict(images, preprocessing=option.preprocessing, resize=option.resize)
    np.testing.assert_allclose(probs, cli_probs, atol=1e-6)
    report = metrics_for(model, y_true, probs)
    cli = metrics_for(model, y_true, cli_probs)
    assert report["n"] == len(images)
    for key in ("accuracy", "balanced_accuracy", "macro_auc", "ece"):
        assert report[key] == pytest.approx(cli[key], abs=1e-9)


def test_best_option_ranks_balanced_accuracy_then_auc_then_accuracy():
    a, b, c = Option("unit", "squash"), Option("tf", "squash"), Option("raw", "squash")
    reports = {a: {"balanced_accuracy": 0.5, "macro_auc": 0.7, "accuracy": 0.6, "n": 10},
               b: {"balanced_accuracy": 0.5, "macro_auc": 0.8, "accuracy": 0.5, "n": 10},
               c: {"balanced_accuracy": None, "macro_auc": None, "accuracy": 0.9, "n": 10}}
    assert best_option(reports) == b and best_option({}) is None
    rows = metrics_table(reports, declared=a)
    assert [r["best"] for r in rows] == [False, True, False] and [r["model_card"] for r in rows] == [True, False, False]
    assert rows[1]["macro_auc"] == 0.8 and rows[2]["balanced_accuracy"] is None


def test_notes_flag_a_card_option_that_is_not_the_best(model):
    declared, other = Option.for_card(model.card), Option("tf", "squash")
    worse = {declared: {"balanced_accuracy": 0.3}, other: {"balanced_accuracy": 0.6}}
    [note] = notes(model, [declared, other], worse)
    assert "declares unit · squash" in note and "tf · squash scores better" in note
    assert notes(model, [declared, other], {declared: {"balanced_accuracy": 0.6}, other: {"balanced_accuracy": 0.6}}
                 ) == []  # a tie is not a reason to doubt the card
    assert "not among the options" in notes(model, [other], {other: {"balanced_accuracy": 0.6}})[0]


def test_double_scaling_is_flagged_only_for_models_that_rescale_inside(model, rescaling_model):
    assert not double_scales(model, Option("unit", "squash"))
    assert rescaling_model.rescaling_layers
    assert not double_scales(rescaling_model, Option("raw", "squash"))
    assert double_scales(rescaling_model, Option("unit", "squash"))
    [note] = notes(rescaling_model, [Option("raw", "squash"), Option("unit", "squash")])
    assert "unit · squash double-scales" in note


def test_an_option_resolves_against_the_card_and_is_one_cache_key(model):
    card = model.card
    declared = Option.for_card(card)
    assert Option().resolve(card) == declared and Option(resize="pad").resolve(card) == Option(card.preprocessing,
                                                                                              "pad", ())
    # Transforms given as a list are the same option (and the same dict key) as the tuple.
    listed, tupled = Option("unit", "pad", ["identity", "hflip"]), Option("unit", "pad", ("identity", "hflip"))
    assert listed == tupled and {listed: 1}[tupled] == 1 and listed.tta == ("identity", "hflip")
    assert tupled.label == "unit · pad · TTA×2" and declared.label == f"{card.preprocessing} · {card.resize}"
    # None is "the card's views", () is "none": different options once the card declares views.
    with_views = card.with_overrides(tta=["identity", "hflip"])
    assert Option.for_card(with_views).tta == ("identity", "hflip") == Option().resolve(with_views).tta
    assert Option(tta=()).resolve(with_views).tta == () and Option(tta=()).resolve(with_views) != Option.for_card(
        with_views)
    assert Option.for_card(card).tta == () and Option().resolve(card) == Option(tta=()).resolve(card)


def test_identical_inputs_are_found_by_comparing_the_preprocessed_arrays(model):
    from dermascan.evaluation.compare import identical_inputs

    square = np.random.default_rng(3).integers(0, 256, size=(80, 80, 3), dtype=np.uint8)
    wide = np.random.default_rng(3).integers(0, 256, size=(60, 90, 3), dtype=np.uint8)
    squash, pad, unit_tf = Option("unit", "squash"), Option("unit", "pad"), Option("tf", "squash")
    assert identical_inputs(model, square, [squash, pad, unit_tf]) == [(squash, pad)]
    assert identical_inputs(model, wide, [squash, pad, unit_tf]) == []  # padding a wide image adds borders
    assert identical_inputs(model, square, [squash, Option("unit", "pad", ("hflip",))]) == []  # other views


def test_aligned_rows_and_small_classes(model, real):
    from dermascan.evaluation.compare import aligned_rows, small_classes

    images, names, _ = real
    options = [Option("unit", "squash"), Option("tf", "squash")]
    results = {o: run_option(model, images[:1], o, hashes=["ab" * 32], names=names[:1])[0] for o in options}
    rows = aligned_rows(results, model.card.display_name)
    assert [r["label"] for r in rows] == HAM_LABELS and rows[4]["name"] == "Melanoma"
    for o in options:
        assert [r[o.label] for r in rows] == pytest.approx(list(results[o].probabilities))
    assert small_classes(["nv"] * 30 + ["mel"] * 29 + ["bcc"], min_n=30) == {"bcc": 1, "mel": 29}
