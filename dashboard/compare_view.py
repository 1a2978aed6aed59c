"""Compare page builders: the classes x options table, the shown image's true label, identical-input notes, the
metrics download and the small-n warning (numbers from ``dermascan.evaluation.compare``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from dermascan.evaluation.compare import SMALL_N, aligned_rows, identical_inputs, small_classes
from dermascan.render.text import display_text

from . import session
from .batch_export import safe_csv
from .presentation import plain


def aligned_table(results: dict, display_name: Callable[[str], str], title: Callable) -> pd.DataFrame:
    """Classes (full names, the model's order) x options (``title(option)`` headers): probabilities, aligned."""
    rows = aligned_rows(results, display_name)
    frame = pd.DataFrame([{"Class": display_text(r["name"]), "Code": display_text(r["label"]),
                           **{title(o): r[o.label] for o in results}} for r in rows])
    st.dataframe(frame, hide_index=True, width="stretch", key=session.COMPARE_ALIGNED,
                 column_config={title(o): st.column_config.ProgressColumn(title(o), format="percent", min_value=0.0,
                                                                          max_value=1.0) for o in results})
    return frame


def true_label_note(name: str, labels_by_id: dict[str, str] | None, display_name: Callable[[str], str]) -> None:
    """The shown image's true label when the labels file names it."""
    dx = (labels_by_id or {}).get(PurePosixPath(name).stem)
    if dx:
        st.info(f"True label of {plain(name)} (labels file): **{plain(display_name(dx))}** ({plain(dx)}).",
                icon=":material/label:")


def identical_note(model, results: dict) -> None:
    """Say which options feed the model exactly the same array for this image (their columns cannot differ)."""
    if not results:
        return
    image = next(iter(results.values())).image
    for a, b in identical_inputs(model, image, list(results)):
        st.info(f"{plain(a.label)} and {plain(b.label)} give the model identical inputs for this image, so their "
                "results are the same by construction (not a sign that the choice does not matter for other images).",
                icon=":material/content_copy:")


def metrics_download(rows: Sequence[dict], titles: dict[str, str]) -> None:
    """The per-option metrics table as a formula-safe CSV download."""
    columns = ["option", "preprocessing", "resize", "tta", *titles, "n", "model_card", "best"]
    st.download_button("Download metrics (CSV)", safe_csv(columns, rows), file_name="compare_metrics.csv",
                       mime="text/csv", icon=":material/download:", key=session.COMPARE_METRICS_CSV, on_click="ignore")


def small_n_warning(y_true: Sequence[str], display_name: Callable[[str], str]) -> None:
    """A warning when a class has fewer than ``SMALL_N`` labelled images (or the whole set does)."""
    small = small_classes(y_true)
    if len(y_true) < SMALL_N or small:
        listed = ", ".join(f"{plain(display_name(label))} {n}" for label, n in small.items())
        st.warning(f"Fewer than {SMALL_N} labelled images per class ({listed or f'{len(y_true)} in all'}): these "
                   "numbers are noisy, and a difference between options may be chance.", icon=":material/warning:")
