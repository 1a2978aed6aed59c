"""Off-card options are loud: only in ML mode, a banner, the case's flag (Review log, CSV), out of triage statistics,
and the heatmap class follows the new top class."""

from __future__ import annotations

import csv
import io

from app_helpers import HAM_LABELS, as_shown, assert_no_exception, new_app
from tiny_models import save_tiny_lesion_model

from dashboard.engine_details import ENGINE_DETAILS
from dashboard.off_card import triage_statistics_cases
from dermascan.inference.preprocessing import SCALINGS
from dermascan.model.card import HAM10000_DISPLAY_NAMES
from dermascan.reviews import ReviewStore

ML_MODE = "ds_ml_mode_toggle"


def ml_mode(at, on: bool):
    """Turn ML mode on or off. AppTest shows the sidebar of a session's first run only, so after that the
    toggle's callback is done by hand: it copies the toggle into the plain key the sidebar reads back."""
    if any(t.key == ML_MODE for t in at.toggle):
        return at.toggle(key=ML_MODE).set_value(on).run()
    at.session_state["ds_ml_mode"] = on
    return at.run()


def upload(at, path):
    """Upload a real image on the Analyze page and rerun."""
    at.file_uploader(key="analyze_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
    return at.run()


def banner(at) -> list[str]:
    return [e.value for e in at.error if e.value.startswith("Off-card options")]


def heatmap_class(at):
    """The Analyze page's heatmap class selector."""
    return next(s for s in at.selectbox if s.label == "Heatmap for class")


def test_ml_mode_is_off_by_default_and_hides_the_options(app_env, ham_images):
    at = new_app().run()
    assert at.toggle(key=ML_MODE).value is False
    upload(at, ham_images[0])
    assert_no_exception(at)
    assert not [s for s in at.selectbox if s.key in ("opt_preprocessing", "opt_resize")]
    assert not banner(at)
    [case] = ReviewStore().list_cases()
    assert case.off_card is False
    ml_mode(at, True)
    assert at.selectbox(key="opt_preprocessing").value == case.preprocessing  # starts from the card


def test_an_off_card_analysis_has_a_banner_a_stored_flag_and_is_left_out_of_triage_statistics(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    ml_mode(at, True)
    card_scaling = at.selectbox(key="opt_preprocessing").value
    other = next(s for s in SCALINGS if s != card_scaling)
    at.selectbox(key="opt_preprocessing").set_value(other).run()
    assert_no_exception(at)
    [text] = banner(at)
    assert f"pixel scaling {other} (card: {card_scaling})" in as_shown(text)
    assert "left out of triage statistics" in text
    cases = {c.preprocessing: c for c in ReviewStore().list_cases()}
    assert cases[other].off_card is True and cases[card_scaling].off_card is False
    assert [c.case_id for c in triage_statistics_cases(cases.values())] == [cases[card_scaling].case_id]

    log = at.switch_page("pages/review_log.py").run()
    assert_no_exception(log)
    table = next(df.value for df in log.dataframe if "Off-card" in df.value.columns)
    assert dict(zip(table["Case"], table["Off-card"])) == {cases[other].case_id: True,
                                                           cases[card_scaling].case_id: False}
    exported = ReviewStore().export_csv().decode("utf-8-sig")
    rows = {r["preprocessing"]: r["off_card"] for r in csv.DictReader(io.StringIO(exported))}
    assert rows[other] != rows[card_scaling] and rows[other] in ("yes", "1", "true", "True")

    at.switch_page("pages/analyze.py").run()
    assert at.selectbox(key="opt_preprocessing").value == card_scaling  # ML mode is kept across pages
    ml_mode(at, False)  # the clinician's path: back to the card, no banner
    assert_no_exception(at)
    assert not banner(at) and not [s for s in at.selectbox if s.key == "opt_preprocessing"]


def test_changing_the_options_resets_the_heatmap_class_to_the_new_top_class(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    ml_mode(at, True)
    card_scaling = at.selectbox(key="opt_preprocessing").value
    top_a = heatmap_class(at).value
    other_scaling = next(s for s in SCALINGS if s != card_scaling)
    at.selectbox(key="opt_preprocessing").set_value(other_scaling).run()
    [top_b] = [c.top_label for c in ReviewStore().list_cases() if c.preprocessing == other_scaling]
    at.selectbox(key="opt_preprocessing").set_value(card_scaling).run()
    assert heatmap_class(at).value == top_a

    other = next(label for label in HAM_LABELS if label not in (top_a, top_b))
    heatmap_class(at).set_value(other).run()
    assert heatmap_class(at).value == other
    at.selectbox(key="opt_preprocessing").set_value(other_scaling).run()
    assert_no_exception(at)
    assert heatmap_class(at).value == top_b  # the new options' top class, not the class picked before
    assert any(as_shown(c).startswith(f"Grad-CAM: {HAM10000_DISPLAY_NAMES[top_b]} (")  # then its probability
               for img in at.image for c in img.captions)


def test_a_card_that_declares_tta_is_on_card_and_its_views_are_named(monkeypatch, tmp_path, review_db, ham_images):
    views = ["identity", "hflip", "vflip"]
    monkeypatch.setenv("DERMASCAN_MODEL", str(save_tiny_lesion_model(tmp_path / "tta", card={"tta": views})))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    at = upload(new_app().run(), ham_images[0])
    assert_no_exception(at)
    assert not banner(at)  # the card's own views are the model's validated behaviour
    [case] = ReviewStore().list_cases()
    assert case.off_card is False
    [details] = [e for e in at.expander if e.label == ENGINE_DETAILS]
    assert "**Test-time augmentation:** 3 views averaged: The image as it is; Mirrored left-right" in as_shown(
        details.markdown[0].value)
    page = at.switch_page("pages/model_card.py").run()
    assert_no_exception(page)
    assert any("**Test-time augmentation:** 3 views averaged" in as_shown(m.value) for m in page.markdown)
