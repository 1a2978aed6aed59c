"""Safe image intake: untrusted bytes in, an RGB ``uint8`` array of shape (H, W, 3) out.

Everything that can go wrong with an upload (empty, too big, not an image, truncated, a
decompression bomb, an exotic pixel format) ends as :class:`~dermascan.errors.InvalidImage`
with a one-line message that can be shown to the user as-is. The format is decided by the
content (Pillow's detection), never by the file name.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dermascan.errors import InvalidImage
from dermascan.render.overlay import fit_within

# Pillow's PNG and TIFF plugins log every chunk name and tag value of an untrusted upload as raw bytes at
# DEBUG; with the root logger at DEBUG (a common deployment setting) they would fill the logs with file
# content. INFO keeps Pillow's real problems visible. An explicitly higher level set before import is kept.
_pil_log = logging.getLogger("PIL")
_pil_log.setLevel(max(_pil_log.level, logging.INFO))

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "SCREEN_MAX_PX",
    "SUPPORTED_FORMATS",
    "check_size",
    "header_size",
    "read_file_bytes",
    "read_image",
    "read_image_file",
    "sha256_hex",
]

DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # 8 MB
DEFAULT_MAX_PIXELS = 100_000_000  # ~100 megapixels
# The widest image the dashboard ever shows (Streamlit's widest st.image). Batch paths decode no larger than a
# SCREEN_MAX_PX square: the model needs 224 px, the screen this much, and a 20 MP photo decoded at full size is
# 60 MB of pixels that nothing looks at.
SCREEN_MAX_PX = 1460
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")

_SUPPORTED_TEXT = "JPEG, PNG, WebP, BMP or TIFF"
_BYTES_SUBJECT = "The file"
_MAX_NAME_CHARS = 80
_WHITE = (255, 255, 255, 255)

# Magic numbers of the supported formats. Used only to word the error message when Pillow
# cannot identify the file ("damaged PNG" reads better than "not an image"); the decision
# itself is always Pillow's.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 digest of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def read_image(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_side: int | None = None) -> np.ndarray:
    """Decode image bytes into a C-contiguous RGB ``uint8`` array of shape (H, W, 3).

    Raises :class:`InvalidImage` (and nothing else) for any bytes that are not a usable
    JPEG, PNG, WebP, BMP or TIFF image within ``max_bytes`` and ``max_pixels`` (checked on the
    header's size, before any pixel is decoded). With ``max_side`` the result fits a
    ``max_side`` square (aspect ratio kept): a JPEG is decoded straight at a reduced DCT scale
    (``Image.draft``), other formats are box-reduced (``Image.reduce``) right after decoding.
    """
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be positive")
    return _decode(data, subject=_BYTES_SUBJECT, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) claimed by the image's header, read without decoding pixels; None when unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the same untrusted-metadata noise _decode silences
            with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
                return img.size
    except Exception:  # noqa: BLE001 - the decode that follows reports what is wrong, in words
        return None


def read_image_file(
    path: str | os.PathLike[str] | os.PathLike[bytes] | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read and decode an image file like :func:`read_image`.

    The size is checked with ``stat`` before anything is read. Error messages name only the
    file's base name, never its directory.
    """
    data = read_file_bytes(path, max_bytes=max_bytes)
    return _decode(data, subject=_file_subject(path), max_bytes=max_bytes, max_pixels=max_pixels)


def read_file_bytes(
    path: str | os.PathLike[str] | os.PathLike[bytes] | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """The bytes of a regular file no larger than ``max_bytes``, or :class:`InvalidImage`."""
    _check_limits(max_bytes, 1)
    subject = _file_subject(path)
    unreadable = InvalidImage(f"{subject} could not be read.")
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # ValueError: embedded NUL byte in the path
        raise unreadable from None
    # Only regular files: a FIFO or a device would block or stream forever.
    if not stat.S_ISREG(info.st_mode):
        raise unreadable
    if info.st_size > max_bytes:
        raise InvalidImage(_too_many_bytes(subject, info.st_size, max_bytes))
    try:
        with open(path, "rb") as fh:
            # Read one byte past the limit: the file may have grown since stat.
            data = fh.read(max_bytes + 1)
    except (OSError, ValueError):
        raise unreadable from None
    if len(data) > max_bytes:
        raise InvalidImage(_too_many_bytes(subject, len(data), max_bytes))
    return data


def _decode(data: bytes, *, subject: str, max_bytes: int, max_pixels: int, max_side: int | None = None) -> np.ndarray:
    _check_limits(max_bytes, max_pixels)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    size = memoryview(data).nbytes
    if size == 0:
        raise InvalidImage(f"{subject} is empty.")
    if size > max_bytes:
        raise InvalidImage(_too_many_bytes(subject, size, max_bytes))

    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below is the authority, so Pillow's bomb *warning*
            # (its global MAX_IMAGE_PIXELS, ~89 MP) is noise here; its bomb *error* still
            # fires and is mapped below. Pillow's other warnings only describe the metadata
            # of an untrusted file: they would flood the logs and, under "-W error", turn a
            # readable image with sloppy EXIF into a failure. (catch_warnings is not
            # thread-safe before Python 3.14: under concurrent uploads these two "ignore"
            # filters may be seen by, or in a rare race outlive, another thread. That only
            # silences Pillow warnings, which is acceptable.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            return _decode_with_pillow(data, subject=subject, max_pixels=max_pixels, max_side=max_side)
    except InvalidImage:
        raise
    except Image.DecompressionBombError:
        raise InvalidImage(
            f"{subject} has too many pixels to be decoded safely; the limit is {_format_pixels(max_pixels)}."
        ) from None
    except MemoryError:
        raise InvalidImage(f"{subject} is too large to decode with the memory available.") from None
    except UnidentifiedImageError:
        raise InvalidImage(_unidentified(subject, data)) from None
    except Exception as exc:  # noqa: BLE001 - any other failure inside Pillow still means a bad image
        raise InvalidImage(_damaged(subject, exc)) from None


def _decode_with_pillow(data: bytes, *, subject: str, max_pixels: int, max_side: int | None) -> np.ndarray:
    # Image.open only parses the header; pixels are decoded by load(), so the size checks
    # below run before any pixel memory is committed. (WebP creates its decoder in open, but
    # the canvas memory is only touched when load() decodes a frame.)
    img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    with img:
        _check_size(img.size, subject, max_pixels)
        # Animated WebP/PNG and multi-page TIFF: analyse the first frame only.
        img.seek(0)
        _check_size(img.size, subject, max_pixels)
        if max_side is not None and img.format == "JPEG":
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale (never below the requested size): the
            # full-size pixels are never allocated.
            img.draft(None, _fitted(img.size, max_side))
        img.load()
        _orient(img)
        if max_side is not None:
            img = _reduce(img, max_side)
        rgb = _to_rgb_array(img, subject)
    return rgb if max_side is None else np.ascontiguousarray(fit_within(rgb, max_side, max_side))


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / width, max_side / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reduce(img: Image.Image, max_side: int) -> Image.Image:
    # An integer box reduction that stays at or above the fitted size, so the final area
    # resize to the exact size (fit_within) still averages; it drops the full-size pixels
    # before the colour conversion copies them.
    fitted = _fitted(img.size, max_side)
    factor = min(img.size[0] // fitted[0], img.size[1] // fitted[1])
    if factor < 2:
        return img
    try:
        return img.reduce(factor)
    except ValueError:  # modes reduce cannot average ("1", "P", "I;16"): converted at full size instead
        return img


def check_size(size: tuple[int, int], max_pixels: int) -> None:
    """``InvalidImage`` (the decoder's own wording) when ``size`` is empty or has more than ``max_pixels``."""
    _check_size(size, _BYTES_SUBJECT, max_pixels)


def _check_size(size: tuple[int, int], subject: str, max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"{subject} has no pixels (zero width or height).")
    if width * height > max_pixels:
        raise InvalidImage(
            f"{subject} is too large: {width} x {height} pixels; the limit is {_format_pixels(max_pixels)}."
        )


def _orient(img: Image.Image) -> None:
    # Phones and some dermatoscopes store the sensor orientation in EXIF; the pixels must be
    # turned the way the clinician saw them. In place, to avoid copying a large image. Broken
    # EXIF must not cost us the image: if reading it fails the pixels are left untouched (the
    # transposition itself happens only after the orientation was read successfully).
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - orientation is best effort
        return


def _to_rgb_array(img: Image.Image, subject: str) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _scale_to_uint8(np.asarray(img), mode)
        return np.ascontiguousarray(np.repeat(gray[:, :, np.newaxis], 3, axis=2))

    if mode == "1":
        img = img.convert("L")
    if img.has_transparency_data:
        # Transparent areas have no colour of their own; dermoscopy images are shot against a
        # white field, and a black (or arbitrary) fill would read as a dark lesion border.
        # So composite onto white instead of just dropping the alpha channel.
        try:
            rgba = img.convert("RGBA")
        except ValueError:
            raise InvalidImage(f"{subject} uses a colour format that cannot be converted to RGB.") from None
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    if img.mode != "RGB":
        try:
            # CMYK, YCbCr, LAB, HSV, RGBX, L, P...: Pillow's own conversions.
            img = img.convert("RGB")
        except ValueError:
            raise InvalidImage(f"{subject} uses a colour format that cannot be converted to RGB.") from None
    # np.array copies: np.asarray on a Pillow image is read-only, which would surprise callers.
    arr = np.array(img, dtype=np.uint8, order="C")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidImage(f"{subject} could not be converted to RGB.")
    return arr


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    # Pillow's own convert("L") *clips* high-bit-depth values at 255, which turns a normal
    # 16-bit image almost entirely white; scale by the value range instead.
    if mode.startswith("I;16"):
        return _scale_16bit(values)
    if mode == "I":
        # 32-bit integers: usually 16-bit data (legacy PNG/TIFF readers); otherwise stretch.
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi <= 0xFFFF:
            return _scale_16bit(values)
        return _stretch(values.astype(np.float64), lo, hi)
    # "F": floats, conventionally in [0, 1] or [0, 255]; anything else is stretched.
    floats = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(floats.min()), float(floats.max())
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(floats * 255.0).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return np.rint(floats).astype(np.uint8)
    return _stretch(floats, lo, hi)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    # Rounded integer division by 257 (65535 -> 255, 32768 -> 128) without a float copy.
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _unidentified(subject: str, data: bytes) -> str:
    head = bytes(data[:16])
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return f"{subject} looks like a {name} image but is damaged and could not be read."
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return f"{subject} looks like a WebP image but is damaged and could not be read."
    return f"{subject} is not a supported image ({_SUPPORTED_TEXT})."


def _damaged(subject: str, exc: Exception) -> str:
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return f"{subject} is incomplete (truncated) and could not be decoded."
    return f"{subject} is damaged and could not be decoded."


def _too_many_bytes(subject: str, size: int, limit: int) -> str:
    size_text, limit_text = _format_bytes(size), _format_bytes(limit)
    if size_text == limit_text:
        return f"{subject} is larger than the {limit_text} limit."
    return f"{subject} is {size_text}, larger than the {limit_text} limit."


def _format_bytes(n: int) -> str:
    mb = n / (1024 * 1024)
    if mb >= 0.1:
        return f"{mb:.3g} MB" if mb < 1000 else f"{mb:,.0f} MB"
    if n >= 1024:
        return f"{n / 1024:.3g} KB"
    return f"{n} bytes"


def _format_pixels(n: int) -> str:
    if n >= 100_000:
        return f"{n / 1_000_000:.3g} megapixels"
    return f"{n:,} pixels"


def _file_subject(path: object) -> str:
    try:
        name = os.path.basename(os.fsdecode(path))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _BYTES_SUBJECT
    # Keep the message on one line and short, whatever the file was called.
    name = "".join(ch if ch.isprintable() else "?" for ch in name)
    if not name:
        return _BYTES_SUBJECT
    if len(name) > _MAX_NAME_CHARS:
        name = name[: _MAX_NAME_CHARS - 1] + "…"
    return f'"{name}"'


def _check_limits(max_bytes: int, max_pixels: int) -> None:
    if max_bytes < 1 or max_pixels < 1:
        raise ValueError("max_bytes and max_pixels must be positive")
