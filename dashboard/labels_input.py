"""The labels-CSV input of the Batch and Compare pages: one uploader, one parser, one set of messages."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.intake.labelsets import parse_label_rows

from .presentation import plain

LABEL = "Labels CSV (optional)"
NOT_UTF8 = "The labels CSV must be UTF-8 text."


@dataclass(frozen=True)
class Labels:
    """What the labels input holds: ``{image_id: dx}`` (None: no usable file), the upload's id, and every column of
    each row (``{image_id: {column: text}}``: age, sex, localization... for the subgroup view)."""

    by_id: dict[str, str] | None
    file_id: str | None  # changes with every new upload (a metrics cache key)
    rows: dict[str, dict[str, str]] | None = None


def labels_csv_input(*, key: str, help: str, container=st) -> Labels:
    """A labels-CSV uploader (columns ``image_id,dx``) drawn in ``container``; an unusable file shows why there."""
    upload = container.file_uploader(LABEL, type=["csv"], key=key, help=help)
    if upload is None:
        return Labels(None, None)
    rows = read_label_rows(upload, container)
    by_id = None if rows is None else {image_id: row["dx"] for image_id, row in rows.items()}
    return Labels(by_id, getattr(upload, "file_id", None), rows)


def read_label_rows(upload, container=st) -> dict[str, dict[str, str]] | None:
    """``{image_id: row}`` from an uploaded labels CSV, or None after an error message in ``container``."""
    try:
        return parse_label_rows(upload.getvalue().decode("utf-8-sig"))
    except UnicodeDecodeError:
        container.error(NOT_UTF8, icon=":material/error:")
    except DermascanError as exc:
        container.error(plain(exc), icon=":material/error:")
    return None

