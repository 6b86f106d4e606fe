"""Disk images: sizes, creation, MBR/GPT parsing, file-system detection, the demo card."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import sys
import uuid
import zlib
from pathlib import Path

import pytest
from pyfatfs.PyFat import PyFat
from pyfatfs.PyFatFS import PyFatFS

from sdmodel.capacity import CardType
from sdmodel.errors import ImageError, SizeError
from sdmodel.images import (
    DEMO_IMAGE_SIZE,
    FAT_PARTITION_ALIGN,
    PartitionScheme,
    create_image,
    data_dir,
    demo_image_path,
    describe_image,
    detect_filesystem,
    ensure_demo_image,
    format_size,
    parse_size,
    read_image_info,
    resolve_image,
)

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4


# --- sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512", 512),
        ("512B", 512),
        ("1KB", 1000),
        ("1KiB", KiB),
        ("64MiB", 64 * MiB),
        ("64 MiB", 64 * MiB),
        ("64mib", 64 * MiB),
        ("2GB", 2_000_000_000),
        ("32GiB", 32 * GiB),
        ("1.5GiB", 3 * GiB // 2),
        ("2TiB", 2 * TiB),
        ("1TB", 10**12),
    ],
)
def test_parse_size_reads_decimal_and_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("64XB", "unknown size unit 'XB'"),
        ("64M", "unknown size unit 'M'"),
        ("", "cannot read size"),
        ("-5MiB", "cannot read size"),
        ("MiB", "cannot read size"),
        ("1.3B", "not a whole number of bytes"),
    ],
)
def test_parse_size_rejects_with_one_line_message(text: str, message: str) -> None:
    with pytest.raises(SizeError, match=message) as caught:
        parse_size(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (512, "512 B"),
        (64 * MiB, "64 MiB"),
        (3 * GiB // 2, "1.5 GiB"),
        (2 * GiB - 512, "2 GiB"),
        (2 * TiB, "2 TiB"),
    ],
)
def test_format_size_uses_largest_binary_unit(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("size", "capacity", "warned"),
    [
        (64 * MiB, 64 * MiB, False),
        (99_999_744, 99_975_168, True),  # CSD v1.0 C_SIZE 3050, MULT 4: a tail is lost
        (4 * GiB + 512, 4 * GiB, True),  # CSD v2.0 counts whole 512 KiB units
    ],
)
def test_capacity_is_what_the_csd_announces(
    tmp_path: Path, size: int, capacity: int, warned: bool
) -> None:
    info = read_image_info(create_image(tmp_path / "c.img", size))
    assert info.capacity == capacity
    assert bool(info.warnings) == warned
    if warned:
        assert f"the last {size - capacity} bytes are not reachable" in info.warnings[0]


# --- creating images -----------------------------------------------------------------


def test_new_image_is_sparse_and_exact(tmp_path: Path) -> None:
    path = create_image(tmp_path / "card.img", 64 * GiB)
    st = path.stat()
    assert st.st_size == 64 * GiB
    assert st.st_blocks * 512 < 1 * MiB
    info = read_image_info(path)
    assert (info.card_type, info.scheme, info.partitions) == (
        CardType.SDXC,
        PartitionScheme.NONE,
        (),
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("file", "already exists"),
        ("dir", "is a directory"),
        ("no-parent", "does not exist"),
    ],
)
def test_create_image_refuses_unsafe_paths(tmp_path: Path, setup: str, message: str) -> None:
    target = tmp_path / "card.img"
    if setup == "file":
        target.write_bytes(b"keep me")
    elif setup == "dir":
        target.mkdir()
    else:
        target = tmp_path / "missing" / "card.img"
    with pytest.raises(ImageError, match=message):
        create_image(target, 1 * MiB)
    if setup == "file":
        assert target.read_bytes() == b"keep me"


def test_force_replaces_an_existing_image(tmp_path: Path) -> None:
    target = tmp_path / "card.img"
    target.write_bytes(b"old")
    create_image(target, 1 * MiB, force=True)
    assert target.stat().st_size == 1 * MiB
    assert [p.name for p in tmp_path.iterdir()] == ["card.img"]  # no temporary left


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (0, "empty"),
        (1000, "not a multiple of 512"),
        (4 * TiB, "larger than 2 TiB"),
    ],
)
def test_create_image_validates_card_size(tmp_path: Path, size: int, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        create_image(tmp_path / "card.img", size)
    assert not (tmp_path / "card.img").exists()


@pytest.mark.parametrize(
    ("size", "message"), [(4 * MiB, "at least 8 MiB"), (64 * GiB, "exFAT")]
)
def test_fat_image_size_limits(tmp_path: Path, size: int, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        create_image(tmp_path / "card.img", size, fat=True)


@pytest.mark.parametrize(
    ("size", "fs", "mbr_type"),
    [
        (10 * MiB, "FAT12", "0x01"),
        (24 * MiB, "FAT16", "0x04"),
        (64 * MiB, "FAT16", "0x06"),
        (4 * GiB, "FAT32", "0x0c"),
    ],
)
def test_fat_image_has_one_aligned_partition(
    tmp_path: Path, size: int, fs: str, mbr_type: str
) -> None:
    info = read_image_info(create_image(tmp_path / "card.img", size, fat=True))
    assert info.scheme is PartitionScheme.MBR
    (part,) = info.partitions
    assert (part.index, part.type_id, part.start, part.size) == (
        1,
        mbr_type,
        FAT_PARTITION_ALIGN,
        size - FAT_PARTITION_ALIGN,
    )
    assert (part.filesystem, part.label) == (fs, "SDSCOPE")
    with (tmp_path / "card.img").open("rb") as f:
        f.seek(FAT_PARTITION_ALIGN + 28)  # BPB_HiddSec = sectors before the volume
        assert struct.unpack("<I", f.read(4))[0] == FAT_PARTITION_ALIGN // 512


def test_fat_image_files_read_back_with_pyfatfs(tmp_path: Path) -> None:
    path = create_image(tmp_path / "card.img", 64 * MiB, fat=True)
    fs = PyFatFS(str(path), offset=FAT_PARTITION_ALIGN, read_only=True)
    try:
        assert sorted(fs.listdir("/")) == ["DATA", "README.TXT", "SENSORS.CSV"]
        assert "sdscope demo card" in fs.readtext("/README.TXT")
        rows = list(csv.DictReader(io.StringIO(fs.readtext("/SENSORS.CSV"))))
        pattern = fs.readbytes("/DATA/PATTERN.BIN")
    finally:
        fs.close()
    assert len(rows) == 24
    assert rows[15]["temperature_c"] == "22.0"  # the afternoon peak
    assert len(pattern) == 8 * 512
    assert pattern[3 * 512 : 3 * 512 + 18] == b"SDSCOPE BLOCK 0003"


# --- reading partition tables ----------------------------------------------------------


def _mbr_entry(ptype: int, start: int, count: int, bootable: bool = False) -> bytes:
    return bytes([0x80 if bootable else 0, 0, 0, 0, ptype, 0, 0, 0]) + struct.pack(
        "<II", start, count
    )


def _write_mbr(path: Path, size: int, entries: list[bytes], signature: int = 0xCAFE) -> None:
    sector = bytearray(512)
    struct.pack_into("<I", sector, 440, signature)
    for i, entry in enumerate(entries):
        sector[446 + 16 * i : 462 + 16 * i] = entry
    sector[510:512] = b"\x55\xaa"
    with path.open("wb") as f:
        f.truncate(size)
        f.write(sector)


def _ext4_superblock(label: bytes) -> bytes:
    volume = bytearray(2048)
    struct.pack_into("<H", volume, 1024 + 0x38, 0xEF53)
    struct.pack_into("<II", volume, 1024 + 0x5C, 0x4, 0x40 | 0x200)  # journal; extents
    volume[1024 + 0x78 : 1024 + 0x78 + len(label)] = label
    return bytes(volume)


def test_mbr_entries_are_listed_with_their_file_systems(tmp_path: Path) -> None:
    path = tmp_path / "pi.img"
    _write_mbr(
        path,
        16 * MiB,
        [_mbr_entry(0x0C, 2048, 8192, bootable=True), _mbr_entry(0x83, 10240, 22528)],
        signature=0x1234ABCD,
    )
    with path.open("r+b") as f:
        f.seek(10240 * 512)
        f.write(_ext4_superblock(b"rootfs"))
    info = read_image_info(path)
    assert info.scheme is PartitionScheme.MBR
    assert info.disk_signature == 0x1234ABCD
    boot, root = info.partitions
    assert (boot.index, boot.type_id, boot.type_name, boot.bootable) == (
        1, "0x0c", "FAT32 (LBA)", True
    )
    assert (boot.start, boot.size, boot.filesystem) == (1 * MiB, 4 * MiB, None)
    assert (root.index, root.type_name, root.start, root.size) == (2, "Linux", 5 * MiB, 11 * MiB)
    assert (root.filesystem, root.label) == ("ext4", "rootfs")
    assert info.warnings == ()


def test_partition_past_the_end_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.img"
    _write_mbr(path, 1 * MiB, [_mbr_entry(0x83, 1024, 4096)])
    (warning,) = read_image_info(path).warnings
    assert "partition 1 ends beyond the end of the image" in warning


def test_bad_status_byte_means_no_partition_table(tmp_path: Path) -> None:
    path = tmp_path / "junk.img"
    entry = bytearray(_mbr_entry(0x83, 2048, 100))
    entry[0] = 0x12
    _write_mbr(path, 1 * MiB, [bytes(entry)])
    assert read_image_info(path).scheme is PartitionScheme.NONE


def _write_gpt(path: Path, size: int, parts: list[tuple[str, int, int, str]]) -> uuid.UUID:
    """A protective MBR, a primary GPT header at LBA 1 and 128 entries at LBA 2."""
    sectors = size // 512
    _write_mbr(path, size, [_mbr_entry(0xEE, 1, sectors - 1)], signature=0)
    entries = bytearray(128 * 128)
    for i, (type_guid, first, last, name) in enumerate(parts):
        entry = uuid.UUID(type_guid).bytes_le + uuid.uuid4().bytes_le
        entry += struct.pack("<QQQ", first, last, 0) + name.encode("utf-16-le").ljust(72, b"\0")
        entries[i * 128 : (i + 1) * 128] = entry
    disk = uuid.uuid4()
    header = bytearray(512)
    struct.pack_into(
        "<8sIIIIQQQQ16sQIII", header, 0, b"EFI PART", 0x00010000, 92, 0, 0,
        1, sectors - 1, 34, sectors - 34, disk.bytes_le, 2, 128, 128, zlib.crc32(entries),
    )
    struct.pack_into("<I", header, 16, zlib.crc32(header[:92]))
    with path.open("r+b") as f:
        f.seek(512)
        f.write(header)
        f.write(entries)
    return disk


EFI = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
LINUX = "0fc63daf-8483-4772-8e79-3d69d8477de4"


def test_gpt_header_and_named_entries(tmp_path: Path) -> None:
    path = tmp_path / "gpt.img"
    parts = [(EFI, 2048, 4095, "EFI system"), (LINUX, 4096, 16349, "root")]
    disk = _write_gpt(path, 8 * MiB, parts)
    info = read_image_info(path)
    assert info.scheme is PartitionScheme.GPT
    assert info.gpt is not None
    assert (info.gpt.disk_guid, info.gpt.revision, info.gpt.entry_count) == (str(disk), "1.0", 128)
    assert (info.gpt.first_usable_lba, info.gpt.entries_lba) == (34, 2)
    assert info.gpt.header_crc_ok and info.gpt.entries_crc_ok
    assert [(p.index, p.type_name, p.name, p.start, p.size) for p in info.partitions] == [
        (1, "EFI system", "EFI system", 1 * MiB, 1 * MiB),
        (2, "Linux filesystem", "root", 2 * MiB, (16350 - 4096) * 512),
    ]
    assert info.warnings == ()
    title, text = describe_image(info)[-1]
    assert title == "GPT header"
    assert text.endswith("128 entries of 128 bytes at LBA 2, CRCs ok")


def test_gpt_with_wrong_crc_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "gpt.img"
    _write_gpt(path, 8 * MiB, [(LINUX, 2048, 4095, "data")])
    with path.open("r+b") as f:
        f.seek(2 * 512 + 56)
        f.write("DATA".encode("utf-16-le"))  # rename behind the CRC's back
    info = read_image_info(path)
    assert info.gpt is not None and not info.gpt.entries_crc_ok
    assert info.partitions[0].name == "DATA"
    assert info.warnings == ("GPT header or entry array CRC32 does not match",)


def test_whole_card_fat_without_partition_table(tmp_path: Path) -> None:
    path = tmp_path / "floppy.img"
    path.write_bytes(b"")
    os.truncate(path, 32 * MiB)
    fat = PyFat()
    fat.mkfs(str(path), PyFat.FAT_TYPE_FAT16, size=32 * MiB, label="WHOLE")
    fat.close()
    info = read_image_info(path)
    assert (info.scheme, info.filesystem, info.label) == (PartitionScheme.NONE, "FAT16", "WHOLE")


@pytest.mark.parametrize(
    ("oem", "kind"), [(b"EXFAT   ", "exFAT"), (b"NTFS    ", "NTFS")]
)
def test_detect_filesystem_by_oem_name(oem: bytes, kind: str) -> None:
    boot = bytearray(512)
    boot[0:3] = b"\xeb\x76\x90"
    boot[3:11] = oem
    boot[510:512] = b"\x55\xaa"
    assert detect_filesystem(bytes(boot)) == (kind, None)


def test_blank_volume_has_no_filesystem() -> None:
    assert detect_filesystem(bytes(2048)) == (None, None)


@pytest.mark.parametrize(
    ("setup", "message"),
    [("missing", "no such image"), ("dir", "is a directory"), ("odd", "not a multiple of 512")],
)
def test_read_image_info_errors_are_one_line(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "x.img"
    if setup == "dir":
        path.mkdir()
    elif setup == "odd":
        path.write_bytes(bytes(1000))
    with pytest.raises(ImageError, match=message) as caught:
        read_image_info(path)
    assert "\n" not in str(caught.value)


def test_read_only_file_is_a_write_protected_card(tmp_path: Path) -> None:
    path = create_image(tmp_path / "ro.img", 1 * MiB)
    path.chmod(0o444)
    if os.access(path, os.W_OK):
        pytest.skip("running as a user who can write read-only files (root)")
    assert read_image_info(path).read_only


def test_image_info_is_json_ready(tmp_path: Path) -> None:
    info = read_image_info(create_image(tmp_path / "c.img", 16 * MiB, fat=True))
    data = json.loads(json.dumps(info.to_dict()))
    assert data["card_type"] == "SDSC"
    assert data["scheme"] == "mbr"
    assert data["partitions"][0]["filesystem"] == "FAT12"


# --- the demo card -------------------------------------------------------------------


def test_demo_card_is_created_once_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDSCOPE_DATA_DIR", str(tmp_path / "data"))
    path = ensure_demo_image()
    assert path == demo_image_path() == tmp_path / "data" / path.name
    assert path.stat().st_size == DEMO_IMAGE_SIZE
    inode = path.stat().st_ino
    assert ensure_demo_image().stat().st_ino == inode
    info = read_image_info(resolve_image("demo"))
    assert [p.filesystem for p in info.partitions] == ["FAT16"]


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is the Linux convention")
def test_data_dir_defaults_to_the_platform_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SDSCOPE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "sdscope"


@pytest.mark.parametrize(("name", "message"), [("nope.img", "no such image"), ("", "directory")])
def test_resolve_image_needs_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageError, match=message):
        resolve_image(tmp_path / name if name else tmp_path)
