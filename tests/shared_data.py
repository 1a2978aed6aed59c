"""Where the shared development data lives, and small readers for it.

``../shared/data`` (beside the repo root) holds real HAM10000 images and real user model
files; tests that need it skip with a clear reason when it is absent. Test modules import
these names from here, never from a ``conftest`` (several conftests share that module name).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
HAM = SHARED / "ham10000_224"
USER_MODELS = SHARED / "user-models"
HAM_LABELS = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]

needs_shared = pytest.mark.skipif(not HAM.is_dir(), reason="../shared/data (HAM10000 images) is not present")


def ham_labels() -> dict[str, str]:
    """``{image_id: dx}`` for the shared HAM10000 images."""
    with open(HAM / "labels.csv", newline="") as fh:
        return {row["image_id"]: row["dx"] for row in csv.DictReader(fh)}


def ham_sample(n: int, *, per_class: bool = False) -> list[Path]:
    """``n`` real image paths (sorted ids; one of each class first when ``per_class``)."""
    labels = ham_labels()
    ids = sorted(labels)
    if per_class:
        firsts = {}
        for image_id in ids:
            firsts.setdefault(labels[image_id], image_id)
        ids = list(firsts.values()) + [i for i in ids if i not in firsts.values()]
    return [HAM / "images" / f"{i}.jpg" for i in ids[:n]]
