"""The Model page shows a card's subgroup results (sex, age band, body site) and its confidence intervals."""

from __future__ import annotations

from app_helpers import assert_no_exception, new_app
from tiny_models import save_tiny_lesion_model

SUBGROUPS = {
    "sex": [{"group": "female", "n": 40, "classes": 5, "balanced_accuracy": 0.61, "malignant": 9,
             "malignant_sensitivity_high": 0.889},
            {"group": "unknown", "n": 3, "classes": 1, "balanced_accuracy": None, "malignant": 0,
             "malignant_sensitivity_high": None}],
    "age_band": [{"group": ">=70", "n": 12, "classes": 3, "balanced_accuracy": 0.5, "malignant": 6,
                  "malignant_sensitivity_high": 1.0}],
    "localization": "not rows",  # anyone's card: a malformed attribute is left out, the page still renders
}


def test_model_page_shows_subgroup_tables(monkeypatch, tmp_path, review_db):
    model = save_tiny_lesion_model(tmp_path, card={
        "name": "Subgroup card", "metrics": {
            "test": {"balanced_accuracy": 0.6},
            "confidence_intervals": {"balanced_accuracy": {"estimate": 0.6, "low": 0.55, "high": 0.66}},
            "subgroups": SUBGROUPS}})
    monkeypatch.setenv("DERMASCAN_MODEL", str(model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    at = new_app()
    at.switch_page("pages/model_card.py").run()
    assert_no_exception(at)
    assert any("Subgroups (test split)" in md.value for md in at.markdown)
    tables = [df.value for df in at.dataframe]
    by_sex = next(t for t in tables if "female" in set(t.get("Group", [])))
    assert list(by_sex.columns[:5]) == ["Group", "Images", "Classes", "Balanced accuracy", "Malignant"]
    assert list(by_sex["Balanced accuracy"]) == ["0.610", "n/a"]
    assert any(">=70" in set(t.get("Group", [])) for t in tables)
    assert not any("not rows" in str(t.values) for t in tables)
    intervals = next(t for t in tables if "Low" in t.columns)
    assert list(intervals.loc[:, "High"]) == ["0.660"]


def test_model_page_without_subgroups_has_no_subgroup_section(app_env):
    at = new_app()
    at.switch_page("pages/model_card.py").run()
    assert_no_exception(at)
    assert not any("Subgroups" in md.value for md in at.markdown)
