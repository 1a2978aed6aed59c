"""Tests for dermascan.intake.images: untrusted bytes -> RGB uint8 array, or InvalidImage."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import warnings
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from cpu_probe import ThreadCpuTime
from PIL import Image, ImageFile, ImageOps

from dermascan.errors import InvalidImage
from dermascan.intake import images as intake
from dermascan.intake.images import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    SUPPORTED_FORMATS,
    read_image,
    read_image_file,
    sha256_hex,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HAM_IMAGES = SHARED_DATA / "ham10000_224" / "images"
NOT_SUPPORTED = "is not a supported image (JPEG, PNG, WebP, BMP or TIFF)."

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GRAY = (128, 128, 128)


# ---------------------------------------------------------------- helpers


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: list[bytes] | None) -> bytes:
    """A PNG built by hand; rows=None gives a header-only file (no IDAT)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if rows is not None:
        out += png_chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + row for row in rows)))
    return out + png_chunk(b"IEND", b"")


def gradient(width: int = 48, height: int = 32) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def assert_rgb_array(arr: np.ndarray, height: int, width: int) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8
    assert arr.shape == (height, width, 3)
    assert arr.flags.c_contiguous


def invalid_message(data: bytes, **kwargs) -> str:
    with pytest.raises(InvalidImage) as info:
        read_image(data, **kwargs)
    return str(info.value)


@cache
def _ham_listing() -> tuple[Path, ...]:
    return tuple(sorted(HAM_IMAGES.glob("*.jpg"))) if HAM_IMAGES.is_dir() else ()


def ham_jpegs(count: int) -> list[Path]:
    """The first `count` real HAM10000 JPEGs; skips the test when ../shared is absent."""
    if not HAM_IMAGES.is_dir():
        pytest.skip("HAM10000 images not available (../shared/data missing)")
    paths = list(_ham_listing()[:count])
    if len(paths) < count:
        pytest.skip("not enough HAM10000 images")
    return paths


@pytest.fixture
def ham_jpeg() -> Path:
    return ham_jpegs(1)[0]


# ---------------------------------------------------------------- API surface


def test_public_constants() -> None:
    assert DEFAULT_MAX_BYTES == 8 * 1024 * 1024
    assert DEFAULT_MAX_PIXELS == 100_000_000
    assert SUPPORTED_FORMATS == ("JPEG", "PNG", "WEBP", "BMP", "TIFF")


def test_sha256_hex() -> None:
    data = b"dermoscopy"
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert len(sha256_hex(b"")) == 64


def test_non_positive_limits_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        read_image(b"x", max_bytes=0)
    with pytest.raises(ValueError):
        read_image(b"x", max_pixels=0)


# ---------------------------------------------------------------- real images


def test_real_ham_jpegs_match_pillow() -> None:
    for path in ham_jpegs(3):
        data = path.read_bytes()
        arr = read_image(data)
        assert_rgb_array(arr, 224, 224)
        assert arr.flags.writeable
        with Image.open(path) as ref:
            np.testing.assert_array_equal(arr, np.asarray(ref.convert("RGB")))


def test_read_image_file_real_ham(ham_jpeg: Path) -> None:
    np.testing.assert_array_equal(read_image_file(ham_jpeg), read_image(ham_jpeg.read_bytes()))
    np.testing.assert_array_equal(read_image_file(str(ham_jpeg)), read_image(ham_jpeg.read_bytes()))


@pytest.mark.parametrize(
    ("fmt", "kwargs", "tolerance"),
    [
        ("JPEG", {"quality": 95}, 4.0),
        ("PNG", {}, 0.0),
        ("WEBP", {"lossless": True}, 0.0),
        ("WEBP", {"quality": 90}, 6.0),
        ("BMP", {}, 0.0),
        ("TIFF", {}, 0.0),
        ("TIFF", {"compression": "tiff_deflate"}, 0.0),
    ],
)
def test_round_trip_ham_image(ham_jpeg: Path, fmt: str, kwargs: dict, tolerance: float) -> None:
    with Image.open(ham_jpeg) as img:
        original = np.asarray(img.convert("RGB"))
        data = encode(img.convert("RGB"), fmt, **kwargs)
    arr = read_image(data)
    assert_rgb_array(arr, 224, 224)
    assert np.abs(arr.astype(int) - original.astype(int)).mean() <= tolerance


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_round_trip_synthetic(fmt: str) -> None:
    img = gradient()
    kwargs = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    arr = read_image(encode(img, fmt, **kwargs))
    assert_rgb_array(arr, 32, 48)
    diff = np.abs(arr.astype(int) - np.asarray(img).astype(int))
    if fmt == "JPEG":
        assert diff.mean() < 4
    else:
        assert diff.max() == 0


def test_format_is_decided_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "lesion.jpg"
    path.write_bytes(encode(gradient(), "PNG"))  # a PNG named .jpg is still a fine PNG
    np.testing.assert_array_equal(read_image_file(path), np.asarray(gradient()))


def test_accepts_bytearray_and_memoryview() -> None:
    data = encode(gradient(), "PNG")
    np.testing.assert_array_equal(read_image(bytearray(data)), read_image(data))
    np.testing.assert_array_equal(read_image(memoryview(data)), read_image(data))


def test_tiny_1x1_image_is_valid() -> None:
    arr = read_image(encode(Image.new("RGB", (1, 1), (12, 34, 56)), "PNG"))
    assert_rgb_array(arr, 1, 1)
    assert tuple(arr[0, 0]) == (12, 34, 56)


# ---------------------------------------------------------------- refusals: empty, size, type


def test_empty_bytes() -> None:
    assert invalid_message(b"") == "The file is empty."


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImage, match="is empty"):
        read_image_file(path)


def test_oversized_bytes_with_small_limit() -> None:
    data = encode(gradient(), "PNG")
    message = invalid_message(data, max_bytes=len(data) - 1)
    assert "limit" in message
    read_image(data, max_bytes=len(data))  # exactly at the limit is fine


def test_oversized_bytes_default_limit_states_mb() -> None:
    # Over 8 MB of bytes that start like a PNG: refused on size before any decoding.
    data = b"\x89PNG\r\n\x1a\n" + bytes(DEFAULT_MAX_BYTES)
    message = invalid_message(data)
    assert "8 MB" in message
    assert "limit" in message


def test_oversized_file_refused_from_stat(tmp_path: Path) -> None:
    path = tmp_path / "huge.tif"
    with path.open("wb") as fh:
        fh.truncate(2 * 1024**3)  # sparse 2 GB: must be refused without being read
    with ThreadCpuTime() as cpu, pytest.raises(InvalidImage) as info:
        read_image_file(path)
    assert cpu.seconds < 1.0
    message = str(info.value)
    assert "8 MB" in message
    assert '"huge.tif"' in message
    assert str(tmp_path) not in message


def test_text_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("Patient notes: lesion on left forearm, 6 mm.\n")
    with pytest.raises(InvalidImage) as info:
        read_image_file(path)
    assert str(info.value) == f'"notes.jpg" {NOT_SUPPORTED}'


def test_text_bytes_are_not_an_image() -> None:
    assert invalid_message(b"hello, world") == f"The file {NOT_SUPPORTED}"


def test_missing_file_names_only_the_basename(tmp_path: Path) -> None:
    path = tmp_path / "secret-dir" / "nope.jpg"
    with pytest.raises(InvalidImage) as info:
        read_image_file(path)
    assert str(info.value) == '"nope.jpg" could not be read.'


def test_directory_is_not_readable(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(InvalidImage, match="could not be read"):
        read_image_file(folder)


def test_odd_file_name_stays_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / ("x\nline2\t" + "a" * 200 + ".jpg")
    path.write_bytes(b"not an image")
    with pytest.raises(InvalidImage) as info:
        read_image_file(path)
    message = str(info.value)
    assert "\n" not in message and "\t" not in message
    assert len(message) < 200


@pytest.mark.parametrize("frames", [1, 3])
def test_gif_is_not_supported(frames: int) -> None:
    images = [Image.new("RGB", (16, 16), c) for c in (RED, BLUE, GRAY)][:frames]
    data = encode(images[0], "GIF", save_all=True, append_images=images[1:])
    assert invalid_message(data) == f"The file {NOT_SUPPORTED}"


def test_damaged_header_of_a_supported_format_is_worded_as_such() -> None:
    message = invalid_message(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert message == "The file looks like a PNG image but is damaged and could not be read."


# ---------------------------------------------------------------- truncated and damaged files


def _noisy(width: int = 64, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
def test_truncated_files(fmt: str) -> None:
    data = encode(_noisy(), fmt)
    for cut in (len(data) // 2, len(data) * 3 // 4, 40, 12):
        with pytest.raises(InvalidImage):
            read_image(data[:cut])


def test_truncated_real_jpeg_message(ham_jpeg: Path) -> None:
    data = ham_jpeg.read_bytes()
    message = invalid_message(data[: len(data) // 2])
    assert message == "The file is incomplete (truncated) and could not be decoded."


def test_truncated_png_message() -> None:
    data = encode(_noisy(), "PNG")
    assert "truncated" in invalid_message(data[: len(data) // 2])


def test_loading_truncated_images_is_not_enabled_globally() -> None:
    data = encode(_noisy(), "JPEG")
    with pytest.raises(InvalidImage):
        read_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_mutated_images_only_ever_raise_invalid_image() -> None:
    # A cheap deterministic fuzz: flip, overwrite and cut bytes of small valid files.
    rng = random.Random(1234)
    sources = [encode(gradient(16, 12), fmt) for fmt in SUPPORTED_FORMATS]
    sources.append(encode(Image.new("P", (8, 8)), "PNG", transparency=0))
    for source in sources:
        for _ in range(60):
            data = bytearray(source)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(1, len(data))]
            try:
                arr = read_image(bytes(data))
            except InvalidImage as exc:
                assert "\n" not in str(exc)
            else:
                assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3


def test_random_bytes_only_raise_invalid_image() -> None:
    rng = random.Random(99)
    for size in (1, 2, 7, 16, 100, 4096):
        with pytest.raises(InvalidImage):
            read_image(bytes(rng.randrange(256) for _ in range(size)))


# ---------------------------------------------------------------- pixel limits and bombs


def test_png_header_claiming_30000x30000_is_refused_quickly() -> None:
    data = raw_png(30000, 30000, 8, 2, rows=[b"\x00" * 90000])
    with ThreadCpuTime() as cpu, pytest.raises(InvalidImage) as info:
        read_image(data)
    assert cpu.seconds < 0.5
    assert "pixels" in str(info.value)


def test_png_bomb_refused_even_with_a_generous_limit() -> None:
    # Above twice Pillow's own limit, Pillow raises DecompressionBombError at open: mapped too.
    data = raw_png(30000, 30000, 8, 2, rows=None)
    with ThreadCpuTime() as cpu, pytest.raises(InvalidImage, match="too many pixels"):
        read_image(data, max_pixels=10**12)
    assert cpu.seconds < 0.5


def test_pixel_limit_checked_from_header_without_pillow_warning() -> None:
    # 90 MP is above Pillow's warning threshold (~89.5 MP) but below its error threshold:
    # our own limit must refuse it, and no DecompressionBombWarning may leak.
    data = raw_png(10000, 9000, 8, 2, rows=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadCpuTime() as cpu:
            message = invalid_message(data, max_pixels=50_000_000)
        assert cpu.seconds < 0.5
    assert message == "The file is too large: 10000 x 9000 pixels; the limit is 50 megapixels."
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_animated_webp_with_huge_canvas_is_refused_before_decoding() -> None:
    # A ~300-byte animated WebP whose canvas claims 12000 x 12000: Pillow only *warns* at
    # this size and decoding it would take seconds and ~2 GB. Refused from the header.
    frames = [Image.new("RGB", (10, 10), c) for c in (RED, BLUE)]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True))
    assert data[12:16] == b"VP8X"
    data[24:27] = (12000 - 1).to_bytes(3, "little")
    data[27:30] = (12000 - 1).to_bytes(3, "little")
    with ThreadCpuTime() as cpu:
        message = invalid_message(bytes(data))
    assert cpu.seconds < 0.5
    assert "12000 x 12000" in message


def test_real_image_over_a_small_pixel_limit(ham_jpeg: Path) -> None:
    message = invalid_message(ham_jpeg.read_bytes(), max_pixels=10_000)
    assert message == "The file is too large: 224 x 224 pixels; the limit is 10,000 pixels."
    assert read_image(ham_jpeg.read_bytes(), max_pixels=224 * 224).shape == (224, 224, 3)


def test_pillow_global_limit_is_not_mutated() -> None:
    limit_before = Image.MAX_IMAGE_PIXELS
    filters_before = list(warnings.filters)
    with pytest.raises(InvalidImage):
        read_image(raw_png(30000, 30000, 8, 2, rows=None))
    read_image(encode(gradient(), "PNG"))
    assert limit_before == Image.MAX_IMAGE_PIXELS
    assert list(warnings.filters) == filters_before


@pytest.mark.parametrize("size", [(0, 5), (5, 0)])
def test_zero_dimension_png(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidImage):
        read_image(raw_png(*size, 8, 2, rows=[]))


@pytest.mark.parametrize("size", [(0, 3), (4, 0)])
def test_zero_dimension_bmp(size: tuple[int, int]) -> None:
    data = bytearray(encode(Image.new("RGB", (4, 3), RED), "BMP"))
    struct.pack_into("<ii", data, 18, *size)
    with pytest.raises(InvalidImage):
        read_image(bytes(data))


def test_zero_dimension_guard_itself() -> None:
    with pytest.raises(InvalidImage, match="no pixels"):
        intake._check_size((0, 10), "The file", DEFAULT_MAX_PIXELS)


# ---------------------------------------------------------------- colour modes


def test_l_grayscale() -> None:
    img = Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8), "L")
    arr = read_image(encode(img, "PNG"))
    assert_rgb_array(arr, 1, 3)
    np.testing.assert_array_equal(arr[0], [[0, 0, 0], [77, 77, 77], [255, 255, 255]])


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_one_bit_images(fmt: str) -> None:
    img = Image.new("1", (2, 1))
    img.putpixel((1, 0), 1)
    arr = read_image(encode(img, fmt))
    np.testing.assert_array_equal(arr[0], [[0, 0, 0], [255, 255, 255]])


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    data = encode(img, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "CMYK"
    arr = read_image(data)
    assert_rgb_array(arr, 16, 16)
    assert np.abs(arr.astype(int) - np.array(RED)).max() <= 8


def test_16bit_grayscale_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=">u2")
    data = raw_png(4, 1, 16, 0, rows=[values.tobytes()])
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I;16")
    arr = read_image(data)
    assert_rgb_array(arr, 1, 4)
    assert arr[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_16bit_grayscale_png_via_pillow() -> None:
    img = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    arr = read_image(encode(img, "PNG"))
    assert arr[0, :, 0].tolist() == [0, 128, 255]


def test_16bit_grayscale_tiff() -> None:
    img = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    arr = read_image(encode(img, "TIFF"))
    assert arr[0, :, 1].tolist() == [0, 128, 255]


def test_16bit_rgb_png() -> None:
    pixels = np.array([[[65535, 32768, 0], [2570, 5140, 7710]]], dtype=">u2")
    arr = read_image(raw_png(2, 1, 16, 2, rows=[pixels.tobytes()]))
    assert_rgb_array(arr, 1, 2)
    np.testing.assert_allclose(arr[0].astype(int), [[255, 128, 0], [10, 20, 30]], atol=1)


def test_16bit_rgba_png_composited_on_white() -> None:
    pixels = np.array([[[65535, 0, 0, 65535], [0, 0, 0, 0]]], dtype=">u2")
    arr = read_image(raw_png(2, 1, 16, 6, rows=[pixels.tobytes()]))
    np.testing.assert_array_equal(arr[0], [RED, (255, 255, 255)])


def test_32bit_integer_tiff_is_stretched() -> None:
    img = Image.new("I", (3, 1))
    img.putdata([-1000, 0, 1_000_000])
    arr = read_image(encode(img, "TIFF"))
    assert arr[0, :, 0].tolist() == [0, 0, 255]


def test_32bit_integer_tiff_in_16bit_range() -> None:
    img = Image.new("I", (3, 1))
    img.putdata([0, 32768, 65535])
    arr = read_image(encode(img, "TIFF"))
    assert arr[0, :, 0].tolist() == [0, 128, 255]


def test_float_tiff() -> None:
    img = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    arr = read_image(encode(img, "TIFF"))
    assert arr[0, :, 0].tolist() == [0, 128, 255]


def test_palette_png_without_transparency() -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([*RED, *BLUE])
    img.putpixel((1, 0), 1)
    arr = read_image(encode(img, "PNG"))
    np.testing.assert_array_equal(arr[0], [RED, BLUE])


def test_palette_png_with_transparency_becomes_white() -> None:
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, *RED, *BLUE])  # index 0 is black... but transparent
    img.putdata([0, 1, 2])
    data = encode(img, "PNG", transparency=0)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "P" and "transparency" in check.info
    arr = read_image(data)
    np.testing.assert_array_equal(arr[0], [(255, 255, 255), RED, BLUE])


def test_rgba_png_composited_on_white() -> None:
    img = Image.new("RGBA", (3, 1))
    img.putdata([(255, 0, 0, 255), (0, 0, 0, 0), (0, 0, 0, 128)])
    arr = read_image(encode(img, "PNG"))
    assert_rgb_array(arr, 1, 3)
    assert tuple(arr[0, 0]) == RED
    assert tuple(arr[0, 1]) == (255, 255, 255)  # fully transparent black -> white, not black
    assert all(abs(int(v) - 127) <= 1 for v in arr[0, 2])


def test_rgba_webp_composited_on_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 255, 0))
    img.putpixel((0, 0), (0, 255, 0, 255))
    arr = read_image(encode(img, "WEBP", lossless=True))
    assert tuple(arr[0, 0]) == (0, 255, 0)
    assert tuple(arr[3, 3]) == (255, 255, 255)


def test_la_png_composited_on_white() -> None:
    img = Image.new("LA", (2, 1))
    img.putdata([(100, 255), (0, 0)])
    arr = read_image(encode(img, "PNG"))
    np.testing.assert_array_equal(arr[0], [(100, 100, 100), (255, 255, 255)])


def test_rgb_png_with_colour_key_transparency() -> None:
    img = Image.new("RGB", (2, 1), RED)
    img.putpixel((1, 0), BLUE)
    arr = read_image(encode(img, "PNG", transparency=BLUE))
    np.testing.assert_array_equal(arr[0], [RED, (255, 255, 255)])


# ---------------------------------------------------------------- EXIF orientation


def _corner_marked(width: int = 40, height: int = 20) -> Image.Image:
    img = Image.new("RGB", (width, height), GRAY)
    img.paste(RED, (0, 0, 6, 6))  # distinctive top-left corner
    return img


def _with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=95, exif=exif.tobytes())


def _is_red(pixel: np.ndarray) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


@pytest.mark.parametrize(
    ("orientation", "shape", "red_corner"),
    [
        (1, (20, 40, 3), (0, 0)),  # as stored
        (3, (20, 40, 3), (-1, -1)),  # 180 degrees: top-left -> bottom-right
        (6, (40, 20, 3), (0, -1)),  # display = rotate 90 clockwise: top-left -> top-right
        (8, (40, 20, 3), (-1, 0)),  # display = rotate 90 counter-clockwise: top-left -> bottom-left
    ],
)
def test_exif_orientation_is_honoured(orientation: int, shape: tuple, red_corner: tuple[int, int]) -> None:
    arr = read_image(_with_orientation(_corner_marked(), orientation))
    assert arr.shape == shape
    corners = {(0, 0), (0, -1), (-1, 0), (-1, -1)}
    assert _is_red(arr[red_corner])
    for corner in corners - {red_corner}:
        assert not _is_red(arr[corner])


def test_exif_orientation_in_png() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    arr = read_image(encode(_corner_marked(), "PNG", exif=exif.tobytes()))
    assert arr.shape == (40, 20, 3)
    assert tuple(arr[0, -1]) == RED


def test_corrupt_exif_still_decodes() -> None:
    # This EXIF block makes Pillow emit "Corrupt EXIF data" warnings; even when the process
    # turns warnings into errors, the image itself must still be read.
    data = encode(_corner_marked(), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arr = read_image(data)
    assert arr.shape == (20, 40, 3)
    data = encode(_corner_marked(), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12")
    assert read_image(data).shape == (20, 40, 3)


def test_exif_failure_falls_back_to_untransposed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise SyntaxError("broken EXIF")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    arr = read_image(_with_orientation(_corner_marked(), 6))
    assert arr.shape == (20, 40, 3)
    assert _is_red(arr[0, 0])


# ---------------------------------------------------------------- multi-frame files


def _two_frames() -> list[Image.Image]:
    return [Image.new("RGB", (12, 10), RED), Image.new("RGB", (12, 10), BLUE)]


@pytest.mark.parametrize(("fmt", "extra", "frames"), [
    ("WEBP", {"lossless": True, "duration": 100}, 2),  # animated WebP
    ("TIFF", {}, 3),  # multipage TIFF (the third page larger than the first)
    ("PNG", {"duration": 100}, 2),  # animated PNG
])
def test_multi_frame_files_give_their_first_frame(fmt: str, extra: dict, frames: int) -> None:
    first, second = _two_frames()
    more = [second, Image.new("RGB", (50, 50), GRAY)][: frames - 1]
    data = encode(first, fmt, save_all=True, append_images=more, **extra)
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == frames
    arr = read_image(data)
    assert_rgb_array(arr, 10, 12)
    assert (arr == RED).all()


# ---------------------------------------------------------------- message hygiene


def test_messages_are_single_safe_lines(tmp_path: Path) -> None:
    jpeg = encode(_noisy(), "JPEG")
    cases = [
        b"",
        b"plain text",
        jpeg[:200],
        jpeg[: len(jpeg) // 2],
        raw_png(30000, 30000, 8, 2, rows=None),
        b"\x89PNG\r\n\x1a\n" + b"\xff" * 64,
        encode(Image.new("RGB", (4, 4)), "GIF"),
    ]
    for data in cases:
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        for call in (lambda d=data: read_image(d), lambda p=path: read_image_file(p)):
            with pytest.raises(InvalidImage) as info:
                call()
            message = str(info.value)
            assert message and "\n" not in message
            assert str(tmp_path) not in message
            assert "Traceback" not in message and "BytesIO" not in message and "\\x" not in message
            assert message.endswith(".")
            assert len(message) < 160
            assert info.value.__cause__ is None
