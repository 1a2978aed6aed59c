"""The shared widgets on their own: the labels-CSV input and the overlay viewer, through AppTest."""

from __future__ import annotations

from app_helpers import APP_TIMEOUT, as_shown, assert_no_exception


def labels_script():
    import streamlit as st

    from dashboard.labels_input import labels_csv_input

    labels = labels_csv_input(key="labels", help="image_id,dx")
    st.write(f"labels: {labels.by_id}")


def viewer_script():
    import numpy as np
    import streamlit as st

    from dashboard.overlay_viewer import overlay_viewer

    image = np.zeros((8, 8, 3), np.uint8)
    with_map = st.session_state.get("with_map", True)
    alpha = overlay_viewer(image, (lambda a: np.full_like(image, int(255 * a))) if with_map else None, key="alpha",
                           caption="Grad-CAM: nv", missing="No heatmap.")
    st.write(f"alpha: {alpha}")


def new(script):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_function(script, default_timeout=APP_TIMEOUT)


def upload(at, data: bytes):
    at.file_uploader(key="labels").set_value(("labels.csv", data, "text/csv"))
    return at.run()


def test_the_labels_input_parses_a_csv_and_says_why_one_is_unusable():
    at = new(labels_script).run()
    assert at.markdown[-1].value == "labels: None" and not at.error
    upload(at, b"image_id,dx\nISIC_1,mel\n")
    assert_no_exception(at)
    assert at.markdown[-1].value == "labels: {'ISIC_1': 'mel'}" and not at.error
    upload(at, "image_id,dx\nISIC_1,mél\n".encode("latin-1"))
    assert [e.value for e in at.error] == ["The labels CSV must be UTF-8 text."]
    assert at.markdown[-1].value == "labels: None"
    upload(at, b"name,diagnosis\na,b\n")
    assert [as_shown(e.value) for e in at.error] == ["The labels CSV needs the columns image_id and dx."]


def test_the_overlay_viewer_has_its_slider_only_with_a_heatmap():
    at = new(viewer_script).run()
    assert_no_exception(at)
    at.slider(key="alpha").set_value(0.8).run()
    assert at.markdown[-1].value == "alpha: 0.8"
    assert [c for img in at.image for c in img.captions] == ["Original", "Grad-CAM: nv"]
    at.session_state["with_map"] = False
    at.run()
    assert not at.slider and [i.value for i in at.info] == ["No heatmap."] and at.markdown[-1].value == "alpha: None"
    assert [c for img in at.image for c in img.captions] == ["Original"]
