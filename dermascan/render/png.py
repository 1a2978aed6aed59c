"""PNG encoding of RGB images, fast enough to sit on every analysis response.

A response's overlay PNG was the largest fixed cost after the model pass (about 1.5 ms of
OpenCV's libpng + zlib for a 224 x 224 image, 13% of the bundled model's pass). Here each row
gets PNG's "Up" filter (one vectorised subtraction: dermoscopy varies slowly row to row) and
the stream is deflated by Intel ISA-L through ``python-isal``: about 0.3 ms instead of 1.5 ms,
at a size within a few percent of OpenCV's (tests/render/test_png.py checks the pixels and the size).
The container around it is the four chunks every PNG has (signature, IHDR, IDAT, IEND),
straight from the PNG specification; any PNG decoder reads the result.
"""

from __future__ import annotations

import base64
import struct

import numpy as np
from isal import isal_zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2
_LEVEL = 1  # ISA-L levels are 0-3; 1 is as fast as 0 and about 12% smaller on dermoscopy.


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = isal_zlib.crc32(payload, isal_zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB ``uint8`` array of shape (H, W, 3) as a PNG file."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"expected a non-empty RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    rows = image.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]  # "Up" of the first row is against an all-zero row above it
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 wraps modulo 256, as PNG wants
    # 8-bit truecolour (type 2), deflate, adaptive filtering, no interlace.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", isal_zlib.compress(filtered, _LEVEL)),
        _chunk(b"IEND", b""),
    ))


def png_data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` URI of an RGB uint8 image."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
