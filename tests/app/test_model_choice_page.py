"""The sidebar offers the models in the models folder by name; the page can never name another server path."""

from __future__ import annotations

import shutil

import pytest
from app_helpers import as_shown, assert_no_exception, new_app
from tiny_models import save_tiny_lesion_model
from unsafe_models import save_keras2_lambda_h5

PICKER = "ds_model_select"
CHOICE = "ds_model_choice"


@pytest.fixture
def models_dir(tmp_path, tiny_model, review_db, monkeypatch) -> dict:
    """A models folder: the default tiny model, a second one, a Lambda model, a symlink to a model outside."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_model, folder / "tiny.keras")
    shutil.copy(tiny_model.with_name("tiny.card.json"), folder / "tiny.card.json")
    second = save_tiny_lesion_model(tmp_path / "second", card={"name": "Second model"})
    shutil.copy(second, folder / "second.keras")
    shutil.copy(second.with_name("tiny.card.json"), folder / "second.card.json")
    outside = save_tiny_lesion_model(tmp_path / "outside-secret", card={"name": "Outside model"})
    (folder / "outside.keras").symlink_to(outside)
    marker = tmp_path / "code-ran.marker"
    save_keras2_lambda_h5(folder / "evil.h5", marker)
    monkeypatch.setenv("DERMASCAN_MODELS_DIR", str(folder))
    monkeypatch.setenv("DERMASCAN_MODEL", str(folder / "tiny.keras"))
    monkeypatch.setenv("DERMASCAN_REVIEW_DB", str(review_db))
    return {"folder": folder, "marker": marker}


def test_the_sidebar_lists_the_folder_and_loads_the_chosen_model(models_dir):
    at = new_app().run()
    assert_no_exception(at)
    assert not at.sidebar.text_input  # no box to type a server path into
    picker = at.sidebar.selectbox(key=PICKER)
    # The default (here a file of the folder) first and once; the symlink pointing out is not offered.
    assert picker.options == ["tiny.keras (default)", "evil.h5", "second.keras"]
    picker.select("second.keras").run()
    assert_no_exception(at)
    assert not at.error and at.file_uploader(key="analyze_upload")
    # AppTest reruns a file page without the entry script; the Model page shows which model loaded.
    at.switch_page("pages/model_card.py").run()
    assert "Second model" in at.subheader[0].value


def test_a_forged_choice_never_loads_a_file_outside_the_folder(models_dir):
    for forged in ("outside.keras", "../outside-secret/tiny.keras", str(models_dir["folder"] / "second.keras")):
        at = new_app()
        at.session_state[CHOICE] = forged
        at.switch_page("pages/model_card.py").run()  # the page alone: the sidebar's reset does not run first
        assert_no_exception(at)
        shown = " ".join(m.value for m in [*at.error, *at.info, *at.subheader])
        assert "no longer in the models folder" in shown
        assert "Outside model" not in shown and "Second model" not in shown and "outside-secret" not in shown
        at = new_app()
        at.session_state[CHOICE] = forged
        at.run()  # through the sidebar: an unknown choice falls back to the default model
        assert_no_exception(at)
        assert not at.error and at.sidebar.selectbox(key=PICKER).value == ""


def test_a_lambda_model_dropped_in_the_folder_is_refused_in_one_line(models_dir):
    at = new_app().run()
    at.sidebar.selectbox(key=PICKER).select("evil.h5").run()
    assert_no_exception(at)
    [message] = [as_shown(e.value) for e in at.main.error]
    assert "evil.h5 was refused: layer 'evil' (Lambda) carries Python code" in message and "\n" not in message
    assert str(models_dir["folder"]) not in message
    assert not models_dir["marker"].exists()  # the file's code never ran in the server process
    # AppTest drops the sidebar on a rerun of the page alone: a fresh session with that choice shows it.
    at = new_app()
    at.session_state[CHOICE] = "evil.h5"
    at.run()
    assert at.main.error and at.sidebar.error
    at.sidebar.selectbox(key=PICKER).select("").run()  # back to the default: the app recovers
    assert_no_exception(at)
    assert not at.main.error and at.file_uploader(key="analyze_upload")
    assert not models_dir["marker"].exists()
