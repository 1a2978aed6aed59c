"""The Batch page's worklist: a risk-sorted frame of results, its filters and column formats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import streamlit as st

from dermascan.render.text import display_text

from .batch_job import BatchResult
from .presentation import management_name, plain

ROW_ID = "_row"  # position in the job's results; hidden, used to find the selected result


@dataclass(frozen=True)
class Filters:
    """What the reviewer narrowed the worklist to (empty tuple: no restriction)."""

    bands: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    min_score: float = 0.0


def _decision_text(result: BatchResult, display_name) -> str:
    decision = result.case.decision if result.case is not None else None
    if decision is None:
        return ""
    diagnosis = decision.reviewer_diagnosis or result.top_label
    agrees = "agrees" if decision.reviewer_agrees else display_text(display_name(diagnosis))
    return f"{agrees} · {management_name(decision.management)}"


def results_frame(results: list[BatchResult], labels: list[str], display_name,
                  labels_by_id: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per analysed image, highest malignancy score first (ties: upload order).

    With ``labels_by_id`` (a labels file) a "True label" column shows each image's dx (empty: not in the file).
    """
    rows = [
        {
            ROW_ID: i,
            "Image": r.thumbnail,
            "File": display_text(r.name),  # shown only: the job and its CSV keep the name as uploaded
            "Top class": display_text(display_name(r.top_label)),
            "Code": r.top_label,
            **({"True label": true_label(r.name, labels_by_id, display_name)} if labels_by_id else {}),
            "Malignancy": r.malignant_score,
            "Triage": r.triage,
            "Stability": r.stability,
            "Faithfulness": r.faithfulness,
            "Decision": _decision_text(r, display_name),
            **{f"p_{label}": float(p) for label, p in zip(labels, r.probabilities)},
        }
        for i, r in enumerate(results)
    ]
    columns = [ROW_ID, "Image", "File", "Top class", "Code", *(["True label"] if labels_by_id else []), "Malignancy",
               "Triage", "Stability", "Faithfulness", "Decision", *[f"p_{x}" for x in labels]]
    frame = pd.DataFrame(rows, columns=columns)
    order = np.lexsort((frame[ROW_ID].to_numpy(), -frame["Malignancy"].to_numpy(dtype=float)))
    return frame.iloc[order].reset_index(drop=True)


def true_label(name: str, labels_by_id: dict[str, str] | None, display_name) -> str:
    """The full name of the labels file's dx for the file ``name`` (by stem); empty when it has none."""
    dx = (labels_by_id or {}).get(PurePosixPath(name).stem)
    return display_text(display_name(dx)) if dx else ""


def apply_filters(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows that pass every filter, order kept."""
    keep = frame["Malignancy"] >= filters.min_score
    if filters.bands:
        keep &= frame["Triage"].isin(filters.bands)
    if filters.classes:
        keep &= frame["Code"].isin(filters.classes)
    return frame[keep].reset_index(drop=True)


def row_ids(job, frame: pd.DataFrame) -> list[tuple]:
    """An id per row of ``frame`` (one of ``job``'s worklists): (job signature, result index), never a position."""
    return [(job.signature, int(i)) for i in frame[ROW_ID]]


def column_config(labels: list[str], display_name) -> dict:
    """Formats: thumbnail images, score as a progress bar, probabilities as percentages."""
    config = {
        ROW_ID: None,
        "Image": st.column_config.ImageColumn("Image", width="small", help="64 px preview"),
        "File": st.column_config.TextColumn("File"),
        "Top class": st.column_config.TextColumn("Top class", width="medium"),
        "Code": st.column_config.TextColumn("Code", width="small"),
        "Malignancy": st.column_config.ProgressColumn("Malignancy score", format="percent", min_value=0.0,
                                                      max_value=1.0),
        "Triage": st.column_config.TextColumn("Triage", width="small"),
        "Stability": st.column_config.NumberColumn(
            "Stability", format="percent", width="small",
            help="Share of the flipped and rotated views whose top class is the image's (empty: not measured)."),
        "Faithfulness": st.column_config.NumberColumn(
            "Faithfulness", format="percent", width="small",
            help="How much of the top class's probability is lost when the heatmap's top 20% is removed "
                 "(empty: not measured, or no heatmap)."),
        "True label": st.column_config.TextColumn("True label", width="medium", help="dx in the labels file"),
        "Decision": st.column_config.TextColumn("Decision", width="medium",
                                                help="The reviewer's decision saved from this page"),
    }
    for label in labels:
        config[f"p_{label}"] = st.column_config.NumberColumn(display_text(label), format="percent",
                                                             help=plain(display_name(label)))
    return config


def labelled(results: list[BatchResult], labels_by_id: dict[str, str]) -> tuple[list[str], np.ndarray, int]:
    """True labels and probabilities of the results whose file stem is in the labels CSV (and how many are not)."""
    y_true, probs = [], []
    for r in results:
        dx = labels_by_id.get(PurePosixPath(r.name).stem)
        if dx is not None:
            y_true.append(dx)
            probs.append(r.probabilities)
    array = np.stack(probs).astype(np.float64) if probs else np.zeros((0, 0))
    return y_true, array, len(results) - len(y_true)
