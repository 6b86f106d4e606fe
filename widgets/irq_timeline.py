"""The IRQ timeline: the controller's IRQ line and every interrupt status bit that ever
latched, as lanes on the waveform's time axis (seconds), with the driver's handling (its
write-1-to-clear of the status) marked as "ack" ticks.

- :class:`IrqIndex` (Qt-free) follows the trace: IRQ edges from ``IrqEvent``; the latched
  status (0x30, normal status 15:0 and error status 31:16, HCS 2.2.17/2.2.18) as the host
  can see it, from the status in each ``IrqEvent`` and from every access to 0x30-0x33; and
  the W1C writes with the bits they cleared. Changes are kept as numpy columns, so a
  window of any length is a bisect plus vectorised work.
- :class:`IrqLane` is one lane's GraphicsObject: it paints only the visible window,
  merging sub-pixel pulses (a zero-width pulse stays visible, style.md rule 12).
- :class:`IrqTimeline` is the widget: a pyqtgraph plot whose X axis can be linked to the
  waveform's, with the same two cursors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sdmodel.sdhci.registers import REG, Access, RegField
from sdmodel.tokens import PS_PER_S, Token
from sdmodel.trace import Trace
from widgets.live_clock import LiveClock, Slot
from widgets.palette import ERROR, KIND_COLORS, qcolor
from widgets.qt import QtCore, QtGui, QVBoxLayout, QWidget, pg

__all__ = ["IrqIndex", "IrqLane", "IrqTimeline", "STATUS_BITS", "IRQ_LANE"]

IRQ_LANE = "IRQ"
_INT_STATUS, _ERR_INT_STATUS = REG["INT_STATUS"], REG["ERR_INT_STATUS"]
_STATUS_OFFSET = _INT_STATUS.offset  # 0x30; ERR_INT_STATUS follows at 0x32 (HCS 2.1)
# Bit of the 32-bit status (error status in 31:16) -> its field. Normal bit 15 (ERROR, the
# OR of the error status, HCS 2.2.17) gets no lane: the error bits have their own.
STATUS_BITS: Mapping[int, RegField] = {
    **{f.lsb: f for f in _INT_STATUS.fields if f.width == 1 and f.access is not Access.ROC},
    **{16 + f.lsb: f for f in _ERR_INT_STATUS.fields},
}
_W1C = _INT_STATUS.mask_of(Access.RW1C) | _ERR_INT_STATUS.mask_of(Access.RW1C) << 16
_LANE_BITS = sum(1 << bit for bit in STATUS_BITS)

# The shared palette (dark plot background): the IRQ line in the trace's "irq" colour,
# normal status bits like responses, error bits red, acks like the register write they are.
_IRQ_COLOUR = qcolor(KIND_COLORS["irq"])
_NORMAL_COLOUR = qcolor(KIND_COLORS["rsp"])
_ERROR_COLOUR = qcolor(ERROR)
_ACK_COLOUR = qcolor(KIND_COLORS["reg"])
_CURSOR_COLOURS = ("#e040fb", "#18ffff")
_MIN_PULSE_PX = 2.0  # a pulse shorter than this is drawn this wide
_ACK_TEXT = "ack"


class _Column:
    """A growable numpy column (amortised O(1) append)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self._data = np.zeros(256, dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, value: int) -> None:
        if self._n == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self._n] = value
        self._n += 1

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._n]


def _status_access(offset: int, width: int, value: int) -> tuple[int, int]:
    """(value, mask) of an access's bytes that fall on the 32-bit status at 0x30."""
    status = mask = 0
    for k in range(width):
        pos = offset + k - _STATUS_OFFSET
        if 0 <= pos < 4:
            status |= ((value >> 8 * k) & 0xFF) << 8 * pos
            mask |= 0xFF << 8 * pos
    return status, mask


class IrqIndex:
    """IRQ line edges, latched-status changes and W1C acknowledgements of a trace."""

    def __init__(self) -> None:
        self._irq_t, self._irq_level = _Column(np.int64), _Column(np.uint8)
        self._status_t, self._status = _Column(np.int64), _Column(np.uint32)
        self._ack_t, self._ack_bits = _Column(np.int64), _Column(np.uint32)
        self._level = 0
        self._latched = 0
        self.fired = 0  # status bits (with a lane) that were ever seen set
        self.version = 0  # bumped by every change

    def feed_all(self, tokens: list[Token]) -> None:
        for token in tokens:
            self.feed(token)

    def feed(self, token: Token) -> bool:
        """Take one trace item; True if something changed."""
        kind = token.kind
        if kind == "irq":
            level, status = int(token.level), token.status  # type: ignore[attr-defined]
            changed = self._observe(token.start, status, 0xFFFFFFFF)
            if level != self._level:
                self._level = level
                self._irq_t.append(token.start)
                self._irq_level.append(level)
                changed = True
            return self._bump(changed)
        if kind != "reg":
            return False
        offset, width = token.offset, token.width  # type: ignore[attr-defined]
        if offset >= _STATUS_OFFSET + 4 or offset + width <= _STATUS_OFFSET:
            return False
        old, mask = _status_access(offset, width, token.old)  # type: ignore[attr-defined]
        new, _ = _status_access(offset, width, token.new)  # type: ignore[attr-defined]
        changed = self._observe(token.start, old, mask)
        if token.access == "write":  # type: ignore[attr-defined]
            cleared = old & ~new & mask & _W1C
            if cleared:  # the driver acknowledged these bits (HCS 2.2.17 RW1C)
                self._ack_t.append(token.start)
                self._ack_bits.append(cleared)
                changed = True
            changed |= self._observe(token.start, new, mask)
        return self._bump(changed)

    def _observe(self, t: int, value: int, mask: int) -> bool:
        latched = (self._latched & ~mask) | (value & mask)
        if latched == self._latched:
            return False
        self._latched = latched
        self.fired |= latched & _LANE_BITS
        self._status_t.append(t)
        self._status.append(latched)
        return True

    def _bump(self, changed: bool) -> bool:
        if changed:
            self.version += 1
        return changed

    # --- queries ------------------------------------------------------------------------

    def lane_bits(self) -> list[int]:
        """The status bits that ever latched, normal status first (bit order)."""
        return [bit for bit in sorted(STATUS_BITS) if self.fired >> bit & 1]

    def highs(self, bit: int | None, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) in ps of the intervals where the IRQ line (``bit`` None) or a
        latched status bit is high within [t0, t1] (clipped to it)."""
        all_times = (self._irq_t if bit is None else self._status_t).values
        a = int(np.searchsorted(all_times, t0, side="right")) - 1  # the level in force at t0
        b = int(np.searchsorted(all_times, t1, side="right"))
        window = slice(max(a, 0), b)  # only the visible changes are looked at
        times = all_times[window].copy()
        if bit is None:
            levels = self._irq_level.values[window].astype(np.int8)
        else:
            status = self._status.values[window]
            levels = ((status >> np.uint32(bit)) & np.uint32(1)).astype(np.int8)
        if a < 0:  # low before the first change
            times, levels = np.r_[t0, times], np.r_[np.int8(0), levels]
        times[0] = max(times[0], t0)
        edges = np.flatnonzero(np.diff(levels, prepend=np.int8(0)))  # rises and falls
        rises = edges[levels[edges] == 1]
        falls = edges[levels[edges] == 0]
        starts = times[rises]
        ends = np.r_[times[falls], np.int64(t1)][: len(starts)]
        return starts, ends

    def acks(self, bit: int | None, t0: int, t1: int) -> np.ndarray:
        """Times (ps) in [t0, t1] of the W1C writes that cleared ``bit`` (None: any)."""
        times = self._ack_t.values
        a = int(np.searchsorted(times, t0, side="left"))
        b = int(np.searchsorted(times, t1, side="right"))
        window, bits = times[a:b], self._ack_bits.values[a:b]
        mask = _W1C if bit is None else 1 << bit
        return window[(bits & np.uint32(mask)) != 0].copy()


# --------------------------------------------------------------------------- one lane


def _merge(xs: np.ndarray, xe: np.ndarray, min_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel intervals at least ``min_width`` wide, overlapping ones merged."""
    if not len(xs):
        return xs, xe
    xe = np.maximum(xe, xs + min_width)
    reach = np.maximum.accumulate(xe)
    breaks = np.flatnonzero(xs[1:] > reach[:-1])
    return xs[np.r_[0, breaks + 1]], reach[np.r_[breaks, len(xs) - 1]]


class IrqLane(pg.GraphicsObject):
    """One lane (row ``row``, y from -row to -row-1): the level drawn high/low over the
    visible window, and the "ack" ticks of the bit. Painted in device pixels."""

    def __init__(self, index: IrqIndex, bit: int | None, row: int, colour: QtGui.QColor,
                 span: Callable[[], tuple[int, int]]) -> None:
        super().__init__()
        self._index, self._bit, self._row, self._colour = index, bit, row, colour
        self._span = span
        self._rect: QtCore.QRectF | None = None
        self._cache: tuple[tuple[Any, ...], tuple[np.ndarray, ...]] | None = None
        self._font = QtGui.QFont()
        self._font.setPointSizeF(7.0)
        self._ack_width = QtGui.QFontMetricsF(self._font).horizontalAdvance(_ACK_TEXT)

    def set_row(self, row: int) -> None:
        if row != self._row:
            self.prepareGeometryChange()
            self._row, self._rect = row, None

    def refresh(self) -> None:
        """The index or the span changed: repaint."""
        self.prepareGeometryChange()
        self._rect = None
        self.update()

    def dataBounds(self, axis: int, frac: float = 1.0,
                   orthoRange: Any = None) -> tuple[float, float] | None:
        if axis == 0:
            t0, t1 = self._span()
            return (t0 / PS_PER_S, t1 / PS_PER_S) if t1 > t0 else None
        return (-self._row - 1.0, -float(self._row))

    def boundingRect(self) -> QtCore.QRectF:
        if self._rect is None:
            view = self.viewRect()
            x0, width = (view.left(), view.width()) if view is not None else (0.0, 1.0)
            self._rect = QtCore.QRectF(x0, -self._row - 1.0, width, 1.0)
        return self._rect

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()
        self._rect = None
        super().viewTransformChanged()

    def paint(self, painter: QtGui.QPainter, *_: Any) -> None:
        view = self.getViewBox()
        if view is None:
            return
        device = painter.worldTransform()  # item -> device pixels (also when grabbed)
        (x0, x1), _ = view.viewRange()
        first, last = self._span()
        t0, t1 = max(int(x0 * PS_PER_S), first), min(int(x1 * PS_PER_S) + 1, last)
        if t1 <= t0:
            return
        sx, ox, sy, oy = device.m11(), device.m31(), device.m22(), device.m32()
        starts, ends, acks = self._geometry(t0, t1, sx, ox)
        high, low = (-self._row - 0.12) * sy + oy, (-self._row - 0.58) * sy + oy
        below = (-self._row - 0.95) * sy + oy
        painter.save()
        painter.resetTransform()
        painter.setPen(pg.mkPen(self._colour, width=1))
        painter.drawLine(QtCore.QPointF(t0 / PS_PER_S * sx + ox, low),
                         QtCore.QPointF(t1 / PS_PER_S * sx + ox, low))
        fill = QtGui.QColor(self._colour)
        fill.setAlpha(110)
        painter.setBrush(fill)
        for xs, xe in zip(starts.tolist(), ends.tolist(), strict=True):
            painter.drawRect(QtCore.QRectF(xs, high, xe - xs, low - high))
        painter.setPen(pg.mkPen(_ACK_COLOUR, width=1.5))
        painter.setFont(self._font)
        gap = self._ack_width + 6
        ack_list = acks.tolist()
        for k, x in enumerate(ack_list):
            painter.drawLine(QtCore.QPointF(x, low), QtCore.QPointF(x, low + 5))
            if k + 1 == len(ack_list) or ack_list[k + 1] - x >= gap:
                painter.drawText(QtCore.QPointF(x + 2, below), _ACK_TEXT)
        painter.restore()

    def _geometry(self, t0: int, t1: int, sx: float,
                  ox: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Merged pulse intervals and ack positions in device pixels (cached per view)."""
        key = (t0, t1, sx, ox, self._index.version)
        if self._cache is not None and self._cache[0] == key:
            starts, ends, acks = self._cache[1]
            return starts, ends, acks
        scale = sx / PS_PER_S
        rises, falls = self._index.highs(self._bit, t0, t1)
        starts, ends = _merge(rises * scale + ox, falls * scale + ox, _MIN_PULSE_PX)
        acks = np.empty(0)
        if self._bit is not None:
            pixels = np.round(self._index.acks(self._bit, t0, t1) * scale + ox)  # sorted
            acks = pixels[np.r_[True, pixels[1:] != pixels[:-1]]] if pixels.size else pixels
        self._cache = (key, (starts, ends, acks))
        return starts, ends, acks


# --------------------------------------------------------------------------- the widget


class IrqTimeline(QWidget):
    """The IRQ line and the latched interrupt status bits of a trace, lane by lane."""

    def __init__(self, trace: Trace | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._trace: Trace | None = None
        self._index = IrqIndex()
        self._lanes: dict[int | None, IrqLane] = {}
        self._lanes_shown: list[int | None] | None = None
        self._label_width: int | None = None
        self._span = (0, 0)
        self._clock = LiveClock.shared()  # coalesced live updates, in the IRQ slot
        self._widget = pg.PlotWidget()
        self._plot: pg.PlotItem = self._widget.getPlotItem()
        self._plot.setMouseEnabled(x=True, y=False)
        self._plot.hideButtons()
        self._plot.setLabel("bottom", "time", units="s")
        self._plot.showGrid(x=True, y=False, alpha=0.2)
        view = self._plot.getViewBox()
        view.enableAutoRange(y=False)
        # a range set by the linked waveform takes effect now, not lazily in the paint
        # (where it would move every lane and queue a second frame)
        view.sigXRangeChanged.connect(lambda *_: view.updateMatrix())
        dash = QtCore.Qt.PenStyle.DashLine
        self._cursors = [pg.InfiniteLine(angle=90, movable=False,
                                         pen=pg.mkPen(colour, width=1, style=dash))
                         for colour in _CURSOR_COLOURS]
        for cursor in self._cursors:
            cursor.setZValue(10)  # above the lanes
            cursor.hide()
            self._plot.addItem(cursor, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._widget)
        self.set_trace(trace)

    # --- API ------------------------------------------------------------------------------

    @property
    def plot_item(self) -> pg.PlotItem:
        return self._plot

    @property
    def index(self) -> IrqIndex:
        return self._index

    def lanes(self) -> list[str]:
        """Lane names, top to bottom."""
        return [IRQ_LANE if bit is None else STATUS_BITS[bit].name for bit in self._lanes]

    def set_trace(self, trace: Trace | None) -> None:
        if self._trace is not None:
            self._trace.events.appended.disconnect(self._on_appended)
            self._trace.events.cleared.disconnect(self._on_cleared)
        self._trace = trace
        self._index = IrqIndex()
        for lane in self._lanes.values():
            self._plot.removeItem(lane)
        self._lanes, self._lanes_shown = {}, None
        if trace is not None:
            self._index.feed_all(trace.tokens)
            trace.events.appended.connect(self._on_appended)
            trace.events.cleared.connect(self._on_cleared)
        self.flush()
        self._plot.enableAutoRange(x=True)

    def set_x_link(self, plot_item: pg.PlotItem | None) -> None:
        """Share the X axis (seconds) with another plot, e.g. the waveform's."""
        self._plot.setXLink(plot_item)

    def set_cursor_times(self, a: int | None, b: int | None) -> None:
        """Show the two cursors at ``a`` and ``b`` ps (None hides one)."""
        for cursor, ps in zip(self._cursors, (a, b), strict=True):
            cursor.setVisible(ps is not None)
            if ps is not None:
                cursor.setValue(ps / PS_PER_S)

    def cursor_times(self) -> tuple[int | None, int | None]:
        a, b = (round(c.value() * PS_PER_S) if c.isVisible() else None for c in self._cursors)
        return a, b

    def set_label_width(self, pixels: int | None) -> None:
        """Fix the lane-name column width (to line up with the waveform's); None: fit the
        lane names."""
        self._label_width = pixels
        self._plot.getAxis("left").setWidth(pixels)
        self._lanes_shown = None
        self.flush()

    def close(self) -> bool:
        self._clock.cancel(self.flush)
        self.set_trace(None)
        return super().close()

    # --- updates --------------------------------------------------------------------------

    def _on_appended(self, token: Token) -> None:
        if self._index.feed(token):
            self._clock.request(Slot.IRQ, self.flush)  # once per tick, however many

    def _on_cleared(self) -> None:
        self.set_trace(self._trace)

    def flush(self) -> None:
        """Apply what arrived since the last update (the live clock calls this at ~15 Hz)."""
        self._span = self._trace.span() if self._trace is not None else (0, 0)
        wanted: list[int | None] = [None, *self._index.lane_bits()]
        if wanted != self._lanes_shown:
            self._lanes_shown = wanted
            lanes = {}
            for row, bit in enumerate(wanted):
                lane = self._lanes.pop(bit, None)
                if lane is None:
                    lane = IrqLane(self._index, bit, row, _lane_colour(bit), lambda: self._span)
                    self._plot.addItem(lane)
                lane.set_row(row)
                lanes[bit] = lane
            self._lanes = lanes
            names = self.lanes()
            axis = self._plot.getAxis("left")
            axis.setTicks([[(-row - 0.35, name) for row, name in enumerate(names)], []])
            if self._label_width is None:  # room for the longest name from the first paint
                metrics = QtGui.QFontMetrics(axis.style["tickFont"] or self.font())
                axis.setWidth(max(metrics.horizontalAdvance(n) for n in names) + 16)
            self._plot.setYRange(-len(wanted), 0, padding=0.02)
        for lane in self._lanes.values():
            lane.refresh()


def _lane_colour(bit: int | None) -> QtGui.QColor:
    if bit is None:
        return _IRQ_COLOUR
    return _ERROR_COLOUR if bit >= 16 else _NORMAL_COLOUR
