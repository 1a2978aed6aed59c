"""After a run, Streamlit neither resets Keras nor collects garbage: that was half a second of every slider step."""

from __future__ import annotations

import subprocess
import sys

from app_helpers import REPO, assert_no_exception, new_app

from dashboard import script_cleanup


def test_the_router_keeps_keras_and_streamlit_reads_the_gc_setting(app_env, ham_images, monkeypatch):
    from dermascan._tf import keras

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(a))
    at = new_app().run()
    at.file_uploader(key="analyze_upload").set_value((ham_images[0].name, ham_images[0].read_bytes(), "image/jpeg"))
    at.run()
    next(s for s in at.slider if s.label == "Heatmap opacity").set_value(0.7).run()
    assert_no_exception(at)
    assert calls == []  # three runs, no reset of the shared model's Keras state
    assert script_cleanup.keep_keras_session() is True  # the hook exists in this Streamlit and is ours


def test_the_cleanup_still_closes_matplotlib_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure()
    assert plt.get_fignums()
    script_cleanup._clean_problem_modules()
    assert plt.get_fignums() == []


def test_streamlit_runs_no_full_garbage_collection_after_each_run():
    # A hidden option (``streamlit config show`` leaves it out): read it as Streamlit does, in the app's folder.
    code = "import streamlit.config as c; print(c.get_option('runner.postScriptGC'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-500:]
