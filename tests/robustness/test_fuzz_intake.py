"""Property-based fuzzing of image intake: any bytes in, an RGB uint8 array or ``InvalidImage`` out.

Never another exception, never a hang (every decode runs on a watchdog thread), never more than ``PER_EXAMPLE_S``
of the decoding thread's CPU time (which a busy machine does not inflate, unlike wall-clock time), never memory
beyond what the pixel limit allows (peak RSS, reset before each decode through ``/proc/self/clear_refs``).
Inputs: random bytes; real HAM10000 JPEGs and their PNG / WebP / TIFF re-encodings (in memory), truncated,
bit-flipped and overwritten; synthetic images of random size, every pixel mode Pillow can write in each
supported format, EXIF orientations and extra frames; forged headers claiming huge sizes (decompression bombs).

CI runs a fixed set of examples (``derandomize``); ``DERMASCAN_FUZZ=long`` runs 20x as many random ones.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib

import numpy as np
import pytest
from cpu_probe import ThreadCpuTime
from hypothesis import example, given
from hypothesis import strategies as st
from memory_probe import peak_bytes, reset_peak
from PIL import Image
from robust_helpers import HAM, fuzz_settings

from dermascan.errors import InvalidImage
from dermascan.intake.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image

# Float TIFFs with signalling NaNs make NumPy warn while they are scaled; harmless, and expected here.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")

PER_EXAMPLE_S = 10.0  # CPU seconds of the decoding thread: typical decodes take milliseconds, 100 MP about 3 s
HANG_S = 120.0  # wall-clock seconds after which the watchdog calls it a hang (a decode stuck, not a slow one)
MB = 1024 * 1024
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I;16", "I;16B", "I", "F")


def _writable() -> list[tuple[str, str]]:
    ok = []
    for fmt in FORMATS:
        for mode in MODES:
            try:
                Image.new(mode, (3, 2)).save(io.BytesIO(), format=fmt)
            except Exception:  # noqa: BLE001 - Pillow cannot write this mode in this format
                continue
            ok.append((fmt, mode))
    return ok


WRITABLE = _writable()


# -- measuring ---------------------------------------------------------------------------------------------

def decode(data: bytes, **limits):
    """``(array or InvalidImage, the decode's CPU seconds, peak RSS growth in bytes)``; other exceptions fail."""
    box: dict = {}

    def work():
        with ThreadCpuTime() as cpu:
            try:
                box["value"] = read_image(data, **limits)
            except BaseException as exc:  # noqa: BLE001 - judged below, on the test's thread
                box["error"] = exc
        box["seconds"] = cpu.seconds

    before = reset_peak()
    worker = threading.Thread(target=work, daemon=True, name="fuzz-decode")
    worker.start()
    worker.join(HANG_S)
    assert not worker.is_alive(), f"decoding hung for over {HANG_S:.0f} s ({len(data)} bytes)"
    grown = max(0, peak_bytes() - before)
    seconds = box["seconds"]
    assert seconds < PER_EXAMPLE_S, f"decoding {len(data)} bytes took {seconds:.1f} s of CPU"
    if "error" in box:
        exc = box["error"]
        if not isinstance(exc, InvalidImage):
            raise AssertionError(f"read_image raised {type(exc).__name__}, not InvalidImage") from exc
        message = str(exc)
        assert message and "\n" not in message and len(message) < 300
        assert "Traceback" not in message and "/" not in message
        return exc, seconds, grown
    return box["value"], seconds, grown


def assert_rgb(array, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    assert isinstance(array, np.ndarray)
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    assert array.shape[0] > 0 and array.shape[1] > 0 and array.shape[0] * array.shape[1] <= max_pixels
    assert array.flags.c_contiguous and array.flags.writeable


def claimed_pixels(data: bytes) -> int:
    """Pixels the header claims (0 when Pillow cannot even parse it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.size[0] * img.size[1]
    except Exception:  # noqa: BLE001
        return 0


def memory_allowance(data: bytes) -> int:
    # Pillow keeps 4 bytes a pixel, the RGB array 3, a mode conversion one more copy; plus fixed slack.
    return 64 * MB + 12 * min(claimed_pixels(data), DEFAULT_MAX_PIXELS)


# -- seed files --------------------------------------------------------------------------------------------

def _seeds() -> dict[str, list[bytes]]:
    if not HAM.is_dir():
        return {}
    paths = sorted((HAM / "images").glob("ISIC_*.jpg"))[:3]
    seeds: dict[str, list[bytes]] = {"JPEG": [p.read_bytes() for p in paths], "PNG": [], "WEBP": [], "TIFF": []}
    for p in paths:
        with Image.open(p) as img:
            rgb = img.convert("RGB")
        for fmt, kwargs in (("PNG", {}), ("WEBP", {"quality": 80}), ("TIFF", {"compression": "tiff_deflate"})):
            buf = io.BytesIO()
            rgb.save(buf, format=fmt, **kwargs)
            seeds[fmt].append(buf.getvalue())
    return seeds


SEEDS = _seeds()
needs_seeds = pytest.mark.skipif(not SEEDS, reason="../shared/data (HAM10000 images) is not present")


@st.composite
def mutated_real_files(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(draw(st.sampled_from(SEEDS[fmt])))
    how = draw(st.sampled_from(("truncate", "flip", "flip-header", "overwrite", "truncate+flip", "duplicate")))
    if "truncate" in how:
        data = data[: draw(st.integers(0, len(data) - 1))]
    if "flip" in how and data:
        reach = min(len(data), 1024) if how == "flip-header" else len(data)
        for _ in range(draw(st.integers(1, 24))):
            data[draw(st.integers(0, reach - 1))] ^= 1 << draw(st.integers(0, 7))
    if how == "overwrite" and data:
        start = draw(st.integers(0, len(data) - 1))
        data[start : start + 64] = draw(st.binary(min_size=1, max_size=64))
    if how == "duplicate" and data:  # a chunk/marker repeated: parsers must not loop on it
        start = draw(st.integers(0, len(data) - 1))
        piece = data[start : start + draw(st.integers(1, 512))]
        data[start:start] = piece * draw(st.integers(1, 8))
    return bytes(data)


@st.composite
def synthetic_images(draw) -> tuple[bytes, tuple[int, int], int]:
    """``(file bytes, (height, width) of the first frame as the viewer sees it, frames)``."""
    fmt, mode = draw(st.sampled_from(WRITABLE))
    width = draw(st.one_of(st.integers(1, 48), st.integers(1, 600)))
    height = draw(st.one_of(st.integers(1, 48), st.integers(1, 600)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    probe = Image.new(mode, (1, 1))
    # Raw random bytes in the mode's own layout: NaN/inf floats, negative 32-bit ints, full 16-bit range.
    row_bytes = (width + 7) // 8 if mode == "1" else width * len(probe.tobytes())
    img = Image.frombytes(mode, (width, height), rng.bytes(row_bytes * height))
    frames = draw(st.integers(1, 3)) if fmt in ("PNG", "WEBP", "TIFF") else 1
    orientation = draw(st.sampled_from((None, 1, 3, 6, 8, 5, 7))) if fmt in ("JPEG", "PNG", "WEBP", "TIFF") else None
    kwargs: dict = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    if frames > 1:
        kwargs.update(save_all=True, append_images=[img.transpose(Image.Transpose.ROTATE_180)] * (frames - 1))
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt, **kwargs)
    except (OSError, ValueError, TypeError):
        buf = io.BytesIO()
        img.save(buf, format=fmt)  # this writer takes no EXIF / extra frames for this mode
        orientation, frames = None, 1
    shape = (width, height) if orientation in (5, 6, 7, 8) else (height, width)
    return buf.getvalue(), shape, frames


# -- the properties ----------------------------------------------------------------------------------------

@fuzz_settings(300)
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\x89PNG\r\n\x1a\n")
@example(b"\xff\xd8\xff")
@example(b"RIFF\x00\x00\x00\x00WEBPVP8X")
@example(b"II*\x00" + b"\xff" * 64)
@example(b"BM" + b"\xff" * 64)
def test_random_bytes_are_an_image_or_invalid(data):
    result, _, grown = decode(data)
    if not isinstance(result, InvalidImage):
        assert_rgb(result)
    assert grown < memory_allowance(data)


@needs_seeds
@fuzz_settings(400)
@given(mutated_real_files())
def test_truncated_and_bit_flipped_real_files(data):
    result, _, grown = decode(data)
    if not isinstance(result, InvalidImage):
        assert_rgb(result)
    assert grown < memory_allowance(data), f"{grown / MB:.0f} MB for {len(data)} bytes"


@fuzz_settings(300)
@given(synthetic_images(), st.booleans(), st.data())
def test_every_mode_size_and_orientation_decodes_to_rgb(made, damage, data):
    blob, shape, _ = made
    if not damage:
        result, _, _ = decode(blob)
        assert not isinstance(result, InvalidImage), f"a valid {len(blob)}-byte image was refused: {result}"
        assert_rgb(result)
        assert result.shape[:2] == shape
        return
    flipped = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 8))):
        flipped[data.draw(st.integers(0, len(flipped) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    result, _, grown = decode(bytes(flipped))
    if not isinstance(result, InvalidImage):
        assert_rgb(result)
    assert grown < memory_allowance(bytes(flipped))


# -- decompression bombs -----------------------------------------------------------------------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, idat: bytes = b"", colour_type: int = 2, depth: int = 8) -> bytes:
    """A well-formed PNG header (valid CRCs) for any size, with whatever image data follows."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A baseline JPEG whose frame header claims ``width x height`` and whose scan is one block."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 90)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + info + b"\x00" * 64


def tiff_claiming(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    def entry(tag, kind, count, value):
        return struct.pack("<HHI", tag, kind, count) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))

    ifd = struct.pack("<H", len(entries)) + b"".join(entry(*e) for e in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 16


def webp_claiming(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


FORGERS = {"PNG": png_claiming, "JPEG": jpeg_claiming, "BMP": bmp_claiming, "TIFF": tiff_claiming,
           "WEBP": webp_claiming}
MAX_SIDE = {"PNG": 2**31 - 1, "JPEG": 65535, "BMP": 2**31 - 1, "TIFF": 2**32 - 1, "WEBP": 2**24}


@fuzz_settings(100)
@given(st.sampled_from(sorted(FORGERS)), st.data())
def test_headers_claiming_huge_sizes_are_refused_fast_and_small(fmt, data):
    side = MAX_SIDE[fmt]
    width = data.draw(st.integers(10_001, side), label="width")
    height = data.draw(st.integers(max(1, DEFAULT_MAX_PIXELS // width + 1), side), label="height")
    blob = FORGERS[fmt](width, height)
    result, seconds, grown = decode(blob)
    assert isinstance(result, InvalidImage), f"{fmt} claiming {width}x{height} was decoded"
    assert seconds < 1.0 and grown < 16 * MB


SMALL_LIMIT = 4_000_000


@fuzz_settings(60)
@given(st.sampled_from(sorted(FORGERS)), st.data())
def test_headers_just_under_the_limit_with_no_pixel_data(fmt, data):
    # Under the pixel limit, so Pillow starts decoding although the pixel data is missing. PNG, BMP, TIFF
    # and WebP then fail; libjpeg fills a JPEG's missing scan data with grey and Pillow accepts it. Either
    # way: no other exception, no hang, and memory in proportion to the (here 4 MP) limit.
    width = data.draw(st.integers(1_000, min(MAX_SIDE[fmt], 40_000)), label="width")
    height = data.draw(st.integers(max(1, SMALL_LIMIT // (2 * width)), max(1, SMALL_LIMIT // width)), label="height")
    blob = FORGERS[fmt](width, height)
    result, _, grown = decode(blob, max_pixels=SMALL_LIMIT)
    if fmt == "JPEG":
        assert_rgb(result, SMALL_LIMIT)
    else:
        assert isinstance(result, InvalidImage), f"{fmt} {width}x{height} with no pixel data was decoded"
    assert grown < 12 * SMALL_LIMIT + 32 * MB, f"{grown / MB:.0f} MB for a {len(blob)}-byte {fmt}"


def test_worst_case_at_the_default_limit_is_a_632_byte_jpeg_costing_about_1_gb():
    # Pins the documented worst case (docs/robustness.md): a tiny JPEG whose header claims just under
    # 100 MP decodes to a grey 100 MP array. Bounded by the pixel limit, not by the upload size.
    blob = jpeg_claiming(10_000, 9_999)
    assert len(blob) < 1024
    result, seconds, grown = decode(blob)
    assert_rgb(result)
    assert grown < 12 * DEFAULT_MAX_PIXELS + 64 * MB, f"{grown / MB:.0f} MB"


@pytest.mark.parametrize("limit", [1_000_000, 4_000_000])
def test_a_real_compression_bomb_costs_memory_in_proportion_to_the_pixel_limit(limit):
    # A genuine bomb: every pixel present, all zeros, ~1000:1 deflate. Just over the limit it is refused
    # from the header; just under it the memory is bounded by the limit (12 bytes a pixel at most).
    side = int(limit**0.5)
    raw = (b"\x00" + b"\x00" * (3 * side)) * side
    under = png_claiming(side, side, zlib.compress(raw, 9))
    over = png_claiming(side + 1, side + 1, zlib.compress(raw, 9))
    assert len(under) < limit // 100  # far smaller than what it decodes to
    refused, seconds, grown = decode(over, max_pixels=limit)
    assert isinstance(refused, InvalidImage) and "too large" in str(refused)
    assert seconds < 1.0 and grown < 16 * MB
    decoded, _, grown = decode(under, max_pixels=limit)
    assert_rgb(decoded, limit)
    assert grown < 12 * limit + 32 * MB, f"{grown / MB:.0f} MB for a {limit / 1e6:.0f} MP limit"


def test_size_limit_is_checked_before_anything_is_parsed():
    blob = png_claiming(10, 10) + b"\x00" * DEFAULT_MAX_BYTES
    result, seconds, grown = decode(blob)
    assert isinstance(result, InvalidImage) and "limit" in str(result)
    assert seconds < 1.0 and grown < 16 * MB
