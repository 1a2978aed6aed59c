"""Bootstrap confidence intervals and subgroup results of the evaluation report (real numpy / sklearn)."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import HAM_LABELS
from sklearn.metrics import roc_auc_score

from dermascan.evaluation.metrics import age_band, bootstrap_intervals, classification_report, subgroup_report

MALIGNANT = ["akiec", "bcc", "mel"]
THRESHOLDS = {"medium": 0.1, "high": 0.35}


def _predictions(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """A noisy classifier: the true class gets a logit bonus, so every metric is between chance and perfect."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(HAM_LABELS), size=n, p=[0.05, 0.08, 0.12, 0.03, 0.12, 0.55, 0.05])
    logits = rng.normal(size=(n, len(HAM_LABELS)))
    logits[np.arange(n), y] += 1.5
    # Rounded probabilities make ties, which the weighted AUC must count one half like sklearn.
    probs = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2) + 1e-3
    return [HAM_LABELS[i] for i in y], probs / probs.sum(axis=1, keepdims=True)


def test_point_estimates_equal_the_classification_report():
    y, probs = _predictions(400, 0)
    ci = bootstrap_intervals(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS, n_resamples=50, seed=1)["metrics"]
    report = classification_report(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS)
    assert ci["balanced_accuracy"]["estimate"] == pytest.approx(report["balanced_accuracy"], abs=1e-12)
    assert ci["macro_auc"]["estimate"] == pytest.approx(report["macro_auc"], abs=1e-12)
    assert ci["melanoma_auc"]["estimate"] == pytest.approx(report["melanoma_auc"], abs=1e-12)
    assert ci["malignant_auc"]["estimate"] == pytest.approx(report["malignant"]["auc"], abs=1e-12)
    high = report["malignant"]["at_thresholds"]["high"]
    assert ci["malignant_sensitivity_high"]["estimate"] == pytest.approx(high["sensitivity"], abs=1e-12)
    assert ci["malignant_specificity_high"]["estimate"] == pytest.approx(high["specificity"], abs=1e-12)
    is_mel = np.array([t == "mel" for t in y])
    assert ci["melanoma_auc"]["estimate"] == pytest.approx(roc_auc_score(is_mel, probs[:, 4]), abs=1e-12)


def test_intervals_contain_the_estimate_shrink_with_n_and_are_seeded():
    widths = {}
    for n in (200, 3200):
        y, probs = _predictions(n, 2)
        result = bootstrap_intervals(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS, n_resamples=400, seed=7)
        assert result["level"] == 0.95 and result["n_resamples"] == 400
        for name, m in result["metrics"].items():
            assert m["low"] <= m["estimate"] <= m["high"], name
            assert m["low"] < m["high"] or m["estimate"] in (0.0, 1.0), name  # a perfect score has no spread
        widths[n] = {k: m["high"] - m["low"] for k, m in result["metrics"].items()}
        again = bootstrap_intervals(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS, n_resamples=400, seed=7)
        assert again == result
    for name in ("balanced_accuracy", "melanoma_auc", "macro_auc", "malignant_sensitivity_high"):
        # 16x the images: about 4x narrower; at least 2x makes the test robust to the draw.
        assert widths[3200][name] < widths[200][name] / 2, name


def test_undefined_metric_has_no_interval():
    y = ["nv"] * 30 + ["bkl"] * 10
    probs = np.full((40, 7), 1 / 7)
    result = bootstrap_intervals(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS, n_resamples=20)["metrics"]
    assert "melanoma_auc" not in result
    assert result["malignant_sensitivity_high"] == {"estimate": None, "low": None, "high": None}


@pytest.mark.parametrize("age,band", [(5, "<30"), ("29.9", "<30"), (30, "30-49"), (49, "30-49"), (50, "50-69"),
                                      (69, "50-69"), (70, ">=70"), (85.0, ">=70"), (None, "unknown"),
                                      ("", "unknown"), (float("nan"), "unknown"), ("inf", "unknown"), (-3, "unknown")])
def test_age_bands(age, band):
    assert age_band(age) == band


def test_subgroup_rows_count_and_score_each_group():
    y = ["mel", "nv", "nv", "mel", "bcc", "nv", "nv"]
    probs = np.zeros((7, 7))
    predicted = ["mel", "nv", "mel", "nv", "bcc", "nv", "nv"]
    probs[np.arange(7), [HAM_LABELS.index(p) for p in predicted]] = 1.0
    groups = ["female", "female", "female", "male", "male", "unknown", "unknown"]
    rows = {r["group"]: r for r in subgroup_report(y, probs, groups, HAM_LABELS, MALIGNANT, THRESHOLDS)}
    assert list(rows) == ["female", "male", "unknown"]  # unknown last
    assert rows["female"]["n"] == 3 and rows["female"]["classes"] == 2
    assert rows["female"]["balanced_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    assert rows["female"]["malignant"] == 1 and rows["female"]["malignant_sensitivity_high"] == 1.0
    assert rows["male"]["malignant"] == 2 and rows["male"]["malignant_sensitivity_high"] == 0.5
    assert rows["unknown"]["balanced_accuracy"] is None  # one class only: n/a
    assert rows["unknown"]["malignant_sensitivity_high"] is None
    with pytest.raises(ValueError):
        subgroup_report(y, probs, groups[:-1], HAM_LABELS, MALIGNANT, THRESHOLDS)


def test_report_sections_render_intervals_and_subgroups():
    from dermascan.train.report_render import intervals_markdown, subgroups_markdown

    y, probs = _predictions(300, 4)
    intervals = bootstrap_intervals(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS, n_resamples=100, seed=0)
    text = "\n".join(intervals_markdown(intervals))
    assert "## 95% confidence intervals" in text and "100 resamples" in text
    assert "| Malignant sensitivity, high band |" in text
    groups = ["female" if i % 2 else "male" for i in range(300)]
    rows = subgroup_report(y, probs, groups, HAM_LABELS, MALIGNANT, THRESHOLDS)
    text = "\n".join(subgroups_markdown({"sex": rows, "age_band": [{**rows[0], "balanced_accuracy": None}]}))
    assert "### Sex" in text and "| female | 150 |" in text
    assert "### Age band (years)" in text and "| n/a |" in text
    assert intervals_markdown(None) == [] and subgroups_markdown({}) == []


def test_subgroup_values_from_ham10000_metadata(tmp_path):
    from dermascan.train.report import subgroup_values

    meta = tmp_path / "HAM10000_metadata.csv"
    meta.write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\n"
                    "HAM_1,ISIC_1,mel,histo,72,male,back\n"
                    "HAM_2,ISIC_2,nv,follow_up,,unknown,\n"
                    "HAM_3,ISIC_3,nv,histo,35.0,Female, Lower Extremity\n", encoding="utf-8")
    values = subgroup_values(["ISIC_3", "ISIC_1", "ISIC_2", "ISIC_9"], meta)
    assert values == {"sex": ["female", "male", "unknown", "unknown"],
                      "age_band": ["30-49", ">=70", "unknown", "unknown"],
                      "localization": ["lower extremity", "back", "unknown", "unknown"]}
    assert subgroup_values(["ISIC_1"], tmp_path / "absent.csv") is None


def test_targets_table_reads_nested_keys_and_names_a_met_floor():
    from dermascan.train.report_render import TARGETS, _target_rows

    y, probs = _predictions(400, 5)
    report = classification_report(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS)
    rows = {row[0]: row for row in _target_rows(report, {"provenance": {"total_minutes_incl_evaluation": 130}})}
    assert len(rows) == len(TARGETS) + 1
    sensitivity = rows["Malignant sensitivity at the high triage threshold"]
    assert sensitivity[2] == report["malignant"]["at_thresholds"]["high"]["sensitivity"]
    assert rows["Training run on a 2-core CPU (minutes, incl. evaluation)"][3] == "**no**"
    better = {**report, "balanced_accuracy": 0.77}
    ba = {row[0]: row for row in _target_rows(better, {})}["Balanced accuracy (mean recall over classes)"]
    assert ba[1] == ">= 0.8 (floor 0.75)" and ba[3] == "**no** (floor met)"


def test_a_miss_that_rounds_to_the_target_shows_a_fourth_digit():
    from dermascan.train.report_render import _target_rows

    def sensitivity_row(value: float) -> list:
        report = {"malignant": {"at_thresholds": {"high": {"sensitivity": value}}}}
        return {row[0]: row for row in _target_rows(report, {})}["Malignant sensitivity at the high triage threshold"]

    assert sensitivity_row(283 / 298)[2:] == ["0.9497", "**no**"]  # 2.2.0's test split: one image short
    assert sensitivity_row(0.95)[2:] == [0.95, "yes"]
    assert sensitivity_row(0.93)[2:] == [0.93, "**no**"]  # plainly under: three places say so


def test_comparison_with_the_previous_model_shows_both_and_the_change():
    from dermascan.train.report_render import comparison_markdown

    y, probs = _predictions(400, 6)
    new = classification_report(y, probs, HAM_LABELS, MALIGNANT, THRESHOLDS)
    y_old, probs_old = _predictions(400, 7)
    old = classification_report(y_old, probs_old, HAM_LABELS, MALIGNANT, THRESHOLDS)
    text = "\n".join(comparison_markdown({"name": "old 1.0.0", "report": old, "note": "Same lesions."}, new))
    assert "## Compared with the previous default model (old 1.0.0)" in text and "Same lesions." in text
    change = new["balanced_accuracy"] - old["balanced_accuracy"]
    assert (f"| Balanced accuracy | {old['balanced_accuracy']:.3f} | {new['balanced_accuracy']:.3f} | "
            f"{change:+.3f} |") in text
    assert comparison_markdown(None, new) == []


def test_the_split_a_model_names_is_found_and_read_by_source_folder(tmp_path):
    from types import SimpleNamespace

    from dermascan.train.split import model_split_file, split_part

    rows = "image_id,dx,lesion_id,split,source\nA,nv,L1,test,set_224\nB,mel,L2,val,set_200\nC,df,L3,test,set_200\n"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "split_v2.csv").write_text(rows, encoding="utf-8")
    card = SimpleNamespace(provenance={"split_file": "model/split_v2.csv"})
    split = model_split_file(card, tmp_path / "model" / "m.keras", tmp_path)
    assert split == tmp_path / "model" / "split_v2.csv"
    paths, part = split_part(split, "test", tmp_path / "data" / "set_224")
    assert list(part["image_id"]) == ["A", "C"]
    data = tmp_path / "data"
    assert paths == [data / "set_224" / "images" / "A.jpg", data / "set_200" / "images" / "C.jpg"]
    no_provenance = SimpleNamespace(provenance={})
    assert model_split_file(no_provenance, tmp_path / "model" / "m.keras", tmp_path) == tmp_path / "model" / "split.csv"
    # A run made in another checkout names its split relative to that checkout: the copy beside the model is used.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "split_v2.csv").write_text(rows, encoding="utf-8")
    moved = SimpleNamespace(provenance={"split_file": "model/run7/split_v2.csv"})
    assert (model_split_file(moved, tmp_path / "elsewhere" / "m.keras", tmp_path)
            == tmp_path / "elsewhere" / "split_v2.csv")
    assert (model_split_file(moved, tmp_path / "nowhere" / "m.keras", tmp_path)
            == tmp_path / "model" / "run7" / "split_v2.csv")  # neither there: the named path, for its error
