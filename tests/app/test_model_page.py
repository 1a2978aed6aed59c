"""The Model page: the card for people, what the engine detected, and life without a model."""

from __future__ import annotations

import json

from app_helpers import as_shown, assert_no_exception, build_tiny_model, new_app


def test_model_page_renders_card_and_detection(app_env):
    at = new_app()
    at.switch_page("pages/model_card.py").run()
    assert_no_exception(at)
    assert "Tiny test CNN" in as_shown(at.subheader[0].value) and "test-1" in as_shown(at.subheader[0].value)
    tables = [df.value for df in at.dataframe]
    classes = next(t for t in tables if "Diagnosis" in t.columns)
    assert list(classes["Code"]) == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert "Melanoma" in set(classes["Diagnosis"])
    assert set(classes.loc[classes["Malignant"], "Code"]) == {"mel", "bcc", "akiec"}
    detected = next(t for t in tables if "Loader" in set(t.get("Field", [])))
    values = dict(zip(detected["Field"], detected["Value"]))
    assert values["Loader"] == "keras" and values["Input size (h × w)"] == "64 × 64"
    assert values["Grad-CAM layer"].endswith("conv_b")
    assert values["Out-of-distribution check reads"] == "off (no gate statistics)"  # the tiny model has none
    assert any("Untrained" in md.value for md in at.markdown)
    assert any("Triage thresholds:** medium from a malignancy score of 20%" in md.value for md in at.markdown)
    # metrics from the card are shown as tables
    assert any("Balanced accuracy" in set(t.get("Metric", [])) for t in tables)


def test_the_thresholds_in_words_are_shown_as_plain_text(monkeypatch, tmp_path, review_db):
    path = build_tiny_model(tmp_path)
    card = path.with_name("tiny.card.json")
    data = json.loads(card.read_text(encoding="utf-8"))
    data["thresholds_note"] = "Medium starts at a score of 20%: *set* on <b>validation</b>."
    card.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("DERMASCAN_MODEL", str(path))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    at = new_app()
    at.switch_page("pages/model_card.py").run()
    assert_no_exception(at)
    line = next(md.value for md in at.markdown if "Triage thresholds:**" in md.value)
    assert "Medium starts at a score of 20%: *set* on <b>validation</b>." in as_shown(line)
    assert "\\*set\\*" in line  # escaped: the card's text is never rendered as Markdown


def test_missing_model_is_a_friendly_message_everywhere(monkeypatch, review_db):
    monkeypatch.setenv("DERMASCAN_MODEL", "/nonexistent/folder/missing-model.keras")
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    at = new_app().run()
    assert_no_exception(at)
    errors = " ".join(as_shown(e.value) for e in at.error)
    assert "missing-model.keras was not found" in errors and "DERMASCAN_MODEL" in errors
    assert "/nonexistent" not in errors  # file name only, never the folder
    at.switch_page("pages/model_card.py").run()
    assert_no_exception(at)
    assert any("No model is loaded" in i.value for i in at.info)
    at.switch_page("pages/review_log.py").run()  # the log works without a model
    assert_no_exception(at)
    assert not at.error and at.dataframe and at.get("download_button")


def test_the_model_loads_once_for_all_sessions(monkeypatch, review_db, tiny_model, tmp_path):
    import shutil

    import dermascan

    own = tmp_path / "shared-model.keras"  # a path no other test loaded, so the cache starts empty for it
    shutil.copy(tiny_model, own)
    shutil.copy(tiny_model.with_name("tiny.card.json"), tmp_path / "shared-model.card.json")
    monkeypatch.setenv("DERMASCAN_MODEL", str(own))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    loads = []
    real_load = dermascan.load_model
    monkeypatch.setattr(dermascan, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    first, second = new_app(), new_app()
    for at in (first, second):
        at.switch_page("pages/model_card.py").run()
        assert_no_exception(at)
        assert "test-1" in as_shown(at.subheader[0].value)
    assert len(loads) == 1
