"""Turn uploaded files (images and .zip archives) into lazy batch sources, in upload order.

Nothing is read or copied here: each source's reader returns the upload's bytes (or
inflates one zip member) only when ``run_batch`` gets to it. Names are base names only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from dermascan.errors import DermascanError
from dermascan.inference.batch import Source
from dermascan.intake.archive import ArchiveLimits, open_zip
from dermascan.intake.labelsets import IMAGE_SUFFIXES

ZIP_SUFFIX = ".zip"
UPLOAD_TYPES = [s.lstrip(".") for s in IMAGE_SUFFIXES] + ["zip"]


@dataclass
class Intake:
    """What the uploads hold: sources to analyse, files refused before analysis, entries skipped."""

    sources: list[Source] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (base name, one-line reason)
    skipped: int = 0  # folders, hidden files and non-images inside archives


def display_name(name: str) -> str:
    """The base name of an uploaded file (directory uploads carry a relative path)."""
    return PurePosixPath(name.replace("\\", "/")).name or "unnamed"


def signature(files) -> tuple:
    """Identity of a set of uploads (ids, names, sizes) without reading them."""
    return tuple((getattr(f, "file_id", None), f.name, getattr(f, "size", None)) for f in files)


def collect(files, limits: ArchiveLimits = ArchiveLimits()) -> Intake:
    """Sources for every image upload and every image inside uploaded zips."""
    intake = Intake()
    for upload in files:
        name = display_name(upload.name)
        if name.lower().endswith(ZIP_SUFFIX):
            try:
                listing = open_zip(upload, limits)
            except DermascanError as exc:
                intake.refused.append((name, str(exc)))
                continue
            intake.sources.extend(listing.sources())  # each checked against the per-entry pixel limit when read
            intake.refused.extend(listing.refused)
            intake.skipped += listing.skipped
        else:
            intake.sources.append((name, upload.getvalue))
    return intake
