"""Analyze shows "Indeterminate: retake or refer" with the gate's reasons instead of a triage band."""

from __future__ import annotations

import numpy as np
from app_helpers import as_shown, assert_no_exception, new_app
from tiny_models import png_bytes


def test_a_gated_upload_shows_indeterminate_and_its_reasons_instead_of_a_band(app_env):
    at = new_app().run()
    white = png_bytes(np.full((64, 64, 3), 255, np.uint8))
    at.file_uploader(key="analyze_upload").set_value(("white.png", white, "image/png"))
    at.run()
    assert_no_exception(at)
    shown = " ".join(as_shown(c.value) for c in at.caption)
    assert "over-exposed" in shown and "retake it or refer" in shown
    badges = [md.value for md in at.markdown if "-badge[" in md.value]  # st.badge is a Markdown badge directive
    assert any("Indeterminate: retake or refer" in b for b in badges)
    assert not any(f" {band}]" in b for b in badges for band in ("Low", "Medium", "High"))
    assert any("unreliable" in m.label for m in at.metric)
