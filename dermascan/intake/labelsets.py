"""Labelled image sets: a folder of images plus an ``image_id,dx`` CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DermascanError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class LabelSet:
    """Image ids with their true labels; ``missing`` lists ids whose image was not found."""

    ids: list[str]
    labels: list[str]
    paths: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def parse_labels_csv(text: str) -> dict[str, str]:
    """``{image_id: dx}`` from CSV text with at least the columns ``image_id`` and ``dx``."""
    return {image_id: row["dx"] for image_id, row in parse_label_rows(text).items()}


def parse_label_rows(text: str) -> dict[str, dict[str, str]]:
    """``{image_id: row}`` (every column, stripped, ``dx`` included) of the rows with both ``image_id`` and ``dx``.

    Extra columns (age, sex, localization... as in HAM10000's metadata) ride along for the subgroup view.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or not {"image_id", "dx"} <= {f.strip() for f in reader.fieldnames}:
        raise DermascanError("The labels CSV needs the columns image_id and dx.")
    out = {}
    for row in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if row.get("image_id") and row.get("dx"):
            out[Path(row["image_id"]).stem] = row
    if not out:
        raise DermascanError("The labels CSV has no rows with both image_id and dx.")
    return out


def read_labels_csv(path: str | Path) -> dict[str, str]:
    """Read and parse a labels CSV file (UTF-8, with or without BOM)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise DermascanError(f"The labels file {Path(path).name} could not be read as UTF-8 text.") from None
    return parse_labels_csv(text)


def find_labeled_images(images_dir: str | Path, labels: dict[str, str]) -> LabelSet:
    """Match each image id to ``images_dir/<id><image suffix>`` (the id may already carry its suffix)."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DermascanError(f"The images folder {images_dir.name} does not exist.")
    by_stem = {}
    for p in images_dir.iterdir():
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(p.stem, p)
    result = LabelSet(ids=[], labels=[])
    for image_id, dx in labels.items():
        path = by_stem.get(image_id)
        if path is None:
            result.missing.append(image_id)
            continue
        result.ids.append(image_id)
        result.labels.append(dx)
        result.paths.append(path)
    return result
