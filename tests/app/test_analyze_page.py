"""The Analyze page on a real image: differential, score, overlay, cheap slider, decisions."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
from app_helpers import as_shown, assert_no_exception, new_app
from PIL import Image

from dashboard import analysis_cache as results
from dashboard.presentation import DISPLAY_WIDTH
from dermascan.intake.images import read_image
from dermascan.reviews import ReviewStore

LABELS = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}


def upload(at, path):
    """Upload a real image file through the page's file uploader and rerun."""
    at.file_uploader(key="analyze_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
    return at.run()


def overlay_url(at) -> str:
    """The URL of the Grad-CAM overlay image (changes whenever its pixels change)."""
    return next(img for img in at.image if img.captions[0].startswith("Grad-CAM")).value[0]


def test_upload_shows_differential_score_overlay_and_sidebar(app_env, ham_images):
    at = new_app().run()
    assert_no_exception(at)
    assert any("test-1" in as_shown(md.value) for md in at.sidebar.markdown)  # the sidebar names the model version
    assert at.sidebar.get("page_link")
    upload(at, ham_images[0])
    assert_no_exception(at)
    assert not at.error
    differential = at.dataframe[0].value
    assert len(differential) == 7 and set(differential["Code"]) == LABELS
    assert differential["Probability"].is_monotonic_decreasing
    assert abs(differential["Probability"].sum() - 1.0) < 1e-4
    score = next(m for m in at.metric if m.label == "Malignancy score")
    assert score.value.endswith("%")
    assert any("badge[" in md.value and any(band in md.value for band in ("Low", "Medium", "High"))
               for md in at.markdown)  # the triage band in words, not colour alone
    assert any("malignancy score" in c.value.lower() or "review with care" in c.value for c in at.caption)
    captions = [c for img in at.image for c in img.captions]
    assert "Original" in captions and any(c.startswith("Grad-CAM") for c in captions)
    assert any(md.value.startswith("**Explanation.**") for md in at.markdown)
    assert any("Processed in" in c.value for c in at.caption)
    assert at.get("download_button")
    # the case is in the review log right away, before any decision
    assert ReviewStore().count_cases() == 1


def test_slider_reblends_without_calling_the_model(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    before_url, calls = overlay_url(at), results.engine_calls()
    at.slider(key="overlay_alpha").set_value(0.9).run()
    assert_no_exception(at)
    assert overlay_url(at) != before_url
    assert results.engine_calls() == calls  # re-blended from the cached heatmap
    at.slider(key="overlay_alpha").set_value(0.1).run()
    assert results.engine_calls() == calls


def test_another_class_map_costs_one_call_and_is_cached(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    top = at.dataframe[0].value["Code"].iloc[0]
    other = next(label for label in sorted(LABELS) if label != top)
    selector = next(s for s in at.selectbox if s.label == "Heatmap for class")
    calls = results.engine_calls()
    selector.set_value(other).run()
    assert_no_exception(at)
    assert results.engine_calls() == calls + 1
    assert "Grad-CAM: " in next(c for img in at.image for c in img.captions if c.startswith("Grad-CAM"))
    next(s for s in at.selectbox if s.label == "Heatmap for class").set_value(top).run()
    next(s for s in at.selectbox if s.label == "Heatmap for class").set_value(other).run()
    assert results.engine_calls() == calls + 1


def test_corrupt_upload_is_a_friendly_error_and_the_page_keeps_working(app_env, ham_images):
    at = new_app().run()
    at.file_uploader(key="analyze_upload").set_value(("broken.jpg", b"\xff\xd8 this is not a jpeg", "image/jpeg"))
    at.run()
    assert_no_exception(at)
    assert at.error and "cannot be analysed" in at.error[0].value
    assert "Traceback" not in at.error[0].value
    upload(at, ham_images[1])
    assert_no_exception(at)
    assert not at.error and len(at.dataframe[0].value) == 7


def test_saved_decision_reaches_the_log_and_survives_a_new_session(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    at.radio(key=f"decision_{_sha_prefix(at)}_agree").set_value("other")
    at.selectbox(key=f"decision_{_sha_prefix(at)}_diagnosis").set_value("mel")
    at.radio(key=f"decision_{_sha_prefix(at)}_management").set_value("excise")
    at.text_area(key=f"decision_{_sha_prefix(at)}_note").input("Irregular network; excise.")
    _submit(at)
    assert_no_exception(at)
    assert any("Saved to the review log" in s.value for s in at.success)
    [case] = ReviewStore().list_cases()
    assert case.file_name == ham_images[0].name and case.source == "single"
    assert case.decision.reviewer_diagnosis == "mel" and case.decision.management == "excise"
    assert case.decision.note == "Irregular network; excise."

    fresh = new_app().run()
    fresh.switch_page("pages/review_log.py").run()
    assert_no_exception(fresh)
    log = fresh.dataframe[0].value
    assert list(log["File"]) == [ham_images[0].name]
    assert log["Reviewer diagnosis"].iloc[0] == "Melanoma" and log["Management"].iloc[0] == "Excise"


def test_management_is_required(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    _submit(at)
    assert any("Choose a management option" in e.value for e in at.error)
    assert ReviewStore().list_cases()[0].decision is None


def test_case_details_go_to_the_review_db_only(app_env, ham_images):
    at = new_app().run()
    at.text_input(key="case_patient_id").input("P-0042")
    at.selectbox(key="case_fitzpatrick").set_value(3)
    at.number_input(key="case_age").set_value(57)
    upload(at, ham_images[0])
    assert_no_exception(at)
    [case] = ReviewStore().list_cases()
    assert (case.patient_id, case.fitzpatrick, case.age) == ("P-0042", 3, 57)


def test_unusable_review_db_keeps_the_result_and_the_typed_decision(monkeypatch, app_env, ham_images, tmp_path):
    broken = tmp_path / "not-a-db.sqlite3"
    broken.write_bytes(b"this is not an sqlite database" * 100)
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(broken))
    at = upload(new_app().run(), ham_images[0])
    assert_no_exception(at)
    assert len(at.dataframe[0].value) == 7  # the AI result is shown anyway
    assert any("not in the review log yet" in w.value for w in at.warning)
    at.radio(key=f"decision_{_sha_prefix(at)}_management").set_value("monitor")
    _submit(at)
    assert_no_exception(at)
    assert any("kept in this session" in e.value for e in at.error)
    # the database comes back: one click saves what was typed
    good = tmp_path / "good.sqlite3"
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(good))
    at.run()
    next(b for b in at.button if b.label == "Retry saving").click().run()
    assert_no_exception(at)
    [case] = ReviewStore(good).list_cases()
    assert case.decision is not None and case.decision.management == "monitor"


def _sha_prefix(at) -> str:
    """The image-specific part of the decision form's widget keys."""
    key = next(r.key for r in at.radio if r.key and r.key.startswith("decision_") and r.key.endswith("_agree"))
    return key.removeprefix("decision_").removesuffix("_agree")


def _submit(at):
    """Press the decision form's submit button and rerun."""
    next(b for b in at.button if b.label == "Save to review log").click().run()
    return at


def test_the_session_cache_is_bounded_by_bytes_and_keeps_the_newest(monkeypatch, tiny_model):
    import numpy as np

    import dermascan
    from dashboard import analysis_cache as results
    from dashboard.model_cache import ModelSlot
    from dermascan.inference.options import PreprocessingOption

    cache = {}
    monkeypatch.setattr(results.session, "bucket", lambda name: cache)
    image_bytes = 100 * 120 * 3
    monkeypatch.setattr(results, "MAX_CACHED_BYTES", 3 * 2 * image_bytes)  # image + its coloured map
    slot = ModelSlot(dermascan.load_model(tiny_model), "tiny", str(tiny_model))
    options = PreprocessingOption("unit", "squash")
    rng = np.random.default_rng(0)
    for i in range(6):
        image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
        results.analyze(slot, image, sha256=str(i), name=None, options=options).overlay(0.5)
    assert [key[0] for key in cache] == ["3", "4", "5"]  # three fit; the oldest went first


def test_a_large_upload_is_encoded_at_screen_width_and_looks_the_same(app_env, ham_images, media, monkeypatch):
    # Streamlit shows an image at most 1460 px wide, but only after encoding it at full size: for a
    # 12-megapixel upload that cost about half a second per slider move. The page hands over screen-wide copies.
    from streamlit.elements.lib import image_utils

    encoded, real_encoder = [], image_utils._np_array_to_bytes

    def recording_encoder(array, *args, **kwargs):
        encoded.append(array.shape)
        return real_encoder(array, *args, **kwargs)

    monkeypatch.setattr(image_utils, "_np_array_to_bytes", recording_encoder)
    pixels = cv2.resize(read_image(ham_images[0].read_bytes()), (3000, 2250), interpolation=cv2.INTER_CUBIC)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    at = new_app().run()
    at.file_uploader(key="analyze_upload").set_value(("large.jpg", buffer.getvalue(), "image/jpeg"))
    at.run()
    at.slider(key="overlay_alpha").set_value(0.7).run()
    assert_no_exception(at)
    assert encoded and all(shape[:2] == (1095, DISPLAY_WIDTH) for shape in encoded)
    shown = {img.captions[0].split(":")[0]: Image.open(io.BytesIO(media[Path(img.value[0]).stem].content))
             for img in at.image if not img.captions[0].startswith("Heatmap colours")}  # the legend is a PNG
    assert set(shown) == {"Original", "Grad-CAM"}
    assert all(img.size == (DISPLAY_WIDTH, 1095) for img in shown.values())  # what the browser gets is unchanged
