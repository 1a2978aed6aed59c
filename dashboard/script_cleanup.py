"""Stop Streamlit from resetting Keras after every script run.

After each run (a whole page or one fragment) Streamlit calls ``keras.backend.clear_session()`` when Keras
is imported, a workaround from the Keras 1/2 days of per-graph sessions. With Keras 3 on TensorFlow it
resets Keras' global state, empties TensorFlow's kernel cache and runs a full garbage collection: about
half a second of every slider step or class change here (measured with py-spy against ``streamlit run``,
benchmarks/ui_latency.py), and the next analysis rebuilds the kernels it just lost. The one model every
session shares (``st.cache_resource``) keeps its own compiled functions, so there is no graph to reset, and
a reset from one session's thread while another session analyses an image is a race we do not want.

Streamlit's other cleanup (closing matplotlib figures) is kept. ``runner.postScriptGC = false`` in
``.streamlit/config.toml`` turns off its other full collection after every run.
"""

from __future__ import annotations

import sys

_MARK = "_dermascan_keeps_keras"


def _clean_problem_modules() -> None:
    """Streamlit's post-run cleanup without the Keras reset: close matplotlib's figures if pyplot is in use."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


setattr(_clean_problem_modules, _MARK, True)


def keep_keras_session() -> bool:
    """Install the cleanup above in Streamlit's script runner (once per process); True when it is in place.

    A Streamlit release without the hook leaves nothing to patch: then this returns False and changes nothing.
    """
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False
    if not getattr(current, _MARK, False):
        script_runner._clean_problem_modules = _clean_problem_modules
    return True
