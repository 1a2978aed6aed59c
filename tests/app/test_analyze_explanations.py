"""The Analyze page's explanations: the CAM method choice, faithfulness and stability in words, stored with the case."""

from __future__ import annotations

import csv
import io
import re

from app_helpers import as_shown, assert_no_exception, new_app

from dashboard import analysis_cache as results
from dermascan.reviews import ReviewStore


def upload(at, path):
    at.file_uploader(key="analyze_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
    return at.run()


def overlay(at):
    """(caption, URL) of the heatmap overlay image."""
    img = next(i for i in at.image if i.captions[0] != "Original")
    return img.captions[0], img.value[0]


def notes(at, title: str) -> list[str]:
    return [as_shown(md.value) for md in at.markdown if f"**{title}.**" in md.value]


def test_choosing_a_method_changes_the_map_and_the_stored_cases_method(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    assert_no_exception(at)
    method = at.selectbox(key="analyze_cam_method")
    assert method.value == "gradcam"  # the card's (the tiny model's card names none: the default)
    assert any("Score-CAM" in option and "slower" in option for option in method.options)
    caption, url = overlay(at)
    assert caption.startswith("Grad-CAM:")
    calls = results.engine_calls()
    method.set_value("eigencam").run()
    assert_no_exception(at)
    new_caption, new_url = overlay(at)
    assert new_caption.startswith("Eigen-CAM:") and new_url != url
    assert results.engine_calls() == calls + 1
    cases = {c.cam_method: c for c in ReviewStore().list_cases()}
    assert set(cases) == {"gradcam", "eigencam"}  # one case per method, each naming its own
    at.selectbox(key="analyze_cam_method").set_value("gradcam").run()
    assert results.engine_calls() == calls + 1 and overlay(at)[1] == url  # back: from the cache
    assert len(ReviewStore().list_cases()) == 2


def test_stability_is_opt_in_and_its_sentence_is_shown_and_stored(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    assert not notes(at, "Stability")
    calls = results.engine_calls()
    at.toggle(key="analyze_stability").set_value(True).run()  # after the case is stored: shown, not stored
    assert results.engine_calls() == calls + 1 and notes(at, "Stability")
    assert ReviewStore().list_cases()[0].stability is None

    at = new_app().run()
    at.toggle(key="analyze_stability").set_value(True).run()
    upload(at, ham_images[1])
    assert_no_exception(at)
    [sentence] = notes(at, "Stability")
    match = re.search(r"under (?:all (\d) views|(\d) of (\d) views)", sentence)
    assert match and "malignancy score ranged from" in sentence
    assert (match.group(1) or match.group(3)) == "4"
    case = next(c for c in ReviewStore().list_cases() if c.file_name == ham_images[1].name)
    changed = 0 if match.group(1) else int(match.group(2))
    assert case.stability == (4 - changed) / 4
    rows = csv.DictReader(io.StringIO(ReviewStore().export_csv().decode("utf-8-sig")))
    [row] = [r for r in rows if r["file_name"] == ham_images[1].name]
    assert float(row["stability"]) == case.stability and row["cam_method"] == "gradcam"
    assert row["faithfulness"] == ""  # not measured: faithfulness is opt-in


def test_faithfulness_is_opt_in_and_its_sentence_has_the_number(app_env, ham_images):
    at = upload(new_app().run(), ham_images[0])
    assert not notes(at, "Faithfulness")
    [case] = ReviewStore().list_cases()
    assert case.faithfulness is None
    calls = results.engine_calls()
    at.toggle(key="analyze_faithfulness").set_value(True).run()
    assert_no_exception(at)
    assert results.engine_calls() == calls + 1  # the drop only: the map is not computed again
    [sentence] = notes(at, "Faithfulness")
    assert re.search(r"depends (strongly|moderately|weakly) on the highlighted region", sentence)
    assert re.search(r"(lowers|raises) it by \d+%|leaves it unchanged", sentence)

    fresh = new_app().run()  # toggled on before the upload: the case is stored with its number
    fresh.toggle(key="analyze_faithfulness").set_value(True).run()
    upload(fresh, ham_images[1])
    assert_no_exception(fresh)
    stored = next(c for c in ReviewStore().list_cases() if c.file_name == ham_images[1].name)
    assert stored.faithfulness is not None and -1.0 <= stored.faithfulness <= 1.0
    shown = notes(fresh, "Faithfulness")[0]
    number = re.search(r"by (\d+)%", shown)
    assert number is None or int(number.group(1)) == round(abs(stored.faithfulness) * 100)
