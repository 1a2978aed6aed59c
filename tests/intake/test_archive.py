"""Zip intake: real images inside, folders/hidden/__MACOSX skipped, corrupt and bomb-like members refused."""

from __future__ import annotations

import io
import zipfile

import pytest
from shared_data import ham_sample, needs_shared
from tiny_models import load_tiny_lesion_model

from dermascan.errors import InvalidImage
from dermascan.inference.batch import run_batch
from dermascan.intake.archive import ArchiveError, ArchiveLimits, base_name, iter_zip_images, open_zip
from dermascan.render.text import display_text


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def real_images() -> dict[str, bytes]:
    """Four real HAM10000 JPEGs under a folder name, as a clinician's export would have them."""
    return {f"case 7/{p.name}": p.read_bytes() for p in ham_sample(4)}


@pytest.fixture(scope="module")
def tiny_lesion_model(tmp_path_factory):
    """The shared tiny real CNN, loaded through the engine."""
    return load_tiny_lesion_model(tmp_path_factory.mktemp("model"))


@needs_shared
def test_real_images_are_listed_by_base_name_and_junk_is_skipped(real_images):
    data = make_zip({**real_images, "case 7/": b"", "__MACOSX/case 7/._a.jpg": b"x", ".DS_Store": b"x",
                     "case 7/.hidden.jpg": b"x", "notes.txt": b"hello"})
    listing = open_zip(data)
    assert [m.name for m in listing.members] == [name.split("/")[-1] for name in real_images]
    assert listing.skipped == 5 and listing.refused == []
    assert [m.read() for m in listing.members] == list(real_images.values())


@needs_shared
def test_corrupt_member_becomes_one_error_row_and_the_rest_are_analysed(real_images, tiny_lesion_model):
    data = make_zip({**real_images, "broken.jpg": b"\xff\xd8\xff not a jpeg at all"})
    listing = open_zip(data)
    items = list(run_batch(tiny_lesion_model, [(m.name, m.read) for m in listing.members], with_cam=False))
    assert [i.error is None for i in items] == [True] * len(real_images) + [False]
    assert items[-1].name == "broken.jpg"


def test_bomb_like_member_is_refused_without_inflating_it():
    bomb = b"\0" * (3 * 1024 * 1024)  # compresses to a few kB
    data = make_zip({"bomb.png": bomb, "ok.png": b"\x89PNG small"})
    listing = open_zip(data, ArchiveLimits(max_member_bytes=1024 * 1024))
    assert [m.name for m in listing.members] == ["ok.png"]
    assert listing.refused[0][0] == "bomb.png" and "larger than 1 MB" in listing.refused[0][1]


def test_a_member_whose_header_understates_its_size_is_refused_while_reading():
    listing = open_zip(make_zip({"liar.png": b"\0" * (2 * 1024 * 1024)}))
    member = listing.members[0]
    real_size, member.info.file_size = member.info.file_size, 100  # as a crafted central directory would claim
    with pytest.raises(InvalidImage, match="damaged"):  # zipfile stops at the claimed size; the CRC then fails
        member.read()
    member.info.file_size = real_size
    capped = type(member)(member.name, member.info, member.archive, 10)
    with pytest.raises(InvalidImage, match="larger than"):  # and we never read past our own limit
        capped.read()


def test_damaged_member_data_is_an_invalid_image():
    data = bytearray(make_zip({"a.png": b"A" * 5000}))
    start = data.find(b"a.png") + len(b"a.png")
    data[start + 2 : start + 10] = b"\xff" * 8  # scribble over the compressed stream
    with pytest.raises(InvalidImage, match="damaged"):
        open_zip(bytes(data)).members[0].read()


def test_too_many_members_or_too_much_data_refuses_the_archive():
    many = make_zip({f"{i}.png": b"x" for i in range(11)})
    with pytest.raises(ArchiveError, match="11 entries"):
        open_zip(many, ArchiveLimits(max_members=10))
    big = make_zip({f"{i}.png": b"\0" * 600_000 for i in range(4)})
    with pytest.raises(ArchiveError, match="more than 1 MB"):
        open_zip(big, ArchiveLimits(max_total_bytes=1024 * 1024))


def test_not_a_zip_is_an_archive_error():
    with pytest.raises(ArchiveError, match="not a readable .zip"):
        open_zip(b"PK but not really")


def test_iter_zip_images_skips_refused_members_and_names_are_base_names():
    data = make_zip({"a/b/c.png": b"one", "d\\e.png": b"two", "big.png": b"\0" * 4096})
    assert list(iter_zip_images(data, ArchiveLimits(max_member_bytes=100))) == [("c.png", b"one"), ("e.png", b"two")]
    assert base_name("x/y/z.jpg") == "z.jpg"


def zip_with_raw_name(raw: bytes, data: bytes, *, utf8_flag: bool) -> bytes:
    """A zip whose one entry's name is exactly the bytes ``raw``, with or without the UTF-8 flag (0x800).

    zipfile always flags a non-ASCII name it writes, so an ASCII placeholder of the same length is
    written and then replaced in the local header and the central directory, as other tools write it.
    """
    placeholder = "n" * (len(raw) - 4) + raw[-4:].decode("ascii")
    out = bytearray(make_zip({placeholder: data}))
    assert out.count(placeholder.encode()) == 2
    out = bytearray(bytes(out).replace(placeholder.encode(), raw))
    if utf8_flag:
        for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = out.index(signature) + flag_at
            out[at : at + 2] = (int.from_bytes(out[at : at + 2], "little") | 0x800).to_bytes(2, "little")
    return bytes(out)


@pytest.mark.parametrize(("raw", "utf8_flag", "shown"), [
    ("Müller_Łódź_é.jpg".encode(), False, "Müller_Łódź_é.jpg"),  # UTF-8 without the flag (many tools)
    ("Müller_Łódź_é.jpg".encode(), True, "Müller_Łódź_é.jpg"),  # UTF-8 with the flag
    ("Müller_é_ß.jpg".encode("cp437"), False, "Müller_é_ß.jpg"),  # a genuine cp437 name (old DOS/Windows tools)
    ("dossier/patiënt/lésion.png".encode(), False, "lésion.png"),  # still a base name only
])
def test_entry_names_are_decoded_as_their_authors_wrote_them(raw, utf8_flag, shown):
    listing = open_zip(zip_with_raw_name(raw, b"\x89PNG not really", utf8_flag=utf8_flag))
    assert [m.name for m in listing.members] == [shown]
    assert listing.members[0].read() == b"\x89PNG not really"


def test_decoded_names_keep_the_entry_safety_rules():
    entries = {"a/.hidden_é.jpg": b"x", "__MACOSX/é.jpg": b"x", "é/": b"", "note_é.txt": b"x", "ok\x1b[31m.jpg": b"x"}
    listing = open_zip(make_zip(entries))
    assert listing.skipped == 4
    assert [m.name for m in listing.members] == ["ok\x1b[31m.jpg"]  # recorded as written
    assert display_text(listing.members[0].name) == "ok[31m.jpg"  # and never shown raw
