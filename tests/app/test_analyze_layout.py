"""The Analyze layout for reading lesions: legend, the class's probability on the map, engine details, enlarge,
and the decision form whose save (a fragment's) still updates the whole page."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from app_helpers import as_shown, assert_no_exception, new_app
from PIL import Image

from dashboard import analysis_cache as results
from dashboard.engine_details import ENGINE_DETAILS
from dashboard.heatmap_panel import ENLARGE_LABEL, LEGEND
from dermascan.model.card import HAM10000_DISPLAY_NAMES
from dermascan.render.legend import legend_strip
from dermascan.render.overlay import colorize
from dermascan.reviews import ReviewStore

TOP = "nv"  # the peaked model's sure class


def upload(at, path):
    """Upload a real image on the Analyze page and rerun."""
    at.file_uploader(key="analyze_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
    return at.run()


def captions(at) -> list[str]:
    """Every image caption on the page, as a reader sees it."""
    return [as_shown(c) for img in at.image for c in img.captions]


def heatmap_class(at):
    """The heatmap panel's class selector."""
    return next(s for s in at.selectbox if s.label == "Heatmap for class")


@pytest.fixture(scope="module")
def peaked_model(tmp_path_factory, tiny_model):
    """The tiny model with a large bias on ``nv``: every other class gets well under 1%."""
    from dermascan._tf import keras

    folder = tmp_path_factory.mktemp("peaked")
    model = keras.models.load_model(tiny_model)
    dense = model.get_layer("probs")
    kernel, bias = dense.get_weights()
    bias[:] = 0.0
    bias[5] = 12.0  # HAM order: akiec, bcc, bkl, df, mel, nv, vasc
    dense.set_weights([kernel, bias])
    path = folder / "tiny.keras"
    model.save(path)
    path.with_name("tiny.card.json").write_text(tiny_model.with_name("tiny.card.json").read_text(), encoding="utf-8")
    return path


def test_the_overlay_names_its_class_with_its_probability_and_has_a_legend(app_env, ham_images, media):
    at = upload(new_app().run(), ham_images[0])
    assert_no_exception(at)
    top = at.dataframe[0].value.iloc[0]
    [overlay] = [c for c in captions(at) if c.startswith("Grad-CAM")]
    assert overlay == f"Grad-CAM: {HAM10000_DISPLAY_NAMES[top['Code']]} ({top['Probability']:.0%} probability)"
    legend = next(img for img in at.image if img.captions[0] == LEGEND)
    with Image.open(io.BytesIO(media[Path(legend.value[0]).stem].content)) as png:
        shown = np.asarray(png.convert("RGB"))
    assert np.array_equal(shown, legend_strip())  # the PNG the browser gets is the strip itself
    ramp = np.linspace(0, 1, 256, dtype=np.float32)[None, :]
    assert np.array_equal(shown[:1], colorize(ramp, (1, 256)))  # the overlay's own colours, low to high
    assert not any("negligible" in w.value for w in at.warning)  # the tiny model's classes are all near 1/7


def test_a_negligible_class_map_says_so(monkeypatch, review_db, peaked_model, ham_images):
    monkeypatch.setenv("DERMASCAN_MODEL", str(peaked_model))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    at = upload(new_app().run(), ham_images[0])
    assert_no_exception(at)
    assert heatmap_class(at).value == TOP
    assert not any("negligible" in w.value for w in at.warning)  # the top class is not negligible
    heatmap_class(at).set_value("mel").run()
    assert_no_exception(at)
    [overlay] = [c for c in captions(at) if c.startswith("Grad-CAM")]
    assert overlay.startswith("Grad-CAM: Melanoma (") and overlay.endswith("% probability)")
    probability = float(overlay.split("(")[1].split("%")[0]) / 100
    assert probability < 0.01
    [note] = [as_shown(w.value) for w in at.warning if "negligible" in w.value]
    assert note.startswith("The model gives Melanoma only ") and "not evidence of it" in note


def test_engine_details_name_preprocessing_layer_and_method(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    [details] = [e for e in at.expander if e.label == ENGINE_DETAILS]
    text = as_shown(details.markdown[0].value)
    assert "**Pixel scaling:** unit" in text and "**Resize:** " in text
    assert "**Heatmap method:** gradcam" in text and "**Heatmap layer:** conv_b" in text
    assert "**Model input:** 64 x 64 px" in text and "**The model card says:** unit / " in text


def test_enlarge_and_the_slider_only_reblend_and_keep_both_images(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    calls = results.engine_calls()
    at.toggle(key="overlay_enlarge").set_value(True).run()
    assert_no_exception(at)
    assert next(t for t in at.toggle if t.key == "overlay_enlarge").label == ENLARGE_LABEL
    at.slider(key="overlay_alpha").set_value(0.8).run()
    assert {"Original", LEGEND} <= set(captions(at)) and any(c.startswith("Grad-CAM") for c in captions(at))
    assert results.engine_calls() == calls  # neither the toggle nor the slider reached the model


def test_a_saved_decision_reruns_the_page_and_its_confirmation_survives_it(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    [case] = ReviewStore().list_cases()
    prefix = next(t.key for t in at.text_input if t.label == "Lesion ID").removesuffix("_lesion_id")
    at.text_input(key=f"{prefix}_lesion_id").input("L-9").run()
    assert any("not saved yet" in w.value for w in at.warning)
    next(r for r in at.radio if r.key and r.key.endswith("_management")).set_value("excise")
    next(b for b in at.button if b.label == "Save to review log").click()
    at.run()
    assert_no_exception(at)
    # The status box above the form is drawn before it: only a rerun of the whole page can show the save there.
    assert not any("not saved yet" in w.value for w in at.warning)
    assert any(f"Case details saved with case {case.case_id}." in c.value for c in at.caption)
    assert [s.value for s in at.success] == ["Decision and case details saved to the review log."]
    [stored] = ReviewStore().list_cases()
    assert stored.lesion_id == "L-9" and stored.decision.management == "excise"
    at.run()  # the confirmation is for the run right after the save, not for every later one
    assert not at.success
