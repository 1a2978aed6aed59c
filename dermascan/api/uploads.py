"""Uploaded files to model-ready ``Prepared`` items: bounded reads, safe names, content-decided decoding."""

from __future__ import annotations

from fastapi import UploadFile

from ..errors import InvalidImage
from ..inference.preprocessing import prepare
from ..intake.images import read_image, sha256_hex
from .batcher import Prepared

MAX_NAME_CHARS = 200


def safe_name(filename: str | None) -> str | None:
    """The upload's base name, printable and at most ``MAX_NAME_CHARS`` long (None when empty)."""
    if not filename:
        return None
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch if ch.isprintable() else "?" for ch in name)[:MAX_NAME_CHARS]
    return name or None


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The file's bytes, reading at most one byte past ``max_bytes`` (``InvalidImage`` if it is larger)."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidImage(f"The file is larger than the {max_bytes / (1024 * 1024):.3g} MB limit.")
    return data


def prepare_upload(model, data: bytes, name: str | None, class_index: int, max_bytes: int) -> Prepared:
    """Decode (the format decided by content) and preprocess one upload for the batcher."""
    image = read_image(data, max_bytes=max_bytes)
    x = prepare(image, model.input_size, model.card.preprocessing, model.card.resize)
    return Prepared(image=image, x=x, sha256=sha256_hex(data), name=name, class_index=class_index)
