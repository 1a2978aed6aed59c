"""The server's warm-up thread does not log Streamlit's "missing ScriptRunContext" warning; other threads still do."""

from __future__ import annotations

import logging
import threading

from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from dashboard.server_start import SCRIPT_CONTEXT_LOGGER, WARM_UP_THREAD, quiet_warm_up_context_warning


def warnings_from(thread_name: str) -> list[str]:
    """The messages Streamlit's context logger emits while a thread called ``thread_name`` asks for its context."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger(SCRIPT_CONTEXT_LOGGER)
    logger.addHandler(handler)
    try:
        thread = threading.Thread(target=get_script_run_ctx, name=thread_name)
        thread.start()
        thread.join()
    finally:
        logger.removeHandler(handler)
    return [r.getMessage() for r in records]


def test_only_the_warm_up_threads_warning_is_dropped():
    quiet_warm_up_context_warning()
    quiet_warm_up_context_warning()  # installing twice adds one filter
    filters = logging.getLogger(SCRIPT_CONTEXT_LOGGER).filters
    assert [type(f).__name__ for f in filters].count("_NotFromWarmUp") == 1
    assert warnings_from(WARM_UP_THREAD) == []
    [other] = warnings_from("some-other-thread")
    assert "some-other-thread" in other and "missing ScriptRunContext" in other
