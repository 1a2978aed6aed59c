"""Zip intake for batch uploads: image members read lazily, in memory, within limits.

Nothing is ever extracted to disk. The archive's central directory is checked up front
(member count, declared total size) so a zip bomb is refused before anything is
inflated; each member is then read only when its turn comes and refused if it inflates
past the per-image byte limit, whatever its header claims. Names shown to the user are
base names only, so folder structure (which may carry patient names) never reaches the UI.

Entry names are decoded as UTF-8 when the entry says so (flag bit 0x800) or when its raw
bytes are valid UTF-8 (many tools write UTF-8 without setting the flag), and as cp437, the
format's historical default, only otherwise. Each member's header is checked against the
per-entry pixel limit as soon as it is inflated, before anything decodes it: lower than a
single upload's, because an archive can hold thousands of entries.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from ..errors import DermascanError, InvalidImage
from ..inference.batch import Source
from .images import DEFAULT_MAX_BYTES, check_size, header_size
from .labelsets import IMAGE_SUFFIXES

DEFAULT_MAX_MEMBERS = 5_000
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3  # declared uncompressed size of all image members together
# Pixels one zip entry may claim (a single upload may claim 100 MP): a 40 MP PNG still decodes to 120 MB at full
# size before it is reduced, and a 3 KB archive can carry dozens of headers claiming that much.
DEFAULT_MAX_ENTRY_PIXELS = 40_000_000
_UTF8_FLAG = 0x800


class ArchiveError(DermascanError):
    """The archive as a whole cannot be used (not a zip, too many members, too large)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds that keep one upload from exhausting memory."""

    max_member_bytes: int = DEFAULT_MAX_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_entry_pixels: int = DEFAULT_MAX_ENTRY_PIXELS


@dataclass
class ArchiveListing:
    """What a zip holds: readable image members, refused ones (with reasons) and a count of skipped entries."""

    members: list[ArchiveMember] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (base name, one-line reason)
    skipped: int = 0  # folders, hidden files, __MACOSX resources, non-image files

    def sources(self) -> list[Source]:
        """The image members as batch sources, each inflated (and size-checked) when its turn comes."""
        return [(m.name, m.read) for m in self.members]


@dataclass(frozen=True)
class ArchiveMember:
    """One image inside an open zip; ``read()`` inflates it on demand."""

    name: str  # base name only
    info: zipfile.ZipInfo
    archive: zipfile.ZipFile
    max_bytes: int
    max_pixels: int = DEFAULT_MAX_ENTRY_PIXELS

    def read(self) -> bytes:
        """The member's bytes; ``InvalidImage`` when it is damaged, encrypted, inflates past the byte limit
        or its image header claims more than ``max_pixels``."""
        try:
            with self.archive.open(self.info) as fh:
                data = fh.read(self.max_bytes + 1)
        except RuntimeError:  # zipfile's way of saying "encrypted, password required"
            raise InvalidImage("The file is encrypted inside the archive.") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
            raise InvalidImage("The file is damaged inside the archive.") from None
        if len(data) > self.max_bytes:
            raise InvalidImage(f"The file is larger than {self.max_bytes // (1024 * 1024)} MB once uncompressed.")
        claimed = header_size(data)
        if claimed is not None:  # an unreadable header is the decoder's to describe
            check_size(claimed, self.max_pixels)
        return data


def base_name(member_name: str) -> str:
    """The last path component of a member name (zip names use '/', some tools write '\\').

    Kept as written, bidi and control characters included: what is recorded stays faithful, and
    every page shows names through ``render.text`` (which drops them for display).
    """
    return PurePosixPath(member_name.replace("\\", "/")).name


def entry_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author wrote it: UTF-8 when flagged or valid, else cp437."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename  # zipfile already decoded it as UTF-8
    try:
        raw = info.filename.encode("cp437")  # zipfile decoded these bytes as cp437; undo that losslessly
    except UnicodeEncodeError:  # a ZipInfo built in memory with a non-cp437 name: already text
        return info.filename
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def _skippable(info: zipfile.ZipInfo, name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if info.is_dir() or not parts:
        return True
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return True
    return PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES


def open_zip(source: bytes | BinaryIO, limits: ArchiveLimits = ArchiveLimits()) -> ArchiveListing:
    """List the image members of a zip (bytes or a seekable binary file), refusing bombs.

    Raises ``ArchiveError`` when the archive is unreadable, has more than ``max_members``
    entries, or declares more than ``max_total_bytes`` of image data. Members are not read here.
    """
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        archive = zipfile.ZipFile(fh)
        infos = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):
        raise ArchiveError("The archive is not a readable .zip file.") from None
    if len(infos) > limits.max_members:
        raise ArchiveError(f"The archive has {len(infos):,} entries; at most {limits.max_members:,} are accepted.")
    listing = ArchiveListing()
    total = 0
    for info in infos:
        full_name = entry_name(info)
        if _skippable(info, full_name):
            listing.skipped += 1
            continue
        name = base_name(full_name)
        if info.file_size > limits.max_member_bytes:
            listing.refused.append(
                (name, f"The file is larger than {limits.max_member_bytes // (1024 * 1024)} MB once uncompressed.")
            )
            continue
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"The archive holds more than {limits.max_total_bytes // (1024 * 1024):,} MB of images "
                "once uncompressed; split it into smaller archives."
            )
        listing.members.append(ArchiveMember(name, info, archive, limits.max_member_bytes, limits.max_entry_pixels))
    return listing


def iter_zip_images(source: bytes | BinaryIO, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[tuple[str, bytes]]:
    """``(base name, bytes)`` of each readable image member, inflated one at a time (refused ones are skipped)."""
    for member in open_zip(source, limits).members:
        try:
            yield member.name, member.read()
        except InvalidImage:
            continue
