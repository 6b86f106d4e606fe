"""One annotation lane of the waveform view: the decoded tokens of one kind as boxes.

``SD_ANNOTATIONS`` and ``SPI_ANNOTATIONS`` declare the lanes of each bus and the tokens
each shows. A lane indexes its tokens in numpy columns (start, end, reach = running
maximum of the ends, error) so a paint bisects the visible window instead of walking
the trace. Boxes at least ``MIN_BOX_PX`` wide are drawn one by one, coloured by kind (red
for errors), with the longest label that fits (libsigrokdecode's long-to-short labels,
style.md §4; a fixed-pitch font makes fitting a length test), elided otherwise; labels
not computed within LABEL_BUDGET_S come with the next paint. Narrower boxes are merged
per pixel column into "dense" runs (red if any of them is an error), so a paint draws at
most about one box per two pixels whatever the zoom (style.md rule 12, PulseView's
``draw_annotations``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from sdmodel.decode.fields import compact_fields
from sdmodel.tokens import (
    PS_PER_S,
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    Line,
    ResponseToken,
    SpiToken,
    Token,
)
from widgets.live_clock import LiveClock, Slot
from widgets.palette import ERROR, KIND_COLORS, is_error, qcolor, token_color
from widgets.qt import Qt, QtCore, QtGui, pg
from widgets.waveform.lane_item import LaneItem

__all__ = [
    "AnnotationLane",
    "LaneTokens",
    "LABEL_BUDGET_S",
    "MIN_BOX_PX",
    "SD_ANNOTATIONS",
    "SPI_ANNOTATIONS",
    "TokenIndex",
    "labels",
    "tooltip_text",
]

MIN_BOX_PX = 3.0  # narrower boxes merge into dense runs
LABEL_BUDGET_S = 0.002  # new labels per paint; the rest follow in the next paint
_TEXT_MARGIN_PX = 3.0
_LABEL_CACHE = 50_000  # tokens whose labels a lane remembers
_TEXT = "#10141a"


# --- which tokens each lane shows ------------------------------------------------------------

LaneTokens = tuple[str, Callable[[Token], bool]]  # lane name, the tokens it shows
_SD_BUS = (CommandToken, ResponseToken, DataToken, CrcStatusToken, BusyToken)
_SPI_IDLE = ("fill", "deselected")  # SPI runs that carry nothing (Part A idle bytes)


def _on(line: Line, *classes: type) -> Callable[[Token], bool]:
    def accepts(token: Token) -> bool:
        return isinstance(token, classes) and token.line is line
    return accepts


def _spi_run(token: Token) -> bool:
    """Simulated SPI byte runs (not idle ones) and decoded SPI tokens (line SPI)."""
    if isinstance(token, SpiToken):
        return token.what not in _SPI_IDLE
    return isinstance(token, _SD_BUS) and token.line is Line.SPI


def _is_finding(token: Token) -> bool:
    return isinstance(token, FindingToken)


SD_ANNOTATIONS: tuple[LaneTokens, ...] = (
    ("CMD", _on(Line.CMD, CommandToken, ResponseToken)),  # commands and responses
    ("DAT", _on(Line.DAT, DataToken, CrcStatusToken, BusyToken)),  # blocks, CRC status, busy
    ("Findings", _is_finding),
)
SPI_ANNOTATIONS: tuple[LaneTokens, ...] = (
    ("SPI", _spi_run),
    ("Findings", _is_finding),
)


# --- labels, long to short -------------------------------------------------------------------


def _duration(token: Token) -> str:
    return pg.siFormat((token.end - token.start) / PS_PER_S, precision=3, suffix="s")


def _crc(ok: bool) -> str:
    return "CRC ok" if ok else "CRC bad"


def _command(t: CommandToken) -> tuple[str, ...]:
    short = t.name.split()[0]  # "CMD17", "ACMD41"
    bad = "" if t.crc_ok else f" {_crc(False)}"
    return (f"{t.name} arg=0x{t.arg:08X}{bad}", f"{short} 0x{t.arg:08X}{bad}", short,
            short.replace("CMD", ""))  # "17", "A41"


def _response(t: ResponseToken) -> tuple[str, ...]:
    fields = " ".join(k if v == "1" else f"{k}={v}" for k, v in compact_fields(t).items())
    bad = "" if t.crc_ok else f" {_crc(False)}"
    return (f"{t.label()}{bad} {fields}".rstrip(), f"{t.label()}{bad}", t.type)


def _data(t: DataToken) -> tuple[str, ...]:
    return (f"{t.label()} {_crc(t.crc_ok)}", f"{t.nbytes} B {_crc(t.crc_ok)}", f"{t.nbytes} B",
            "D")


def _crc_status(t: CrcStatusToken) -> tuple[str, ...]:
    meaning = {s.value: s.name.lower() for s in CrcStatus}.get(t.status, "invalid")
    return (f"CRC status {t.status:03b} {meaning}", f"CRC {t.status:03b}", f"{t.status:03b}")


def _busy(t: BusyToken) -> tuple[str, ...]:
    return (f"{t.label()} {_duration(t)}", t.label(), "busy", "B")


def _finding(t: FindingToken) -> tuple[str, ...]:
    return (t.message or t.code, t.code, "!")


def _hex(data: bytes | None, limit: int = 8) -> str:
    if data is None:
        return "(dropped)"
    more = "..." if len(data) > limit else ""
    return data[:limit].hex(" ").upper() + more


# SpiToken.what -> labels (Part A framing: a run of bytes with one meaning)
_SPI: dict[str, Callable[[SpiToken], tuple[str, ...]]] = {
    "cmd": lambda t: (f"{t.info.get('name', 'command')} arg={t.info.get('arg', '?')}",
                      str(t.info.get("name", "command")).split()[0],
                      str(t.info.get("name", "C")).split()[0].replace("CMD", "")),
    "rsp": lambda t: (f"response {_hex(t.miso)}", _hex(t.miso, 2), "R"),
    "data": lambda t: (" ".join(str(x) for x in (
        "data", t.info.get("dir", ""), f"{t.info['nbytes']} B" if "nbytes" in t.info else "",
        f"CRC {t.info['crc']}" if "crc" in t.info else "") if x), "data", "D"),
    "data_response": lambda t: (f"data response {_hex(t.miso)}", _hex(t.miso, 1), "DR"),
    "busy": lambda t: (f"busy {_duration(t)}", "busy", "B"),
    "data_error": lambda t: (f"data error token {t.info.get('value', '')} "
                             f"{t.info.get('reason', '')}".rstrip(), "data error", "E"),
    "stop_tran": lambda t: ("stop tran token", "stop", "S"),
}


def _spi(t: SpiToken) -> tuple[str, ...]:
    make = _SPI.get(t.what)
    return make(t) if make else (f"{t.what} {_hex(t.mosi)}", t.what)


# token class -> labels; the first class that matches wins (subclasses first)
_LABELS: tuple[tuple[type, Callable[[Any], tuple[str, ...]]], ...] = (
    (SpiToken, _spi),
    (FindingToken, _finding),
    (CommandToken, _command),
    (ResponseToken, _response),
    (DataToken, _data),
    (CrcStatusToken, _crc_status),
    (BusyToken, _busy),
)


def labels(token: Token) -> tuple[str, ...]:
    """The texts a box may show, from the most complete to the shortest."""
    for cls, make in _LABELS:
        if isinstance(token, cls):
            return make(token)
    return (token.label(),)


def tooltip_text(token: Token) -> str:
    """The hover text: the long label, timing, the token's fields and the register
    fields it carries (R2 CID/CSD, R3 OCR, card status...)."""
    lines = [labels(token)[0]]
    timing = f"at {pg.siFormat(token.start / PS_PER_S, precision=9, suffix='s')}"
    if token.end > token.start:
        timing += f", {_duration(token)}"
        if token.period:
            hz = pg.siFormat(PS_PER_S / token.period, precision=4, suffix="Hz")
            timing += f" ({token.clocks} clocks at {hz})"
    lines.append(timing)
    lines += [f"{key}: {value}" for key, value in token.fields().items()]
    fields = compact_fields(token) if isinstance(token, (ResponseToken, DataToken)) else {}
    if fields:
        lines.append("register fields:")
        lines += [f"  {key} = {value}" for key, value in fields.items()]
    return "\n".join(lines)


# --- the index -------------------------------------------------------------------------------


class TokenIndex:
    """A lane's tokens by start, with numpy columns for window queries."""

    def __init__(self) -> None:
        self.tokens: list[Token] = []
        self.starts = np.zeros(0, dtype=np.int64)
        self.ends = np.zeros(0, dtype=np.int64)
        self.reach = np.zeros(0, dtype=np.int64)  # running maximum of the ends
        self.errors = np.zeros(0, dtype=bool)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, tokens: list[Token]) -> None:
        if not tokens:
            return
        n, m = self._size, len(tokens)
        if n + m > self.starts.size:
            capacity = max(1024, 2 * (n + m))
            for name in ("starts", "ends", "reach", "errors"):
                old = getattr(self, name)
                grown = np.zeros(capacity, dtype=old.dtype)
                grown[:n] = old[:n]
                setattr(self, name, grown)
        starts = np.fromiter((t.start for t in tokens), dtype=np.int64, count=m)
        ends = np.fromiter((max(t.end, t.start) for t in tokens), dtype=np.int64, count=m)
        self.starts[n:n + m] = starts
        self.ends[n:n + m] = ends
        self.errors[n:n + m] = [is_error(t) for t in tokens]
        self.tokens += tokens
        self._size = n + m
        in_order = bool(np.all(starts[1:] >= starts[:-1])) and (
            n == 0 or starts[0] >= self.starts[n - 1])
        if not in_order:  # late tokens (rare): sort everything again
            order = np.argsort(self.starts[:self._size], kind="stable")
            for name in ("starts", "ends", "errors"):
                column = getattr(self, name)
                column[:self._size] = column[:self._size][order]
            self.tokens = [self.tokens[i] for i in order.tolist()]
            n = 0
        prev = self.reach[n - 1:n] if n else np.zeros(0, dtype=np.int64)
        self.reach[n:self._size] = np.maximum.accumulate(
            np.concatenate((prev, self.ends[n:self._size])))[prev.size:]

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Indices of tokens overlapping [t0, t1), instants in it included, by start."""
        n = self._size
        hi = int(np.searchsorted(self.starts[:n], t1, side="left"))
        lo = int(np.searchsorted(self.reach[:n], t0, side="left"))
        idx = np.arange(lo, max(lo, hi))
        return idx[(self.ends[idx] > t0) | (self.starts[idx] >= t0)]


# --- the lane --------------------------------------------------------------------------------


class AnnotationLane(LaneItem):
    """Boxes of the tokens ``accepts`` takes, between y = ``bottom`` and ``bottom +
    height`` (view units; x in seconds), hidden from ``horizon`` on."""

    PAD = 0.12  # of the lane height, above and below the boxes

    def __init__(self, name: str, bottom: float, height: float,
                 accepts: Callable[[Token], bool]) -> None:
        super().__init__(bottom, height)
        self.name = name
        self.accepts = accepts
        self.index = TokenIndex()
        self.horizon: int | None = None
        self.painted_boxes = 0  # boxes (single or merged) drawn by the last paint
        self.painted_labels = 0
        self._labels: dict[int, tuple[str, ...]] = {}
        # fixed pitch: a label's width is its length times one advance, no text layout
        self._font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self._font.setPointSizeF(8.5)
        self._char_px = QtGui.QFontMetricsF(self._font).horizontalAdvance("M")
        self._clock = LiveClock.shared()  # labels a paint had no time for: the next frame
        outline = QtGui.QPen(qcolor("#000000", 140), 1)
        outline.setCosmetic(True)
        self._outline = outline

    def offer(self, tokens: Iterable[Token]) -> int:
        """Index the tokens this lane shows; returns how many it took."""
        taken = [t for t in tokens if self.accepts(t)]
        self.index.add(taken)
        return len(taken)

    def clear(self) -> None:
        self.index = TokenIndex()
        self._labels.clear()
        self.update()

    def set_horizon(self, horizon: int | None) -> None:
        self.horizon = horizon
        self.update()

    def token_at(self, ps: int, tolerance: int = 0) -> Token | None:
        """The token under ``ps`` (the shortest of those containing it), else the nearest
        one within ``tolerance`` ps; tokens from the horizon on do not count."""
        idx = self.index.window(ps - tolerance, ps + tolerance + 1)
        if self.horizon is not None:
            idx = idx[self.index.starts[idx] < self.horizon]
        if idx.size == 0:
            return None
        starts, ends = self.index.starts[idx], self.index.ends[idx]
        distance = np.maximum(0, np.maximum(starts - ps, ps - ends))
        best = np.lexsort((ends - starts, distance))[0]
        return self.index.tokens[int(idx[best])]

    def _labels_of(self, token: Token, deadline: float) -> tuple[str, ...] | None:
        """The token's labels, computed if time remains before ``deadline`` (a response's
        register fields cost ~0.1 ms); None otherwise."""
        found = self._labels.get(id(token))
        if found is None and time.perf_counter() < deadline:
            if len(self._labels) > _LABEL_CACHE:
                self._labels.clear()
            found = self._labels[id(token)] = labels(token)
        return found

    def paint(self, painter: QtGui.QPainter, *args: object) -> None:
        self.painted_boxes = self.painted_labels = 0
        view = self.viewRect()
        if view is None or view.width() <= 0 or not len(self.index):
            return
        t0 = math.floor(view.left() * PS_PER_S)
        t1 = math.ceil(view.right() * PS_PER_S)
        if self.horizon is not None:
            t1 = min(t1, self.horizon)
        if t1 <= t0:
            return
        idx = self.index.window(t0, t1)
        if idx.size == 0:
            return
        transform = painter.transform()
        scale, shift = transform.m11() / PS_PER_S, transform.dx()
        left, right = t0 * scale + shift, t1 * scale + shift
        x0 = np.maximum(self.index.starts[idx] * scale + shift, left)
        x1 = np.minimum(np.minimum(self.index.ends[idx], t1) * scale + shift, right)
        pad = self.height * self.PAD
        top = transform.map(QtCore.QPointF(0, self.bottom + self.height - pad)).y()
        bottom = transform.map(QtCore.QPointF(0, self.bottom + pad)).y()
        top, bottom = min(top, bottom), max(top, bottom)
        columns = int(math.ceil(right - left))
        wide = (x1 - x0) >= MIN_BOX_PX
        if np.count_nonzero(wide) > columns // 2:  # crowded: merge everything
            wide[:] = False
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        self._paint_dense(painter, idx[~wide], x0[~wide] - left, x1[~wide] - left, columns,
                          left, top, bottom)
        self._paint_boxes(painter, idx[wide], x0[wide], x1[wide], top, bottom)
        painter.restore()

    def _paint_dense(self, painter: QtGui.QPainter, idx: np.ndarray, x0: np.ndarray,
                     x1: np.ndarray, columns: int, left: float, top: float,
                     bottom: float) -> None:
        """Boxes narrower than MIN_BOX_PX as runs of marked pixel columns."""
        if idx.size == 0 or columns < 1:
            return
        marks = np.zeros(columns + 1, dtype=np.uint8)  # 0 none, 1 token, 2 error token
        errors = self.index.errors[idx]
        c0 = np.clip(np.floor(x0).astype(np.int64), 0, columns - 1)
        c1 = np.clip(np.ceil(x1).astype(np.int64), c0 + 1, columns)
        for k in range(int(math.ceil(MIN_BOX_PX)) + 1):  # a narrow box spans few columns
            inside = c0 + k < c1
            marks[c0[inside] + k] = np.maximum(marks[c0[inside] + k], 1)
            marks[c0[inside & errors] + k] = 2
        cut = np.flatnonzero(marks[1:] != marks[:-1]) + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [marks.size]))
        kind = marks[starts]
        painter.setPen(Qt.PenStyle.NoPen)
        for mark, color in ((1, KIND_COLORS["dense"]), (2, ERROR)):
            pick = kind == mark
            if pick.any():
                painter.setBrush(qcolor(color))
                painter.drawRects([QtCore.QRectF(left + a, top, b - a, bottom - top) for a, b
                                   in zip(starts[pick].tolist(), ends[pick].tolist(), strict=True)])
                self.painted_boxes += int(pick.sum())

    def _paint_boxes(self, painter: QtGui.QPainter, idx: np.ndarray, x0: np.ndarray,
                     x1: np.ndarray, top: float, bottom: float) -> None:
        """Boxes wide enough to tell apart, each with the longest label that fits."""
        if idx.size == 0:
            return
        painter.setPen(self._outline)
        painter.setFont(self._font)
        tokens = [self.index.tokens[i] for i in idx.tolist()]
        rects = [QtCore.QRectF(a, top, b - a, bottom - top)
                 for a, b in zip(x0.tolist(), x1.tolist(), strict=True)]
        by_color: dict[int, tuple[QtGui.QColor, list[QtCore.QRectF]]] = {}
        for token, rect in zip(tokens, rects, strict=True):
            color = token_color(token)
            by_color.setdefault(color.rgba(), (color, []))[1].append(rect)
        for color, group in by_color.values():
            painter.setBrush(color)
            painter.drawRects(group)
        self.painted_boxes += len(rects)
        painter.setPen(qcolor(_TEXT))
        deadline = time.perf_counter() + LABEL_BUDGET_S
        for token, rect in zip(tokens, rects, strict=True):
            chars = int((rect.width() - 2 * _TEXT_MARGIN_PX) / self._char_px)
            if chars < 1:
                continue
            texts = self._labels_of(token, deadline)
            if texts is None:
                self._clock.request(Slot.WAVEFORM, self.update)
                continue
            text = next((t for t in texts if len(t) <= chars), None)
            if text is None:  # elided
                text = texts[-1][:chars - 1] + "\u2026" if chars > 1 else ""
            if text:
                painter.drawText(rect.adjusted(_TEXT_MARGIN_PX, 0, -_TEXT_MARGIN_PX, 0),
                                 Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                                 text)
                self.painted_labels += 1
