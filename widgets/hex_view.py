"""A virtual hex view of a disk image: offset | 16 hex bytes | ASCII | block and structure.

Nothing scales with the image: the view paints only the visible rows, keeps a small LRU
cache of 4 KiB pages, and asks for missing bytes: first the app's ``fetch(offset,
length)`` provider (which returns bytes it has at hand, or None), then ``sigNeedData``;
the app reads through the storage executor and calls ``set_data`` when the bytes arrive.
Until then a byte shows as "…". QScrollBar holds a 32-bit int, so past 2^30 rows
(16 GiB) the bar maps to rows with a scale factor; keys, the wheel and ``go_to_offset``
still move by exact rows.

Blocks being read or written are tinted by ``mark_blocks`` (pending, acknowledged,
failed, read); MBR and GPT structures found by ``sdmodel.images.read_image_info`` get a
coloured margin, a name in the right column and a tooltip (``image_regions``).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.images import ImageInfo, PartitionScheme, describe_filesystem, format_size
from widgets.qt import QEvent, Qt, QtCore, QtGui, QtWidgets, QWidget, Signal

__all__ = [
    "BYTES_PER_ROW",
    "MARK_COLOURS",
    "NOT_LOADED",
    "SCROLL_LIMIT",
    "Fetch",
    "HexView",
    "MarkStatus",
    "Region",
    "RegionKind",
    "image_regions",
]

BYTES_PER_ROW = 16
PAGE_SIZE = 4096  # cache and request granularity (8 blocks)
CACHE_PAGES = 512  # 2 MiB of image bytes at most
SCROLL_LIMIT = 1 << 30  # largest scroll-bar range; beyond it the bar is scaled
_ROWS_PER_BLOCK = BLOCK_SIZE // BYTES_PER_ROW
_WHEEL_ROWS = 3  # rows per wheel notch
NOT_LOADED = "…"  # shown for a byte whose data has not arrived yet

Fetch = Callable[[int, int], bytes | None]


class MarkStatus(StrEnum):
    """What happened to a block on the bus (design.md "the contract")."""

    PENDING = "pending"  # written by the host, backing write not done yet (busy)
    ACKNOWLEDGED = "acknowledged"  # on disk, busy released
    FAILED = "failed"  # the backing write or read failed
    READ = "read"  # sent to the host


MARK_COLOURS: Mapping[MarkStatus, QtGui.QColor] = {
    MarkStatus.PENDING: QtGui.QColor("#ffe08a"),
    MarkStatus.ACKNOWLEDGED: QtGui.QColor("#bfe6b8"),
    MarkStatus.FAILED: QtGui.QColor("#f7a8a8"),
    MarkStatus.READ: QtGui.QColor("#c6ddf7"),
}


class RegionKind(StrEnum):
    BOOT_CODE = "boot code"
    DISK_SIGNATURE = "disk signature"
    PARTITION_ENTRY = "partition entry"
    BOOT_SIGNATURE = "boot signature"
    GPT_HEADER = "GPT header"
    GPT_ENTRIES = "GPT entries"
    VOLUME = "volume"


_REGION_COLOURS: Mapping[RegionKind, QtGui.QColor] = {
    RegionKind.BOOT_CODE: QtGui.QColor("#8e9aaf"),
    RegionKind.DISK_SIGNATURE: QtGui.QColor("#3867d6"),
    RegionKind.PARTITION_ENTRY: QtGui.QColor("#0f9d8a"),
    RegionKind.BOOT_SIGNATURE: QtGui.QColor("#8e44ad"),
    RegionKind.GPT_HEADER: QtGui.QColor("#e67e22"),
    RegionKind.GPT_ENTRIES: QtGui.QColor("#d4ac0d"),
    RegionKind.VOLUME: QtGui.QColor("#27ae60"),
}


@dataclass(frozen=True)
class Region:
    """A labelled structure at bytes ``start`` .. ``end - 1`` of the image."""

    start: int
    end: int
    kind: RegionKind
    name: str
    detail: str = ""

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


# Legacy MBR layout (UEFI spec §5.2.1, table 5-1): byte offsets within LBA 0.
_MBR_BOOT_CODE = (0, 440)
_MBR_DISK_SIGNATURE = (440, 444)
_MBR_ENTRY_AT, _MBR_ENTRY_SIZE, _MBR_ENTRIES = 446, 16, 4
_MBR_SIGNATURE = (510, 512)


def _mbr_regions(info: ImageInfo, protective: bool) -> list[Region]:
    what = "protective MBR" if protective else "MBR"
    regions = [
        Region(*_MBR_BOOT_CODE, RegionKind.BOOT_CODE, f"{what} boot code",
               "bootstrap code (unused on SD cards)"),
        Region(*_MBR_DISK_SIGNATURE, RegionKind.DISK_SIGNATURE, "disk signature",
               "" if info.disk_signature is None else f"0x{info.disk_signature:08x}"),
        Region(*_MBR_SIGNATURE, RegionKind.BOOT_SIGNATURE, "boot signature 0x55AA",
               "marks a valid MBR"),
    ]
    # ImageInfo lists the used MBR entries in slot order; a GPT disk has one 0xEE entry.
    used = ["protective entry (type 0xEE) covering the disk"] if protective else [
        f"{p.type_name} ({p.type_id}), {format_size(p.size)} at {format_size(p.start)}"
        for p in info.partitions
    ]
    for slot in range(_MBR_ENTRIES):
        at = _MBR_ENTRY_AT + slot * _MBR_ENTRY_SIZE
        detail = used[slot] if slot < len(used) else "empty"
        regions.append(Region(at, at + _MBR_ENTRY_SIZE, RegionKind.PARTITION_ENTRY,
                              f"partition entry {slot + 1}", detail))
    return regions


def _gpt_regions(info: ImageInfo) -> list[Region]:
    gpt = info.gpt
    assert gpt is not None
    crc = "CRCs ok" if gpt.header_crc_ok and gpt.entries_crc_ok else "CRC MISMATCH"
    header = gpt.current_lba * BLOCK_SIZE
    regions = [Region(header, header + BLOCK_SIZE, RegionKind.GPT_HEADER, "GPT header",
                      f"revision {gpt.revision}, {crc}, backup at LBA {gpt.backup_lba}")]
    array = gpt.entries_lba * BLOCK_SIZE
    regions.append(Region(array, array + gpt.entry_count * gpt.entry_size,
                          RegionKind.GPT_ENTRIES, "GPT partition entries",
                          f"{gpt.entry_count} entries of {gpt.entry_size} bytes"))
    for part in info.partitions:  # GPT partitions keep their entry number as index
        at = array + (part.index - 1) * gpt.entry_size
        name = f' "{part.name}"' if part.name else ""
        regions.append(Region(at, at + gpt.entry_size, RegionKind.PARTITION_ENTRY,
                              f"GPT entry {part.index}",
                              f"{part.type_name}{name}, {format_size(part.size)}"))
    backup = gpt.backup_lba * BLOCK_SIZE
    if backup != header:
        regions.append(Region(backup, backup + BLOCK_SIZE, RegionKind.GPT_HEADER,
                              "backup GPT header", f"copy of the header at LBA {gpt.current_lba}"))
    return regions


def image_regions(info: ImageInfo) -> tuple[Region, ...]:
    """The MBR / GPT structures and partition boot sectors of an image, by start offset,
    inside the image. Empty MBR slots ahead of used ones cannot be told apart in
    ``ImageInfo``; the entries' details follow its order."""
    regions: list[Region] = []
    if info.scheme is PartitionScheme.NONE and info.filesystem is not None:
        fs = describe_filesystem(info.filesystem, info.label)
        regions.append(Region(0, BLOCK_SIZE, RegionKind.VOLUME, "boot sector",
                              f"{fs} on the whole card (no partition table)"))
    if info.scheme is not PartitionScheme.NONE:
        regions += _mbr_regions(info, protective=info.scheme is PartitionScheme.GPT)
    if info.scheme is PartitionScheme.GPT:
        regions += _gpt_regions(info)
    for part in info.partitions:
        fs = describe_filesystem(part.filesystem, part.label)
        regions.append(Region(part.start, part.start + BLOCK_SIZE, RegionKind.VOLUME,
                              f"partition {part.index} boot sector",
                              f"{fs}, first block of partition {part.index}"))
    inside = [r for r in regions if r.start < info.size]
    return tuple(sorted(inside, key=lambda r: (r.start, -(r.end - r.start))))


class _Page:
    """PAGE_SIZE bytes of the image and which of them are loaded."""

    __slots__ = ("data", "have")

    def __init__(self) -> None:
        self.data = bytearray(PAGE_SIZE)
        self.have = bytearray(PAGE_SIZE)


def _cell_text(page: _Page | None, index: int) -> str:
    """The hex cell of byte ``index`` of ``page``: two digits, or "…" until loaded."""
    if page is None or not page.have[index]:
        return NOT_LOADED
    return f"{page.data[index]:02X}"


class _Marks:
    """Block ranges with a status; a later mark replaces earlier ones where they overlap."""

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._ranges: list[tuple[int, int, MarkStatus]] = []  # (first, last, status), sorted

    def __len__(self) -> int:
        return len(self._ranges)

    def clear(self) -> None:
        self._firsts.clear()
        self._ranges.clear()

    def add(self, first: int, last: int, status: MarkStatus) -> None:
        kept: list[tuple[int, int, MarkStatus]] = []
        for a, b, s in self._ranges:
            if b < first or a > last:
                kept.append((a, b, s))
                continue
            if a < first:
                kept.append((a, first - 1, s))
            if b > last:
                kept.append((last + 1, b, s))
        kept.append((first, last, status))
        kept.sort()
        merged: list[tuple[int, int, MarkStatus]] = []
        for a, b, s in kept:
            if merged and merged[-1][2] is s and merged[-1][1] + 1 == a:
                merged[-1] = (merged[-1][0], b, s)
            else:
                merged.append((a, b, s))
        self._ranges = merged
        self._firsts = [a for a, _, _ in merged]

    def status(self, lba: int) -> MarkStatus | None:
        i = bisect.bisect_right(self._firsts, lba) - 1
        if i >= 0 and self._ranges[i][1] >= lba:
            return self._ranges[i][2]
        return None


class HexView(QtWidgets.QAbstractScrollArea):
    """Hex dump of ``size`` bytes, painted row by row over the visible window only."""

    sigNeedData = Signal(object, object)  # (offset, length): Python ints, may pass 2^31

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._size = 0
        self._top = 0  # first visible row (exact, any size)
        self._cursor: int | None = None
        self._provider: Fetch | None = None
        self._pages: OrderedDict[int, _Page] = OrderedDict()
        self._pending: set[int] = set()
        self._marks = _Marks()
        self._regions: tuple[Region, ...] = ()
        self._syncing = False
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        metrics = QtGui.QFontMetricsF(font)
        self._cw = metrics.horizontalAdvance("0")
        self._lh = int(metrics.height()) + 2
        self._ascent = metrics.ascent()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll)
        self.horizontalScrollBar().valueChanged.connect(self.viewport().update)
        self._update_scrollbars()

    # -- content --------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return self._size

    def set_size(self, size: int) -> None:
        """Show ``size`` bytes; drops cached data, marks stay."""
        if size < 0:
            raise ValueError(f"size must be >= 0 bytes, got {size}")
        self._size = size
        self._pages.clear()
        self._pending.clear()
        self._top = min(self._top, self._max_top())
        if self._cursor is not None and self._cursor >= size:
            self._cursor = None
        self._update_scrollbars()
        self._changed()

    def set_image_info(self, info: ImageInfo | None) -> None:
        """Size and MBR/GPT labels from ``read_image_info``; None shows nothing."""
        self.set_regions(image_regions(info) if info is not None else ())
        self.set_size(info.size if info is not None else 0)

    def set_regions(self, regions: Iterable[Region]) -> None:
        self._regions = tuple(sorted(regions, key=lambda r: (r.start, -(r.end - r.start))))
        self.viewport().update()

    def regions(self) -> tuple[Region, ...]:
        return self._regions

    def set_provider(self, fetch: Fetch | None) -> None:
        """``fetch(offset, length)`` returns bytes it has at once, or None (then the view
        emits ``sigNeedData`` and waits for ``set_data``). It must not block."""
        self._provider = fetch
        self._request_visible()

    def set_data(self, offset: int, data: bytes) -> None:
        """Bytes of the image at ``offset`` arrived (from a read the view asked for, or the
        data of a block just written)."""
        end = min(offset + len(data), self._size)
        pos = max(offset, 0)
        while pos < end:
            index = pos // PAGE_SIZE
            page = self._pages.get(index)
            if page is None:
                page = self._pages[index] = _Page()
            self._pages.move_to_end(index)
            lo = pos - index * PAGE_SIZE
            hi = min(PAGE_SIZE, end - index * PAGE_SIZE)
            page.data[lo:hi] = data[pos - offset : pos - offset + hi - lo]
            page.have[lo:hi] = b"\x01" * (hi - lo)
            self._pending.discard(index)
            pos = index * PAGE_SIZE + hi
        while len(self._pages) > CACHE_PAGES:
            self._pages.popitem(last=False)
        self.viewport().update()

    def invalidate(self, offset: int = 0, length: int | None = None) -> None:
        """Forget cached bytes (the image changed there) and ask again if visible."""
        end = self._size if length is None else offset + length
        first, last = offset // PAGE_SIZE, (max(end, offset + 1) - 1) // PAGE_SIZE
        for index in [i for i in (*self._pages, *self._pending) if first <= i <= last]:
            self._pages.pop(index, None)  # only cached pages: the range may be the image
            self._pending.discard(index)
        self._request_visible()
        self.viewport().update()

    def byte_at(self, offset: int) -> int | None:
        """The byte at ``offset`` if loaded."""
        page = self._pages.get(offset // PAGE_SIZE)
        i = offset % PAGE_SIZE
        return page.data[i] if page is not None and page.have[i] else None

    # -- marks ----------------------------------------------------------------------------

    def mark_blocks(self, first: int, count: int, status: MarkStatus | str) -> None:
        """Tint blocks ``first`` .. ``first + count - 1`` (LBAs of 512 bytes)."""
        if first < 0 or count < 1:
            raise ValueError(f"bad block range: first {first}, count {count}")
        self._marks.add(first, first + count - 1, MarkStatus(status))
        self.viewport().update()

    def mark_status(self, lba: int) -> MarkStatus | None:
        return self._marks.status(lba)

    def clear_marks(self) -> None:
        self._marks.clear()
        self.viewport().update()

    # -- navigation -----------------------------------------------------------------------

    @property
    def top_row(self) -> int:
        return self._top

    @property
    def row_count(self) -> int:
        return -(-self._size // BYTES_PER_ROW)

    @property
    def cursor_offset(self) -> int | None:
        return self._cursor

    def visible_row_count(self) -> int:
        return max(1, (self.viewport().height() - self._header_h() - self._legend_h())
                   // self._lh)

    def visible_range(self) -> tuple[int, int]:
        """(offset, length) of the bytes on screen."""
        first = self._top * BYTES_PER_ROW
        return first, max(0, min(self.visible_row_count() * BYTES_PER_ROW, self._size - first))

    def go_to_offset(self, offset: int) -> None:
        """Put the row holding ``offset`` at the top (as far as the end allows) and put
        the cursor on that byte."""
        if self._size == 0:
            return
        offset = min(max(offset, 0), self._size - 1)
        self._cursor = offset
        self._set_top(offset // BYTES_PER_ROW)
        self.viewport().update()

    def go_to_block(self, lba: int) -> None:
        """Show block ``lba`` from its first byte."""
        self.go_to_offset(lba * BLOCK_SIZE)

    def scroll_to_value(self, value: int) -> int:
        """The first row shown for scroll-bar position ``value`` (scaled past 2^30 rows)."""
        bar_max = self.verticalScrollBar().maximum()
        max_top = self._max_top()
        if bar_max == max_top or bar_max == 0:
            return min(value, max_top)
        return value * max_top // bar_max

    def _max_top(self) -> int:
        return max(0, self.row_count - self.visible_row_count())

    def _set_top(self, row: int, *, from_bar: bool = False) -> None:
        row = min(max(row, 0), self._max_top())
        if not from_bar:
            self._sync_bar(row)
        if row != self._top:
            self._top = row
            self._changed()

    def _sync_bar(self, row: int) -> None:
        bar = self.verticalScrollBar()
        max_top = self._max_top()
        value = row if bar.maximum() == max_top else (
            row * bar.maximum() // max_top if max_top else 0)
        self._syncing = True
        try:
            bar.setValue(value)
        finally:
            self._syncing = False

    def _on_scroll(self, value: int) -> None:
        if not self._syncing:
            self._set_top(self.scroll_to_value(value), from_bar=True)

    def _update_scrollbars(self) -> None:
        bar = self.verticalScrollBar()
        max_top = self._max_top()
        steps = min(max_top, SCROLL_LIMIT)
        self._syncing = True
        try:
            bar.setRange(0, steps)
            page = self.visible_row_count()
            bar.setPageStep(max(1, page if steps == max_top else page * steps // max_top))
            bar.setSingleStep(1)
        finally:
            self._syncing = False
        self._top = min(self._top, max_top)
        self._sync_bar(self._top)
        width = int(self._columns()["end"]) - self.viewport().width()
        self.horizontalScrollBar().setRange(0, max(0, width))
        self.horizontalScrollBar().setPageStep(self.viewport().width())

    def _changed(self) -> None:
        self._request_visible()
        self.viewport().update()

    # -- data requests ----------------------------------------------------------------------

    def _request_visible(self) -> None:
        offset, length = self.visible_range()
        if length <= 0:
            return
        pages = range(offset // PAGE_SIZE, (offset + length - 1) // PAGE_SIZE + 1)
        self._pending &= set(pages)  # a request that never came back is asked for again
        missing = [p for p in pages if not self._loaded(p)]
        if missing and self._provider is not None:
            start, length = self._span(missing)
            data = self._provider(start, length)
            if data is not None:
                self.set_data(start, data)
                missing = [p for p in missing if not self._loaded(p)]
        missing = [p for p in missing if p not in self._pending]
        if missing:
            self._pending.update(missing)
            self.sigNeedData.emit(*self._span(missing))

    def _span(self, pages: list[int]) -> tuple[int, int]:
        """(offset, length) from the first to the last of ``pages`` (sorted)."""
        start = pages[0] * PAGE_SIZE
        return start, min((pages[-1] + 1) * PAGE_SIZE, self._size) - start

    def _loaded(self, index: int) -> bool:
        page = self._pages.get(index)
        if page is None:
            return False
        used = min(PAGE_SIZE, self._size - index * PAGE_SIZE)
        return page.have.find(0, 0, used) < 0

    # -- events -----------------------------------------------------------------------------

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_scrollbars()
        self._request_visible()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        page = self.visible_row_count()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        moves = {
            Qt.Key.Key_PageDown: self._top + page,
            Qt.Key.Key_PageUp: self._top - page,
            Qt.Key.Key_Down: self._top + 1,
            Qt.Key.Key_Up: self._top - 1,
            Qt.Key.Key_Home: 0 if ctrl else None,
            Qt.Key.Key_End: self._max_top() if ctrl else None,
        }
        row = moves.get(Qt.Key(event.key()))
        if row is None:
            super().keyPressEvent(event)
            return
        self._set_top(row)
        event.accept()

    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120
        self._set_top(self._top - round(notches * _WHEEL_ROWS))
        event.accept()

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        offset = self.offset_at(event.position())
        if offset is not None:
            self._cursor = offset
            self.viewport().update()
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        event.accept()

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        event.accept()

    def viewportEvent(self, event: QtCore.QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            assert isinstance(event, QtGui.QHelpEvent)
            offset = self.offset_at(QtCore.QPointF(event.pos()), any_column=True)
            text = self.tooltip_at(offset) if offset is not None else ""
            if text:
                QtWidgets.QToolTip.showText(event.globalPos(), text, self.viewport())
            else:
                QtWidgets.QToolTip.hideText()
            return True
        return super().viewportEvent(event)

    def offset_at(self, pos: QtCore.QPointF, *, any_column: bool = False) -> int | None:
        """The byte under viewport position ``pos`` (hex or ASCII column); with
        ``any_column`` the first byte of the row for positions elsewhere in it."""
        row = int((pos.y() - self._header_h()) // self._lh)
        if pos.y() < self._header_h() or not 0 <= row < self.visible_row_count():
            return None
        base = (self._top + row) * BYTES_PER_ROW
        x = pos.x() + self.horizontalScrollBar().value()
        cols = self._columns()
        column: int | None = None
        if cols["hex"] <= x < cols["hex_end"]:
            column = min(BYTES_PER_ROW - 1, int((x - cols["hex"]) // (3 * self._cw)))
            if column >= 8:
                column = min(BYTES_PER_ROW - 1, int((x - cols["hex"] - self._cw) //
                                                    (3 * self._cw)))
        elif cols["ascii"] <= x < cols["ascii_end"]:
            column = int((x - cols["ascii"]) // self._cw)
        elif any_column:
            column = 0
        if column is None or base + column >= self._size:
            return None
        return base + column

    def cell_text(self, offset: int) -> str:
        """What the hex column shows for byte ``offset``: ``"4F"`` or ``"…"``."""
        return _cell_text(self._pages.get(offset // PAGE_SIZE), offset % PAGE_SIZE)

    def byte_rect(self, offset: int) -> QtCore.QRectF | None:
        """The hex cell of byte ``offset`` in viewport coordinates, if it is on screen."""
        row = offset // BYTES_PER_ROW - self._top
        if not 0 <= offset < self._size or not 0 <= row < self.visible_row_count():
            return None
        x = self._hex_x(self._columns(), offset % BYTES_PER_ROW)
        x -= self.horizontalScrollBar().value()
        return QtCore.QRectF(x, self._header_h() + row * self._lh, 2 * self._cw, self._lh)

    def tooltip_at(self, offset: int) -> str:
        """What is at ``offset``: position, structures covering it, block status."""
        lba, within = divmod(offset, BLOCK_SIZE)
        lines = [f"offset 0x{offset:X} ({offset:,}): LBA {lba:,} + {within}"]
        for region in self._regions:
            if region.start <= offset < region.end:
                lines.append(f"{region.name}: {region.detail}" if region.detail
                             else region.name)
        status = self._marks.status(lba)
        if status is not None:
            lines.append(f"block {status.value}")
        return "\n".join(lines)

    # -- painting ---------------------------------------------------------------------------

    def _header_h(self) -> int:
        return self._lh + 4

    def _legend_h(self) -> int:
        return self._lh + 6

    def _columns(self) -> dict[str, float]:
        cw = self._cw
        digits = max(8, len(f"{max(self._size - 1, 0):X}"))
        x = 10.0  # region margin bar lives in 0..7
        cols = {"offset": x}
        x += (digits + 2) * cw
        cols["hex"] = x
        x += (3 * BYTES_PER_ROW + 1) * cw
        cols["hex_end"] = x
        x += cw
        cols["ascii"] = x
        x += BYTES_PER_ROW * cw
        cols["ascii_end"] = x
        x += 2 * cw
        cols["notes"] = x
        cols["end"] = x + 34 * cw
        cols["digits"] = digits
        return cols

    def _hex_x(self, cols: dict[str, float], column: int) -> float:
        return cols["hex"] + (3 * column + (1 if column >= 8 else 0)) * self._cw

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self.viewport())
        painter.setFont(self.font())
        palette = self.palette()
        width = self.viewport().width()
        painter.fillRect(self.viewport().rect(), palette.color(QtGui.QPalette.ColorRole.Base))
        painter.translate(-self.horizontalScrollBar().value(), 0)
        cols = self._columns()
        rows = self.visible_row_count()
        top_y = self._header_h()
        for i in range(rows):
            row = self._top + i
            if row * BYTES_PER_ROW >= self._size:
                break
            self._paint_row(painter, cols, row, top_y + i * self._lh)
        painter.resetTransform()
        self._paint_header(painter, cols, width)
        self._paint_legend(painter, width)
        painter.end()

    def _paint_row(self, painter: QtGui.QPainter, cols: dict[str, float], row: int,
                   y: int) -> None:
        base = row * BYTES_PER_ROW
        count = min(BYTES_PER_ROW, self._size - base)
        lba, within = divmod(base, BLOCK_SIZE)
        text_colour = self.palette().color(QtGui.QPalette.ColorRole.Text)
        dim = QtGui.QColor("#9aa3ad")
        status = self._marks.status(lba)
        if status is not None:
            band = QtCore.QRectF(cols["hex"] - self._cw / 2, y, cols["ascii_end"] -
                                 cols["hex"] + self._cw / 2, self._lh)
            painter.fillRect(band, MARK_COLOURS[status])
        regions = [r for r in self._regions if r.overlaps(base, base + BYTES_PER_ROW)]
        if regions:
            inner = min(regions, key=lambda r: r.end - r.start)
            painter.fillRect(QtCore.QRectF(0, y, 7, self._lh), _REGION_COLOURS[inner.kind])
        if within == 0:
            painter.setPen(QtGui.QPen(QtGui.QColor("#7f8c9a"), 1))
            painter.drawLine(QtCore.QPointF(0, y), QtCore.QPointF(cols["end"], y))
        baseline = y + self._ascent + 1
        painter.setPen(dim if within else text_colour)
        painter.drawText(QtCore.QPointF(cols["offset"], baseline),
                         f"{base:0{int(cols['digits'])}X}")
        if self._cursor is not None and base <= self._cursor < base + count:
            column = self._cursor - base
            painter.setPen(QtGui.QPen(QtGui.QColor("#d9480f"), 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QtCore.QRectF(self._hex_x(cols, column) - 1, y,
                                           2 * self._cw + 2, self._lh - 1))
            painter.drawRect(QtCore.QRectF(cols["ascii"] + column * self._cw, y,
                                           self._cw, self._lh - 1))
        page = self._pages.get(base // PAGE_SIZE)
        at = base % PAGE_SIZE
        printable, other = [" "] * count, [" "] * count  # ASCII in two colours
        for column in range(count):
            x = self._hex_x(cols, column)
            text = _cell_text(page, at + column)
            if text == NOT_LOADED:
                painter.setPen(dim)
                painter.drawText(QtCore.QRectF(x, y, 2 * self._cw, self._lh),
                                 Qt.AlignmentFlag.AlignCenter, text)
                continue
            value = page.data[at + column]  # type: ignore[union-attr]
            painter.setPen(dim if value == 0 else text_colour)
            painter.drawText(QtCore.QPointF(x, baseline), text)
            if 0x20 <= value < 0x7F:
                printable[column] = chr(value)
            else:
                other[column] = "."
        painter.setPen(dim)
        painter.drawText(QtCore.QPointF(cols["ascii"], baseline), "".join(other))
        painter.setPen(text_colour)
        painter.drawText(QtCore.QPointF(cols["ascii"], baseline), "".join(printable))
        x = cols["notes"]
        if within == 0:
            label = f"LBA {lba:,}  "
            painter.drawText(QtCore.QPointF(x, baseline), label)
            x += len(label) * self._cw
        for region in regions:
            if base <= region.start < base + BYTES_PER_ROW:
                painter.setPen(_REGION_COLOURS[region.kind].darker(140))
                painter.drawText(QtCore.QPointF(x, baseline), region.name)
                x += (len(region.name) + 2) * self._cw

    def _paint_header(self, painter: QtGui.QPainter, cols: dict[str, float],
                      width: int) -> None:
        rect = QtCore.QRectF(0, 0, width, self._header_h())
        painter.fillRect(rect, self.palette().color(QtGui.QPalette.ColorRole.AlternateBase))
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.PlaceholderText))
        shift = -self.horizontalScrollBar().value()
        baseline = self._ascent + 2
        painter.drawText(QtCore.QPointF(cols["offset"] + shift, baseline), "offset")
        for column in range(BYTES_PER_ROW):
            painter.drawText(QtCore.QPointF(self._hex_x(cols, column) + shift, baseline),
                             f"{column:02X}")
        painter.drawText(QtCore.QPointF(cols["ascii"] + shift, baseline), "ASCII")
        painter.drawText(QtCore.QPointF(cols["notes"] + shift, baseline), "block / structure")

    def _paint_legend(self, painter: QtGui.QPainter, width: int) -> None:
        y = self.viewport().height() - self._legend_h()
        painter.fillRect(QtCore.QRectF(0, y, width, self._legend_h()),
                         self.palette().color(QtGui.QPalette.ColorRole.AlternateBase))
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.Text))
        x = 8.0
        baseline = y + 3 + self._ascent
        for status, colour in MARK_COLOURS.items():
            painter.fillRect(QtCore.QRectF(x, y + 4, 2 * self._cw, self._lh - 2), colour)
            x += 2.5 * self._cw
            painter.drawText(QtCore.QPointF(x, baseline), status.value)
            x += (len(status.value) + 2) * self._cw
        painter.drawText(QtCore.QPointF(x, baseline), "… not loaded yet")
