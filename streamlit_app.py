"""DermaScan Review: entry point and router (``streamlit run streamlit_app.py``).

Each page is one line in ``PAGES``; page scripts live in ``pages/`` and stay thin.

This file has two roles. Imported by ``streamlit run`` (no script context), it defines ``app``, an
``st.App`` whose lifespan loads and warms up the model when the server starts, not on the first
visitor's request. Run by Streamlit for a session (and by AppTest), it is the router.
"""

from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.script_cleanup import keep_keras_session

keep_keras_session()  # no Keras reset and full garbage collection after every run (see the module)

# An emoji: Streamlit turns it into an inline SVG favicon. A ":material/..." page icon would make every
# browser fetch the favicon from fonts.gstatic.com (the st.Page icons below use the bundled font instead).
PAGE_ICON = "🔬"

if get_script_run_ctx(suppress_warning=True) is None:  # imported as the server's ASGI app, once per process
    from dashboard.server_start import lifespan

    app = st.App(Path(__file__).name, lifespan=lifespan)
else:  # a session's run
    from dashboard.sidebar import render_sidebar

    st.set_page_config(page_title="DermaScan Review", page_icon=PAGE_ICON, layout="wide")

    PAGES = [
        st.Page("pages/analyze.py", title="Analyze", icon=":material/biotech:", default=True),
        st.Page("pages/batch.py", title="Batch", icon=":material/photo_library:", url_path="batch"),
        st.Page("pages/compare.py", title="Compare preprocessing", icon=":material/compare:", url_path="compare"),
        st.Page("pages/review_log.py", title="Review log", icon=":material/fact_check:"),
        st.Page("pages/model_card.py", title="Model", icon=":material/description:"),
    ]

    page = st.navigation(PAGES)
    render_sidebar()
    page.run()
