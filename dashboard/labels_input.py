"""The labels-CSV input of the Batch and Compare pages: one uploader, one parser, one set of messages."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dermascan.errors import DermascanError
from dermascan.intake.labelsets import parse_labels_csv

from .presentation import plain

LABEL = "Labels CSV (optional)"
NOT_UTF8 = "The labels CSV must be UTF-8 text."


@dataclass(frozen=True)
class Labels:
    """What the labels input holds: ``{image_id: dx}`` (None: no usable file) and the upload's id."""

    by_id: dict[str, str] | None
    file_id: str | None  # changes with every new upload (a metrics cache key)


def labels_csv_input(*, key: str, help: str, container=st) -> Labels:
    """A labels-CSV uploader (columns ``image_id,dx``) drawn in ``container``; an unusable file shows why there."""
    upload = container.file_uploader(LABEL, type=["csv"], key=key, help=help)
    if upload is None:
        return Labels(None, None)
    return Labels(read_labels(upload, container), getattr(upload, "file_id", None))


def read_labels(upload, container=st) -> dict[str, str] | None:
    """``{image_id: dx}`` from an uploaded labels CSV, or None after an error message in ``container``."""
    try:
        return parse_labels_csv(upload.getvalue().decode("utf-8-sig"))
    except UnicodeDecodeError:
        container.error(NOT_UTF8, icon=":material/error:")
    except DermascanError as exc:
        container.error(plain(exc), icon=":material/error:")
    return None
