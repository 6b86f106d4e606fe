"""HexView: row math on a 64 GiB card, data requests for the visible window only, block
marks per status, and MBR/GPT labels from real images."""

from __future__ import annotations

import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from sdmodel.images import create_image, read_image_info
from widgets.hex_view import (
    BYTES_PER_ROW,
    MARK_COLOURS,
    NOT_LOADED,
    SCROLL_LIMIT,
    HexView,
    MarkStatus,
    RegionKind,
    image_regions,
)
from widgets.qt import Qt, QtCore

BLOCK = 512
MIB = 1 << 20
GIB = 1 << 30


@pytest.fixture
def view(qtbot: Any) -> HexView:
    widget = HexView()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    return widget


def file_reader(path: Path) -> Any:
    def fetch(offset: int, length: int) -> bytes:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(length)

    return fetch


def pixel(view: HexView, x: float, y: float) -> str:
    return view.viewport().grab().toImage().pixelColor(int(x), int(y)).name()


# --- rows and scrolling ------------------------------------------------------------------


def test_64_gib_rows_exceed_the_scroll_bar_and_are_scaled(view: HexView) -> None:
    view.set_size(64 * GIB)
    rows, page = view.row_count, view.visible_row_count()
    assert rows == 64 * GIB // BYTES_PER_ROW == 1 << 32  # more rows than a C int holds
    bar = view.verticalScrollBar()
    assert bar.maximum() == SCROLL_LIMIT
    assert view.scroll_to_value(0) == 0
    assert view.scroll_to_value(bar.maximum()) == rows - page
    bar.setValue(bar.maximum() // 2)
    assert abs(view.top_row - (rows - page) // 2) <= (rows - page) // SCROLL_LIMIT


@pytest.mark.parametrize("lba", [0, 1, 123_456_789, 64 * GIB // BLOCK - 1])
def test_go_to_block_is_exact_at_any_size(view: HexView, lba: int) -> None:
    view.set_size(64 * GIB)
    view.go_to_block(lba)
    last_top = view.row_count - view.visible_row_count()
    assert view.top_row == min(lba * BLOCK // BYTES_PER_ROW, last_top)
    assert view.cursor_offset == lba * BLOCK
    assert view.byte_rect(lba * BLOCK) is not None  # on screen


def test_small_image_scrolls_row_by_row(view: HexView) -> None:
    view.set_size(64 * 1024)
    bar = view.verticalScrollBar()
    assert bar.maximum() == view.row_count - view.visible_row_count()
    bar.setValue(100)
    assert view.top_row == 100


def test_keys_move_by_rows_and_pages(view: HexView, qtbot: Any) -> None:
    view.set_size(64 * GIB)
    page = view.visible_row_count()
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.top_row == 2 * page + 1
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    assert view.top_row == page + 1
    qtbot.keyClick(view, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    assert view.top_row == view.row_count - page
    qtbot.keyClick(view, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    assert view.top_row == 0


# --- data ----------------------------------------------------------------------------------


def test_the_visible_window_is_requested_once_and_shown_when_set(view: HexView,
                                                                 qtbot: Any) -> None:
    requests: list[tuple[int, int]] = []
    view.sigNeedData.connect(lambda offset, length: requests.append((offset, length)))
    view.set_size(64 * GIB)
    view.go_to_block(100_000_000)
    offset, length = view.visible_range()
    assert requests[-1][0] <= offset and offset + length <= sum(requests[-1])
    assert requests[-1][1] <= 2 * 4096  # a page or two, never the image
    assert view.byte_at(offset) is None
    count = len(requests)
    qtbot.keyClick(view, Qt.Key.Key_Down)  # same pages, already asked for
    assert len(requests) == count
    start, size = requests[-1]
    view.set_data(start, bytes(range(256)) * (size // 256))
    assert view.byte_at(offset) == (offset - start) % 256
    view.go_to_block(0)
    assert requests[-1] == (0, 4096)


def test_a_request_never_answered_is_asked_again_on_return(view: HexView) -> None:
    requests: list[tuple[int, int]] = []
    view.sigNeedData.connect(lambda offset, length: requests.append((offset, length)))
    view.set_size(16 * MIB)
    view.go_to_block(0)
    view.go_to_block(10_000)
    view.go_to_block(0)
    assert requests == [(0, 4096), (10_000 * BLOCK, 4096), (0, 4096)]


def test_provider_bytes_are_shown_without_a_request(view: HexView, tmp_path: Path) -> None:
    path = create_image(tmp_path / "fat.img", 64 * MIB, fat=True)
    requests: list[tuple[int, int]] = []
    view.sigNeedData.connect(lambda offset, length: requests.append((offset, length)))
    view.set_provider(file_reader(path))
    view.set_image_info(read_image_info(path))
    view.go_to_offset(510)
    assert (view.byte_at(510), view.byte_at(511)) == (0x55, 0xAA)
    assert requests == []


def test_a_provider_without_the_bytes_falls_back_to_a_request(view: HexView) -> None:
    requests: list[tuple[int, int]] = []
    view.sigNeedData.connect(lambda offset, length: requests.append((offset, length)))
    view.set_provider(lambda offset, length: None)
    view.set_size(1 * MIB)
    assert requests == [(0, 4096)]


def test_invalidate_asks_again_for_changed_bytes(view: HexView) -> None:
    requests: list[tuple[int, int]] = []
    view.sigNeedData.connect(lambda offset, length: requests.append((offset, length)))
    view.set_size(1 * MIB)
    view.set_data(0, bytes(4096))
    view.invalidate(512, 512)
    assert view.byte_at(0) is None
    assert requests == [(0, 4096), (0, 4096)]


def test_invalidating_a_64_gib_image_drops_the_cache(view: HexView) -> None:
    requests: list[tuple[int, int]] = []
    view.sigNeedData.connect(lambda offset, length: requests.append((offset, length)))
    view.set_size(64 * GIB)
    view.set_data(0, bytes(8192))
    view.invalidate()
    assert view.byte_at(0) is None and requests == [(0, 4096), (0, 4096)]


def test_missing_bytes_show_as_ellipsis_until_loaded(view: HexView) -> None:
    view.set_size(1 * MIB)
    view.set_data(8, b"\x4f\x00")
    assert [view.cell_text(i) for i in (7, 8, 9, 10)] == [NOT_LOADED, "4F", "00", NOT_LOADED]


# --- marks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(MarkStatus), ids=str)
def test_marked_blocks_are_tinted_by_status(view: HexView, status: MarkStatus) -> None:
    view.set_size(1 * MIB)
    view.mark_blocks(3, 2, status)
    assert [view.mark_status(lba) for lba in (2, 3, 4, 5)] == [None, status, status, None]
    view.go_to_block(4)
    rect = view.byte_rect(4 * BLOCK + 5)
    assert rect is not None
    assert pixel(view, rect.left() + 1, rect.top() + 1) == MARK_COLOURS[status].name()
    view.clear_marks()
    assert view.mark_status(4) is None
    assert pixel(view, rect.left() + 1, rect.top() + 1) == "#ffffff"


def test_a_later_mark_replaces_the_overlapped_part_only(view: HexView) -> None:
    view.set_size(1 * MIB)
    view.mark_blocks(10, 10, "pending")
    view.mark_blocks(12, 3, "acknowledged")
    view.mark_blocks(19, 1, "failed")
    expected = ["pending"] * 2 + ["acknowledged"] * 3 + ["pending"] * 4 + ["failed"]
    assert [view.mark_status(lba) for lba in range(10, 20)] == expected


def test_bad_mark_range_is_refused(view: HexView) -> None:
    with pytest.raises(ValueError, match="bad block range"):
        view.mark_blocks(5, 0, MarkStatus.READ)


# --- MBR / GPT labels -------------------------------------------------------------------------


def test_mbr_structures_of_a_fat_card_are_labelled(view: HexView, tmp_path: Path) -> None:
    path = create_image(tmp_path / "fat.img", 64 * MIB, fat=True)
    info = read_image_info(path)
    regions = {r.name: r for r in image_regions(info)}
    expected = {
        "MBR boot code": (0, 440),
        "disk signature": (440, 444),
        "partition entry 1": (446, 462),
        "partition entry 4": (494, 510),
        "boot signature 0x55AA": (510, 512),
        "partition 1 boot sector": (4 * MIB, 4 * MIB + BLOCK),
    }
    assert {name: (regions[name].start, regions[name].end) for name in expected} == expected
    assert regions["partition entry 1"].detail == "FAT16 (0x06), 60 MiB at 4 MiB"
    assert regions["partition entry 2"].detail == "empty"
    assert regions["disk signature"].detail == f"0x{info.disk_signature:08x}"
    assert 'FAT16 "SDSCOPE"' in regions["partition 1 boot sector"].detail
    view.set_image_info(info)
    assert "partition entry 1: FAT16 (0x06)" in view.tooltip_at(450)
    assert view.tooltip_at(4 * MIB).startswith("offset 0x400000 (4,194,304): LBA 8,192 + 0")
    rect = view.byte_rect(0x1C0)
    assert rect is not None
    assert pixel(view, 3, rect.center().y()) == "#0f9d8a"  # partition-entry margin


def _write_gpt(path: Path, size: int) -> None:
    """Protective MBR, GPT header at LBA 1, 128 entries at LBA 2 (UEFI spec §5.3), one
    Linux partition "root" at LBA 2048, and the backup header at the last LBA."""
    sectors = size // BLOCK
    mbr = bytearray(BLOCK)
    mbr[446:462] = bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF]) + struct.pack("<II", 1,
                                                                            sectors - 1)
    mbr[510:512] = b"\x55\xaa"
    entries = bytearray(128 * 128)
    linux = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
    entries[0:128] = (linux.bytes_le + uuid.uuid4().bytes_le
                      + struct.pack("<QQQ", 2048, sectors - 34, 0)
                      + "root".encode("utf-16-le").ljust(72, b"\0"))
    header = bytearray(BLOCK)
    struct.pack_into("<8sIIIIQQQQ16sQIII", header, 0, b"EFI PART", 0x00010000, 92, 0, 0,
                     1, sectors - 1, 34, sectors - 34, uuid.uuid4().bytes_le, 2, 128, 128,
                     zlib.crc32(entries))
    struct.pack_into("<I", header, 16, zlib.crc32(header[:92]))
    with path.open("wb") as f:
        f.truncate(size)
        f.write(mbr + header + entries)


def test_gpt_structures_are_labelled(view: HexView, tmp_path: Path) -> None:
    path = tmp_path / "gpt.img"
    _write_gpt(path, 8 * MIB)
    regions = image_regions(read_image_info(path))
    found = {(r.kind, r.name): (r.start, r.end, r.detail) for r in regions}
    last = 8 * MIB - BLOCK
    assert found[(RegionKind.PARTITION_ENTRY, "partition entry 1")][2] == (
        "protective entry (type 0xEE) covering the disk")
    assert found[(RegionKind.GPT_HEADER, "GPT header")][:2] == (BLOCK, 2 * BLOCK)
    assert "CRCs ok" in found[(RegionKind.GPT_HEADER, "GPT header")][2]
    assert found[(RegionKind.GPT_ENTRIES, "GPT partition entries")][:2] == (
        2 * BLOCK, 2 * BLOCK + 128 * 128)
    entry = found[(RegionKind.PARTITION_ENTRY, "GPT entry 1")]
    assert entry[:2] == (2 * BLOCK, 2 * BLOCK + 128)
    assert entry[2].startswith('Linux filesystem "root"')
    assert found[(RegionKind.GPT_HEADER, "backup GPT header")][:2] == (last, last + BLOCK)
    assert regions[0].name == "protective MBR boot code"
    view.set_image_info(read_image_info(path))
    tip = view.tooltip_at(2 * BLOCK + 3)
    assert "GPT partition entries: 128 entries of 128 bytes" in tip
    assert "GPT entry 1: Linux filesystem" in tip


def test_whole_card_file_system_labels_its_boot_sector(tmp_path: Path) -> None:
    path = create_image(tmp_path / "fat.img", 64 * MIB, fat=True)
    with path.open("r+b") as f:  # drop the MBR: the volume's boot sector moves to LBA 0
        f.seek(4 * MIB)
        boot = f.read(BLOCK)
        f.seek(0)
        f.write(boot)
    (region,) = image_regions(read_image_info(path))
    assert (region.start, region.end, region.kind) == (0, BLOCK, RegionKind.VOLUME)
    assert "on the whole card" in region.detail


def test_clicking_a_byte_puts_the_cursor_on_it(view: HexView, qtbot: Any) -> None:
    view.set_size(1 * MIB)
    rect = view.byte_rect(0x25)
    assert rect is not None
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=QtCore.QPoint(int(rect.center().x()), int(rect.center().y())))
    assert view.cursor_offset == 0x25
