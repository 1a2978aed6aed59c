"""``trust.check`` on models with known answers: the faithfulness drop where the evidence is, stability under flips."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import keras_lib, load_strong_evidence_model, save_model

import dermascan
from dermascan.errors import CardError
from dermascan.evaluation import trust
from dermascan.evaluation.faithfulness import STRONG_DROP, WEAK_DROP, faithfulness
from dermascan.inference.views import ALL_VIEWS, STABILITY_VIEWS, TRANSFORMS

SIZE = 16


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    """Class "red"'s evidence is exactly the red pixels (see ``tiny_models.evidence_model``)."""
    return load_strong_evidence_model(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="module")
def left_right(tmp_path_factory):
    """Class "left" when the red pixels are in the left half, "right" otherwise: a map that a mirror turns over."""
    keras = keras_lib("keras")
    inp = keras.Input((SIZE, SIZE, 3))
    red = keras.layers.Conv2D(1, 1, use_bias=False, name="red")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="probs")(keras.layers.Flatten()(red))
    model = keras.Model(inp, out)
    model.get_layer("red").set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1)])
    side = np.where(np.arange(SIZE) < SIZE // 2, 1.0, -1.0)
    weights = np.tile(side, SIZE).astype(np.float32)  # row-major: +1 on the left half of every row
    model.get_layer("probs").set_weights([np.stack([weights, -weights], axis=1) * 0.5, np.zeros(2, np.float32)])
    path = save_model(model, tmp_path_factory.mktemp("trust") / "left_right.keras")
    return dermascan.load_model(path, labels=["left", "right"], malignant_labels=["right"], preprocessing="unit")


def red_square(size=32, rows=slice(4, 12), cols=slice(18, 26)) -> np.ndarray:
    image = np.full((size, size, 3), 40, np.uint8)
    image[..., 0] = 0
    image[rows, cols, 0] = 255
    return image


def test_the_drop_is_strong_for_the_true_map_and_equals_the_full_measurement(evidence):
    analysis = evidence.analyze(red_square())
    [checked] = trust.check(evidence, [analysis], views=None)
    assert checked.faithfulness >= STRONG_DROP
    assert checked.faithfulness == pytest.approx(faithfulness(evidence, analysis).drop, abs=1e-4)
    assert "depends strongly on the highlighted region" in checked.faithfulness_sentence
    assert checked.stability is None and checked.stability_views == ()  # not asked for


def test_a_map_away_from_the_evidence_gives_a_weak_drop(evidence):
    analysis = evidence.analyze(red_square())
    analysis.heatmap = np.zeros_like(analysis.heatmap)
    analysis.heatmap[10:, :6] = 1.0  # the bottom-left corner, far from the red square
    trust.check(evidence, [analysis], views=None)
    assert analysis.faithfulness < WEAK_DROP and "weakly" in analysis.faithfulness_sentence


def test_a_map_with_no_evidence_has_no_drop_and_says_so(evidence):
    analysis = evidence.analyze(red_square(), class_label="other")  # class "other" has no positive evidence
    trust.check(evidence, [analysis], views=None)
    assert analysis.faithfulness is None and "no positive evidence" in analysis.faithfulness_sentence


def test_stability_counts_the_views_that_change_the_top_class(left_right):
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[2:6, 1:5, 0] = 255  # red in the upper left
    analysis = left_right.analyze(image)
    assert analysis.top_label == "left"
    trust.check(left_right, [analysis], faithfulness=False, views=STABILITY_VIEWS)
    tops = {v.view: v.top_label for v in analysis.stability_views}
    assert tops == {"identity": "left", "hflip": "right", "vflip": "left", "rot180": "right"}
    assert analysis.stability == 0.5
    assert analysis.stability_sentence.startswith("The top class changed under 2 of 4 views")
    scores = [v.malignant_score for v in analysis.stability_views]
    assert min(scores) < 0.5 < max(scores)
    assert f"{min(scores):.0%} to {max(scores):.0%}" in analysis.stability_sentence
    trust.check(left_right, [analysis], faithfulness=False, views=ALL_VIEWS)  # all 8 symmetries of the square
    tops = {v.view: v.top_label for v in analysis.stability_views}
    assert len(tops) == 8 and analysis.stability == 0.5
    assert tops["transpose"] == "left" and tops["antitranspose"] == "right"  # the upper left stays / goes right
    record = analysis.to_dict(include_overlay=False)
    assert record["stability"] == 0.5 and len(record["stability_views"]) == 8
    assert record["stability_sentence"] == analysis.stability_sentence


def test_an_analysis_averaged_over_views_is_checked_against_the_image_as_it_is(left_right):
    # Red on the right: "right" as it is, "left" mirrored; the card's two views average to about one half.
    averaging = dermascan.load_model(left_right.path, labels=["left", "right"], malignant_labels=["right"],
                                     preprocessing="unit", tta=["identity", "hflip"])
    image = red_square()
    [single] = left_right.analyze_many([image])
    [a] = averaging.analyze_many([image])
    assert a.tta == ("identity", "hflip") and abs(a.malignant_score - single.malignant_score) > 0.2
    trust.check(averaging, [a], views=STABILITY_VIEWS)
    # The original view's answer is the image's own single pass, as for the views it is compared with.
    assert a.stability_views[0].view == "identity" and a.stability_views[0].top_label == single.top_label == "right"
    assert a.stability_views[0].malignant_score == pytest.approx(single.malignant_score, abs=1e-6)
    trust.check(left_right, [single], views=STABILITY_VIEWS)
    assert [v.top_label for v in a.stability_views] == [v.top_label for v in single.stability_views]


def test_one_call_for_many_analyses_equals_one_call_each(evidence):
    images = [red_square(), red_square(rows=slice(20, 30), cols=slice(2, 10)), np.full((32, 32, 3), 90, np.uint8)]
    together = trust.check(evidence, evidence.analyze_many(images))
    alone = [trust.check(evidence, [evidence.analyze(im)])[0] for im in images]
    for a, b in zip(together, alone):
        assert (a.faithfulness is None) == (b.faithfulness is None)
        assert a.faithfulness is None or a.faithfulness == pytest.approx(b.faithfulness, abs=1e-5)
        assert a.stability == b.stability and a.stability_views == b.stability_views


def test_every_transform_inverts_itself():
    a = np.arange(4 * 4 * 3).reshape(4, 4, 3)
    for t in TRANSFORMS.values():
        assert np.array_equal(t.inverse(t.forward(a)), a), t.name
    assert np.array_equal(TRANSFORMS["antitranspose"].forward(a)[0, 0], a[3, 3])


def test_each_cam_method_is_built_once_per_model_and_unknown_ones_are_refused(evidence):
    first = evidence.cam("layercam")
    assert evidence.cam("layercam") is first and evidence.cam() is evidence.cam(evidence.card.cam_method)
    analysis = evidence.analyze(red_square(), cam_method="layercam")
    assert analysis.cam_method == "layercam" and analysis.to_dict(include_overlay=False)["cam_method"] == "layercam"
    with pytest.raises(CardError, match="Unknown CAM method"):
        evidence.cam("magic")
