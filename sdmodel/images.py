"""Disk images that back a card: sizes, creation, partition tables, the built-in demo card.

An image is a raw file; the card type follows from its size (``sdmodel.capacity``). This
module reads what a host would find on it (MBR or GPT partition table, FAT/exFAT/ext
file systems), creates sparse blank or FAT-formatted images laid out like a factory-
formatted card (one partition aligned to 4 MiB), and keeps the built-in demo card in the
user's data directory (``SDSCOPE_DATA_DIR`` overrides it).

Only small headers are read here (a few sectors); card I/O goes through ``sdmodel.storage``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import struct
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sdmodel.capacity import BLOCK_SIZE, SDSC_MAX_BYTES, CardType, card_type_for_size
from sdmodel.errors import ImageError
from sdmodel.registers import build_csd
from sdmodel.storage.image import writable
from sdmodel.units import format_size, parse_size

__all__ = [
    "DEMO_IMAGE_NAME",
    "DEMO_IMAGE_SIZE",
    "DEMO_KEYWORD",
    "FAT_PARTITION_ALIGN",
    "PARTITION_COLUMNS",
    "GptHeader",
    "ImageInfo",
    "Partition",
    "PartitionScheme",
    "create_image",
    "data_dir",
    "demo_image_path",
    "describe_filesystem",
    "describe_image",
    "describe_table",
    "detect_filesystem",
    "ensure_demo_image",
    "format_size",
    "parse_size",
    "read_image_info",
    "resolve_image",
]




# --- partition tables ----------------------------------------------------------------


class PartitionScheme(StrEnum):
    NONE = "none"  # no table: empty, or a file system on the whole card ("superfloppy")
    MBR = "mbr"
    GPT = "gpt"


# MBR partition type bytes seen on SD cards and their neighbours.
MBR_TYPES: dict[int, str] = {
    0x00: "empty",
    0x01: "FAT12",
    0x04: "FAT16 <32M",
    0x05: "extended",
    0x06: "FAT16",
    0x07: "NTFS/exFAT",
    0x0B: "FAT32 (CHS)",
    0x0C: "FAT32 (LBA)",
    0x0E: "FAT16 (LBA)",
    0x0F: "extended (LBA)",
    0x82: "Linux swap",
    0x83: "Linux",
    0x8E: "Linux LVM",
    0xDA: "non-FS data",
    0xEE: "GPT protective",
    0xEF: "EFI system",
}

# GPT partition type GUIDs (UEFI spec §5.3.3 and the usual OS-specific ones).
GPT_TYPES: dict[str, str] = {
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "48465300-0000-11aa-aa11-00306543ecac": "Apple HFS+",
}

_MBR_SIGNATURE = b"\x55\xaa"
_MBR_ENTRIES = 446  # offset of the four 16-byte entries
_GPT_SIGNATURE = b"EFI PART"


@dataclass(frozen=True)
class Partition:
    """One partition-table entry. ``start`` and ``size`` are in bytes."""

    index: int  # 1-based, as Linux numbers them (mmcblk0p1)
    type_id: str  # "0x0c" for MBR, the type GUID for GPT
    type_name: str
    start: int
    size: int
    bootable: bool = False
    name: str = ""  # GPT partition name
    guid: str = ""  # GPT unique partition GUID
    filesystem: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class GptHeader:
    """The primary GPT header (UEFI spec §5.3.2); LBAs are in 512-byte sectors."""

    disk_guid: str
    revision: str
    current_lba: int
    backup_lba: int
    first_usable_lba: int
    last_usable_lba: int
    entries_lba: int
    entry_count: int
    entry_size: int
    header_crc_ok: bool
    entries_crc_ok: bool


@dataclass(frozen=True)
class ImageInfo:
    """What a card backed by ``path`` presents and what a host finds on it."""

    path: Path
    size: int
    card_type: CardType
    capacity: int  # bytes the card's CSD announces (registers.build_csd)
    read_only: bool  # a read-only file makes a write-protected card
    scheme: PartitionScheme
    partitions: tuple[Partition, ...] = ()
    disk_signature: int | None = None  # MBR bytes 440..443
    gpt: GptHeader | None = None
    filesystem: str | None = None  # file system on the whole card (no partition table)
    label: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths and enums as strings)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["card_type"] = self.card_type.value
        data["scheme"] = self.scheme.value
        data["partitions"] = [asdict(p) for p in self.partitions]
        data["warnings"] = list(self.warnings)
        return data


def describe_filesystem(kind: str | None, label: str | None) -> str:
    """``FAT16 "SDSCOPE"``, ``ext4`` or ``unknown``."""
    if kind is None:
        return "unknown"
    return f'{kind} "{label}"' if label else kind


def describe_table(info: ImageInfo) -> str:
    """One line about the partition table, e.g. ``MBR, 1 partition (signature 0x1a2b3c4d)``."""
    if info.scheme is PartitionScheme.NONE:
        if info.filesystem:
            return f"none: {describe_filesystem(info.filesystem, info.label)} on the whole card"
        return "none (blank or unrecognised)"
    count = len(info.partitions)
    text = f"{info.scheme.value.upper()}, {count} partition{'s' if count != 1 else ''}"
    if info.disk_signature is not None:
        text += f" (signature 0x{info.disk_signature:08x})"
    if info.gpt is not None:
        text += f" (disk {info.gpt.disk_guid})"
    return text


def describe_image(info: ImageInfo) -> list[tuple[str, str]]:
    """(title, text) rows describing the image, as the CLI and the Image dock show them."""
    addressing = "block" if info.card_type.block_addressed else "byte"
    rows = [
        ("Image", str(info.path)),
        ("Size", f"{format_size(info.size)} ({info.size:,} bytes)"),
        ("Card type", f"{info.card_type.value} ({addressing} addressing)"),
        ("Capacity", f"{format_size(info.capacity)} ({info.capacity:,} bytes)"),
        ("Access", "read-only (write-protected card)" if info.read_only else "read-write"),
        ("Partition table", describe_table(info)),
    ]
    if info.gpt is not None:
        g = info.gpt
        crc = "CRCs ok" if g.header_crc_ok and g.entries_crc_ok else "CRC MISMATCH"
        rows.append((
            "GPT header",
            f"revision {g.revision}, LBA {g.current_lba} (backup {g.backup_lba}), usable "
            f"LBAs {g.first_usable_lba}-{g.last_usable_lba}, {g.entry_count} entries of "
            f"{g.entry_size} bytes at LBA {g.entries_lba}, {crc}",
        ))
    return rows


# How a partition is shown in tables (CLI and GUI): (column title, cell text).
PARTITION_COLUMNS: tuple[tuple[str, Callable[[Partition], str]], ...] = (
    ("#", lambda p: str(p.index)),
    ("Type", lambda p: f"{p.type_name} ({p.type_id})" if p.type_id.startswith("0x")
     else p.type_name),
    ("Start", lambda p: format_size(p.start)),
    ("Size", lambda p: format_size(p.size)),
    ("File system", lambda p: describe_filesystem(p.filesystem, p.label)),
    ("Name", lambda p: p.name),
)


def _read_at(f: io.BufferedReader, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def detect_filesystem(head: bytes) -> tuple[str | None, str | None]:
    """(file-system type, volume label) from the first 2 KiB of a volume, or (None, None).

    FAT type follows from the cluster count (Microsoft fatgen103 "FAT type determination");
    exFAT and NTFS by their OEM name; ext2/3/4 by the superblock magic and features.
    """
    if len(head) >= 512 and head[510:512] == _MBR_SIGNATURE:
        oem = head[3:11]
        if oem == b"EXFAT   ":
            return "exFAT", None
        if oem == b"NTFS    ":
            return "NTFS", None
        fat = _fat_type(head)
        if fat is not None:
            return fat
    if len(head) >= 1024 + 0x100:
        (magic,) = struct.unpack_from("<H", head, 1024 + 0x38)
        if magic == 0xEF53:
            compat, incompat = struct.unpack_from("<II", head, 1024 + 0x5C)
            # incompat: 0x40 extents, 0x80 64bit, 0x200 flex_bg; compat 0x4 has_journal
            kind = "ext4" if incompat & 0x2C0 else "ext3" if compat & 0x4 else "ext2"
            label = head[1024 + 0x78 : 1024 + 0x88].split(b"\0")[0].decode("utf-8", "replace")
            return kind, label or None
    return None, None


def _fat_type(bs: bytes) -> tuple[str, str | None] | None:
    """FAT12/16/32 and label from a boot sector, or None if the BPB is not plausible."""
    if bs[0] not in (0xEB, 0xE9):
        return None
    (bytes_per_sector, sec_per_clus, reserved, n_fats, root_entries, total16, _media,
     fat_size16) = struct.unpack_from("<HBHBHHBH", bs, 11)
    total32, fat_size32 = struct.unpack_from("<II", bs, 32)
    if bytes_per_sector not in (512, 1024, 2048, 4096) or sec_per_clus == 0:
        return None
    if sec_per_clus & (sec_per_clus - 1) or n_fats == 0 or reserved == 0:
        return None
    fat_size = fat_size16 or fat_size32
    total = total16 or total32
    root_sectors = (root_entries * 32 + bytes_per_sector - 1) // bytes_per_sector
    data_sectors = total - (reserved + n_fats * fat_size + root_sectors)
    if fat_size == 0 or data_sectors <= 0:
        return None
    clusters = data_sectors // sec_per_clus
    kind = "FAT12" if clusters < 4085 else "FAT16" if clusters < 65525 else "FAT32"
    label_at = 71 if kind == "FAT32" else 43
    signature_at = 66 if kind == "FAT32" else 38
    label = None
    if bs[signature_at] == 0x29:  # extended boot signature: label and volume id present
        label = bs[label_at : label_at + 11].decode("ascii", "replace").strip() or None
        if label == "NO NAME":
            label = None
    return kind, label


def _parse_mbr(sector: bytes) -> list[tuple[int, int, int, bool]] | None:
    """The used primary entries (type, start LBA, sectors, bootable) of a boot sector, or
    None when a status byte is neither 0x00 nor 0x80 (then it is no partition table)."""
    entries = []
    for i in range(4):
        status, ptype, start, count = struct.unpack_from(
            "<B3xB3xII", sector, _MBR_ENTRIES + 16 * i
        )
        if status not in (0x00, 0x80):
            return None
        if ptype != 0 and count != 0:
            entries.append((ptype, start, count, status == 0x80))
    return entries


def _gpt_entries(
    f: io.BufferedReader, header: bytes
) -> tuple[GptHeader, list[Partition]] | None:
    if header[:8] != _GPT_SIGNATURE:
        return None
    (revision, header_size, header_crc, _reserved, current, backup, first_usable,
     last_usable) = struct.unpack_from("<IIIIQQQQ", header, 8)
    disk_guid = uuid.UUID(bytes_le=header[56:72])
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", header, 72)
    if not 92 <= header_size <= BLOCK_SIZE or entry_size < 128 or count > 4096:
        return None
    check = bytearray(header[:header_size])
    check[16:20] = b"\0\0\0\0"
    raw = _read_at(f, entries_lba * BLOCK_SIZE, count * entry_size)
    gpt = GptHeader(
        disk_guid=str(disk_guid),
        revision=f"{revision >> 16}.{revision & 0xFFFF}",
        current_lba=current,
        backup_lba=backup,
        first_usable_lba=first_usable,
        last_usable_lba=last_usable,
        entries_lba=entries_lba,
        entry_count=count,
        entry_size=entry_size,
        header_crc_ok=zlib.crc32(check) == header_crc,
        entries_crc_ok=zlib.crc32(raw) == entries_crc,
    )
    partitions = []
    for i in range(len(raw) // entry_size):
        entry = raw[i * entry_size : (i + 1) * entry_size]
        type_guid = uuid.UUID(bytes_le=entry[0:16])
        if type_guid.int == 0:
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", "replace").split("\0")[0]
        partitions.append(
            Partition(
                index=i + 1,
                type_id=str(type_guid),
                type_name=GPT_TYPES.get(str(type_guid), "unknown"),
                start=first * BLOCK_SIZE,
                size=(last - first + 1) * BLOCK_SIZE,
                name=name,
                guid=str(uuid.UUID(bytes_le=entry[16:32])),
            )
        )
    return gpt, partitions


def read_image_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Inspect the image at ``path``: card type, capacity, partitions and file systems."""
    path = Path(path)
    try:
        st = path.stat()
        if path.is_dir():
            raise ImageError(f"{path} is a directory, not a disk image")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            # the rule Storage opens it by; opening a FIFO would block
            raise ImageError(f"{path}: not a regular file or block device")
        with path.open("rb") as f:
            size = st.st_size if stat.S_ISREG(st.st_mode) else f.seek(0, os.SEEK_END)
            try:
                card_type = card_type_for_size(size)
            except ImageError as e:
                raise ImageError(f"{path}: {e}") from None
            return _inspect(f, path, size, card_type, read_only=not writable(path, st))
    except FileNotFoundError:
        raise ImageError(f"no such image: {path}") from None
    except OSError as e:
        raise ImageError(f"cannot read {path}: {e.strerror or e}") from None


def _inspect(f: io.BufferedReader, path: Path, size: int, card_type: CardType, *,
             read_only: bool) -> ImageInfo:
    capacity = build_csd(size).exposed_bytes
    warnings: list[str] = []
    if capacity != size:
        warnings.append(
            f"the card addresses {capacity} of {size} bytes; the last "
            f"{size - capacity} bytes are not reachable"
        )
    common: dict[str, Any] = {
        "path": path,
        "size": size,
        "card_type": card_type,
        "capacity": capacity,
        "read_only": read_only,  # the rule Storage opens it by
    }
    head = _read_at(f, 0, 2048)
    whole_fs, whole_label = detect_filesystem(head)
    if whole_fs is not None:  # a boot sector at LBA 0 wins over a plausible-looking table
        return ImageInfo(
            **common,
            scheme=PartitionScheme.NONE,
            filesystem=whole_fs,
            label=whole_label,
            warnings=tuple(warnings),
        )
    entries = _parse_mbr(head) if head[510:512] == _MBR_SIGNATURE else None
    if entries is None:
        return ImageInfo(**common, scheme=PartitionScheme.NONE, warnings=tuple(warnings))
    if any(ptype == 0xEE for ptype, *_ in entries):
        gpt = _gpt_entries(f, _read_at(f, BLOCK_SIZE, BLOCK_SIZE))
        if gpt is not None:
            header, parts = gpt
            if not (header.header_crc_ok and header.entries_crc_ok):
                warnings.append("GPT header or entry array CRC32 does not match")
            return ImageInfo(
                **common,
                scheme=PartitionScheme.GPT,
                gpt=header,
                partitions=tuple(_with_filesystem(f, p, size, warnings) for p in parts),
                warnings=tuple(warnings),
            )
        warnings.append("protective MBR without a readable GPT header")
    (signature,) = struct.unpack_from("<I", head, 440)
    parts = [
        Partition(
            index=i + 1,
            type_id=f"0x{ptype:02x}",
            type_name=MBR_TYPES.get(ptype, "unknown"),
            start=start * BLOCK_SIZE,
            size=count * BLOCK_SIZE,
            bootable=bootable,
        )
        for i, (ptype, start, count, bootable) in enumerate(entries)
    ]
    return ImageInfo(
        **common,
        scheme=PartitionScheme.MBR,
        disk_signature=signature,
        partitions=tuple(_with_filesystem(f, p, size, warnings) for p in parts),
        warnings=tuple(warnings),
    )


def _with_filesystem(
    f: io.BufferedReader, part: Partition, size: int, warnings: list[str]
) -> Partition:
    if part.start + part.size > size:
        warnings.append(f"partition {part.index} ends beyond the end of the image")
    if part.start >= size:
        return part
    kind, label = detect_filesystem(_read_at(f, part.start, 2048))
    return Partition(**{**asdict(part), "filesystem": kind, "label": label})


# --- creating images -----------------------------------------------------------------

FAT_PARTITION_ALIGN = 4 * 1024**2  # first partition offset on factory-formatted cards
_FAT_MIN_IMAGE = 2 * FAT_PARTITION_ALIGN
# File system by partition size, like the SD Association's formatter: FAT12 for tiny
# volumes, FAT16 up to 2 GiB (SDSC), FAT32 above (SDHC). pyfatfs formats FAT32 up to 32 GiB;
# SDXC cards use exFAT, which it cannot write.
_FAT_BY_SIZE: tuple[tuple[int, str, int], ...] = (
    # (largest partition in bytes, FAT type, MBR partition type)
    (16 * 1024**2, "FAT12", 0x01),
    (32 * 1024**2 - BLOCK_SIZE, "FAT16", 0x04),  # "FAT16 <32M"
    (SDSC_MAX_BYTES, "FAT16", 0x06),
    (32 * 1024**3, "FAT32", 0x0C),
)


def create_image(
    path: str | os.PathLike[str], size: int, *, fat: bool = False, force: bool = False
) -> Path:
    """Create a sparse image of ``size`` bytes; with ``fat`` a partitioned FAT card holding
    a few sample files. The file appears complete or not at all (written next to it, then
    renamed)."""
    path = Path(path)
    card_type_for_size(size)  # validates the size
    if fat and size < _FAT_MIN_IMAGE:
        raise ImageError(f"a FAT image needs at least {format_size(_FAT_MIN_IMAGE)}")
    if fat and size - FAT_PARTITION_ALIGN > _FAT_BY_SIZE[-1][0]:
        raise ImageError(
            f"cannot format {format_size(size)} as FAT: FAT32 here stops at 32 GiB "
            "(SDXC cards use exFAT, which sdscope cannot create); drop --fat"
        )
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not a disk image")
    if path.exists() and not force:
        raise ImageError(f"{path} already exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise ImageError(f"directory {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.truncate(size)  # sparse: no blocks are allocated until written
        if fat:
            _format_fat(tmp, size)
        os.replace(tmp, path)
    except OSError as e:
        raise ImageError(f"cannot create {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def _chs(lba: int) -> bytes:
    """CHS address of ``lba`` for the usual 255 heads × 63 sectors geometry, capped at
    1023/254/63 as tools do for LBA partitions."""
    cylinder, rest = divmod(lba, 255 * 63)
    head, sector = divmod(rest, 63)
    if cylinder > 1023:
        cylinder, head, sector = 1023, 254, 62
    return bytes((head, ((cylinder >> 2) & 0xC0) | (sector + 1), cylinder & 0xFF))


def _mbr(entries: list[tuple[int, int, int]], signature: int) -> bytes:
    """A boot sector with ``entries`` (type, start LBA, sectors) and no boot code."""
    sector = bytearray(BLOCK_SIZE)
    struct.pack_into("<I", sector, 440, signature)
    for i, (ptype, start, count) in enumerate(entries):
        entry = b"\x00" + _chs(start) + bytes((ptype,)) + _chs(start + count - 1)
        sector[_MBR_ENTRIES + 16 * i : _MBR_ENTRIES + 16 * i + 16] = entry + struct.pack(
            "<II", start, count
        )
    sector[510:512] = _MBR_SIGNATURE
    return bytes(sector)


def _format_fat(path: Path, size: int) -> None:
    from pyfatfs import PyFATException
    from pyfatfs.PyFat import PyFat  # imported here: pyfatfs is slow to import

    start = FAT_PARTITION_ALIGN
    part_size = size - start
    kind, ptype = next((k, t) for limit, k, t in _FAT_BY_SIZE if part_size <= limit)
    pf = PyFat(offset=start)
    try:
        pf.mkfs(str(path), getattr(PyFat, f"FAT_TYPE_{kind}"), size=part_size, label="SDSCOPE")
    except PyFATException as e:
        raise ImageError(f"cannot format {format_size(part_size)} as {kind}: {e}") from None
    finally:
        pf.close()
    first_lba = start // BLOCK_SIZE
    signature = int.from_bytes(os.urandom(4), "little")
    with path.open("r+b") as f:
        f.write(_mbr([(ptype, first_lba, part_size // BLOCK_SIZE)], signature))
        # BPB_HiddSec (offset 28): sectors before the volume; pyfatfs leaves 0. FAT32 keeps
        # a backup boot sector at sector 6 of the volume.
        boot_sectors = [start] + ([start + 6 * BLOCK_SIZE] if kind == "FAT32" else [])
        for at in boot_sectors:
            f.seek(at + 28)
            f.write(struct.pack("<I", first_lba))
    try:
        _write_sample_files(path, start)
    except PyFATException as e:
        raise ImageError(f"cannot write the sample files to {path}: {e}") from None


def _sample_files() -> Iterator[tuple[str, bytes]]:
    """The files on a new FAT card: something to read, to parse and to look at on the bus."""
    yield "/README.TXT", (
        "sdscope demo card\r\n"
        "=================\r\n\r\n"
        "This FAT volume was written by `sdscope image new --fat`. It sits in one MBR\r\n"
        "partition starting 4 MiB into the card, like a factory-formatted SD card.\r\n\r\n"
        "SENSORS.CSV  a day of readings from an imaginary weather logger\r\n"
        "DATA/PATTERN.BIN  eight 512-byte blocks; each starts with its block number,\r\n"
        "                  so every block is easy to spot in a bus trace\r\n"
    ).encode("ascii")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["time", "temperature_c", "humidity_pct", "pressure_hpa"])
    for hour in range(24):
        # A smooth, deterministic day: warm afternoon, humid night.
        temperature = 14.0 + 8.0 * _triangle(hour, 15)
        humidity = 55.0 + 30.0 * _triangle(hour, 3)
        writer.writerow([f"{hour:02d}:00", f"{temperature:.1f}", f"{humidity:.0f}",
                         f"{1013.0 + (hour % 7) * 0.4:.1f}"])
    yield "/SENSORS.CSV", text.getvalue().encode("ascii")
    yield "/DATA/PATTERN.BIN", b"".join(
        (f"SDSCOPE BLOCK {n:04d}\n".encode("ascii") + bytes(range(256)) * 2)[:BLOCK_SIZE]
        for n in range(8)
    )


def _triangle(hour: int, peak: int) -> float:
    """1.0 at ``peak`` o'clock falling linearly to 0.0 twelve hours away."""
    distance = min((hour - peak) % 24, (peak - hour) % 24)
    return 1.0 - distance / 12.0


def _write_sample_files(path: Path, offset: int) -> None:
    from pyfatfs.PyFatFS import PyFatFS

    fs = PyFatFS(str(path), offset=offset, utc=True)
    try:
        for name, data in _sample_files():
            parent = name.rsplit("/", 1)[0]
            if parent and not fs.exists(parent):
                fs.makedir(parent)
            fs.writebytes(name, data)
    finally:
        fs.close()


# --- the built-in demo card ----------------------------------------------------------

DEMO_KEYWORD = "demo"  # `--image demo` means the built-in demo card
DEMO_IMAGE_SIZE = 64 * 1024**2
DEMO_IMAGE_NAME = "demo-card-v1.img"  # bump the version when the recipe changes


def data_dir() -> Path:
    """Where sdscope keeps generated files: ``$SDSCOPE_DATA_DIR`` or the platform's
    per-user data directory."""
    override = os.environ.get("SDSCOPE_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("sdscope", appauthor=False))


def demo_image_path() -> Path:
    return data_dir() / DEMO_IMAGE_NAME


def ensure_demo_image() -> Path:
    """The demo card image, created on first use (a 64 MiB FAT16 card, mostly sparse)."""
    path = demo_image_path()
    if path.is_file() and path.stat().st_size == DEMO_IMAGE_SIZE:
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageError(f"cannot create data directory {path.parent}: {e.strerror}") from None
    return create_image(path, DEMO_IMAGE_SIZE, fat=True, force=True)


def resolve_image(text: str | os.PathLike[str]) -> Path:
    """The image a user named: ``demo`` is the built-in card, anything else a path that
    must exist (write ``./demo`` for a file called demo)."""
    if str(text) == DEMO_KEYWORD:
        return ensure_demo_image()
    path = Path(text).expanduser()
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not a disk image")
    if not path.exists():
        raise ImageError(f"no such image: {path}")
    return path
