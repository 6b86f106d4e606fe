"""One digital signal as a lane of the waveform view, drawn from the trace's edge windows.

The lane is drawn per pixel column from two facts per column: the level at its start
and whether the signal changes inside it (style.md rule 12, peak downsampling): a line
at 0 or 1, a filled band where it changes, a hatched band for UNKNOWN bits, a faint
column where the data is still being computed. The columns become one ARGB image per
paint, so drawing costs the same at any zoom (PulseView paints logic traces per pixel
too).

A frame must not scale with the trace (gui_common.md), but ``Trace.edges`` costs about
10 us per bus token in its window (and ~0.5 ms per call), so a whole 100 M-sample trace
costs ~0.3 s per signal. A window with at most DIRECT_ITEMS trace items is rendered
straight from ``trace.edges``; wider ones come from ``EdgeTiles``, the signal as buckets
of 2^L ps (a pyramid of levels) in tiles of ``TILE`` buckets: a tile holding at most
LEAF_ITEMS trace items comes from one ``trace.edges`` window, a fuller one from its two
children (pairwise merged buckets). A frame computes the missing tiles that likely fit
in its budget (FrameBudget) and shows the others from their cached descendants, pending
where those do not reach; the view's background timer finishes them in short slices and
the lane repaints.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from sdmodel.tokens import PS_PER_S
from sdmodel.trace import Trace
from sdmodel.waveform import UNKNOWN, Edges
from widgets.palette import SIGNAL_COLORS, qcolor
from widgets.qt import QtCore, QtGui
from widgets.waveform.lane_item import LaneItem

__all__ = [
    "TILE",
    "LEAF_ITEMS",
    "DIRECT_ITEMS",
    "FrameBudget",
    "Columns",
    "EdgeTiles",
    "SignalLane",
    "LaneColors",
    "buckets_from_edges",
    "merge_pairs",
    "raster",
]

TILE = 1024  # buckets per tile
LEAF_ITEMS = 48  # a tile with at most this many trace items is rendered by trace.edges
DIRECT_ITEMS = 8  # a window with at most this many items is rendered without tiles
MIN_LEVEL = 1  # trace.edges decimates into buckets of at least 2 ps
MAX_TILES = 4096  # tiles kept per signal (1 KiB each), least recently used dropped first
PARTIAL_DEPTH = 3  # a missing tile is shown from cached descendants down to this depth
PENDING = 0x80  # packed bucket: not computed yet
ACTIVE = 0x04  # packed bucket: the signal changes strictly inside it
LEVEL = 0x03  # packed bucket: the level at its start (0, 1 or UNKNOWN)
FRAME_BUDGET_S = 0.004  # tile computing per frame, shared by the lanes
LEAF_GUESS_S = 0.001  # what a leaf tile costs before one was measured


class FrameBudget:
    """The deadline of the frame being painted, shared by all signal lanes."""

    def __init__(self, seconds: float = FRAME_BUDGET_S) -> None:
        self.seconds = seconds
        self.deadline = 0.0

    def start(self) -> None:
        self.deadline = time.perf_counter() + self.seconds


@dataclass(frozen=True)
class Columns:
    """A signal over ``n`` equal pixel columns of [t0, t1): the level at each column's
    start, whether it changes inside the column, and columns not computed yet."""

    t0: int
    t1: int
    first: np.ndarray  # uint8: 0, 1 or UNKNOWN
    active: np.ndarray  # bool
    pending: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.first.size)


def buckets_from_edges(edges: Edges, t0: int, width: int, count: int) -> np.ndarray:
    """Packed buckets [t0 + k*width, ...) for k < count: level at the bucket start and
    ACTIVE when an edge lies strictly inside (an edge on a bucket start only sets that
    bucket's level). Works for exact and for decimated Edges."""
    starts = t0 + np.arange(count, dtype=np.int64) * width
    packed = edges.at(starts).astype(np.uint8)
    rel = edges.times[1:] - t0
    inside = rel[(rel % width != 0) & (rel > 0)] // width
    packed[inside[inside < count]] |= ACTIVE
    return packed


def merge_pairs(packed: np.ndarray) -> np.ndarray:
    """Buckets (2k, 2k+1) -> bucket k of twice the width: the first one's level; ACTIVE if
    either is active or the level changes between them; PENDING if either is."""
    even, odd = packed[0::2], packed[1::2]
    changes = ((even | odd) & ACTIVE != 0) | ((even & LEVEL) != (odd & LEVEL))
    out = (even & LEVEL) | np.where(changes, ACTIVE, 0).astype(np.uint8)
    out[(even | odd) & PENDING != 0] = PENDING
    return out


_ALL_PENDING = np.full(TILE, PENDING, dtype=np.uint8)


class EdgeTiles:
    """The pyramid of one signal of one trace. Tile (L, i) covers
    [i * TILE * 2^L, (i + 1) * TILE * 2^L) in buckets of 2^L ps."""

    def __init__(self, trace: Trace, signal: str) -> None:
        self.trace = trace
        self.signal = signal
        self._tiles: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._top: dict[int, int] = {}  # level -> highest tile index cached
        self.wanted: list[tuple[int, int]] = []  # tiles the last frame lacked
        self.computed = 0  # tiles rendered by trace.edges (for tests and benchmarks)
        self.leaf_s = LEAF_GUESS_S  # running average of a leaf tile's cost
        self._grace = False  # the next leaf starts even if it may end after the deadline
        self.generation = 0  # bumped whenever what the trace shows may have changed

    def __len__(self) -> int:
        return len(self._tiles)

    def clear(self) -> None:
        self.generation += 1
        self._tiles.clear()
        self._top.clear()
        self.wanted = []

    def invalidate_from(self, ps: int) -> None:
        """Drop every tile reaching past ``ps`` (a bus token appended there)."""
        self.generation += 1
        for level, top in list(self._top.items()):
            first = max(0, ps) // (TILE << level)
            for i in range(first, top + 1):
                self._tiles.pop((level, i), None)
            self._top[level] = min(top, first - 1)

    # --- tiles ---------------------------------------------------------------------------

    def _items(self, level: int, i: int) -> int:
        span = TILE << level
        starts = self.trace.starts
        return bisect.bisect_left(starts, (i + 1) * span) - bisect.bisect_left(starts, i * span)

    def _store(self, key: tuple[int, int], packed: np.ndarray) -> np.ndarray:
        self._tiles[key] = packed
        self._top[key[0]] = max(self._top.get(key[0], key[1]), key[1])
        while len(self._tiles) > MAX_TILES:
            self._tiles.popitem(last=False)
        return packed

    def ensure(self, level: int, i: int, deadline: float) -> np.ndarray | None:
        """Tile (level, i), computing what it needs while time remains before ``deadline``
        (perf_counter seconds); None when the deadline came first (progress is kept)."""
        key = (level, i)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        if level <= MIN_LEVEL or self._items(level, i) <= LEAF_ITEMS:
            began = time.perf_counter()
            if began + self.leaf_s >= deadline and not self._grace:  # likely too late
                return None
            self._grace = False
            width = 1 << level
            t0 = i * TILE * width
            edges = self.trace.edges(self.signal, t0, t0 + TILE * width, max_edges=2 * TILE)
            self.computed += 1
            self.leaf_s += 0.2 * (time.perf_counter() - began - self.leaf_s)
            return self._store(key, buckets_from_edges(edges, t0, width, TILE))
        left = self.ensure(level - 1, 2 * i, deadline)
        right = self.ensure(level - 1, 2 * i + 1, deadline) if left is not None else None
        if left is None or right is None:
            return None
        return self._store(key, merge_pairs(np.concatenate((left, right))))

    def _partial(self, level: int, i: int, depth: int) -> np.ndarray | None:
        """Tile (level, i) from whatever descendants are cached; None if none is."""
        tile = self._tiles.get((level, i))
        if tile is not None or depth == 0 or level <= MIN_LEVEL:
            return tile
        left = self._partial(level - 1, 2 * i, depth - 1)
        right = self._partial(level - 1, 2 * i + 1, depth - 1)
        if left is None and right is None:
            return None
        halves = (_ALL_PENDING if left is None else left, _ALL_PENDING if right is None else right)
        return merge_pairs(np.concatenate(halves))

    def _frame_tile(self, level: int, i: int, deadline: float) -> tuple[np.ndarray, bool]:
        """Tile (level, i) for a frame and whether it is complete. A missing tile is
        computed only if the leaves it lacks (its items over LEAF_ITEMS, times the share
        its cached descendants do not cover) likely fit before ``deadline`` at the running
        leaf cost; otherwise it shows what its descendants hold, the rest pending (a
        whole-trace tile fills in progressively as the background computes it)."""
        key = (level, i)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile, True
        part = self._partial(level, i, PARTIAL_DEPTH)
        if part is not None and not np.any(part & PENDING):
            return self._store(key, part), True  # its descendants cover it all
        lacking = 1.0 if part is None else np.count_nonzero(part & PENDING) / TILE
        leaves = lacking * -(-self._items(level, i) // LEAF_ITEMS)
        if time.perf_counter() + leaves * self.leaf_s < deadline:
            tile = self.ensure(level, i, deadline)
            if tile is not None:
                return tile, True
            part = self._partial(level, i, PARTIAL_DEPTH)
        return (_ALL_PENDING if part is None else part), False

    def work(self, deadline: float, grace: bool = False) -> bool:
        """Compute the tiles the last frame lacked until ``deadline``; True when none is
        left. With ``grace`` the first leaf starts even if it may end after the deadline
        (so a background slice always makes progress, however slow a leaf is)."""
        self._grace = grace
        while self.wanted:
            if self.ensure(*self.wanted[0], deadline) is None:
                return False
            self.wanted.pop(0)
        return True

    # --- columns -------------------------------------------------------------------------

    def columns(self, t0: int, t1: int, n: int, deadline: float) -> Columns:
        """The signal over ``n`` columns of [t0, t1): straight from ``trace.edges`` when
        the window holds at most DIRECT_ITEMS trace items, else from the finest level whose
        buckets are not wider than a column; tiles missing at ``deadline`` are pending."""
        if n < 1 or t1 <= t0:
            raise ValueError(f"no columns for [{t0}, {t1}) in {n} pixels")
        bounds = t0 + np.round(np.arange(n + 1) * ((t1 - t0) / n)).astype(np.int64)
        starts = self.trace.starts
        if bisect.bisect_left(starts, t1) - bisect.bisect_left(starts, t0) <= DIRECT_ITEMS:
            self.wanted = []
            return self._direct(bounds)
        level = max(MIN_LEVEL, int(math.floor(math.log2(max(2.0, (t1 - t0) / n)))))
        width = 1 << level
        lo = bounds[:-1] // width
        hi = np.maximum(lo, (bounds[1:] - 1) // width)
        first_tile, last_tile = int(lo[0]) // TILE, int(hi[-1]) // TILE
        tiles = []
        missing = []
        self._grace = False
        for i in range(first_tile, last_tile + 1):
            tile, complete = self._frame_tile(level, i, deadline)
            tiles.append(tile)
            if not complete:
                missing.append((level, i))
        self.wanted = missing
        packed = np.concatenate(tiles)
        lo -= first_tile * TILE
        hi -= first_tile * TILE
        levels = packed & LEVEL
        active = np.concatenate(([0], np.cumsum((packed & ACTIVE) != 0)))
        change = np.concatenate(([0, 0], np.cumsum(levels[1:] != levels[:-1])))
        pending = np.concatenate(([0], np.cumsum(packed & PENDING != 0)))
        return Columns(
            t0, t1, levels[lo],
            (active[hi + 1] > active[lo]) | (change[hi + 1] > change[lo + 1]),
            pending[hi + 1] > pending[lo],
        )

    def _direct(self, bounds: np.ndarray) -> Columns:
        """Columns between ``bounds`` from one edges window (few tokens in it)."""
        n = bounds.size - 1
        edges = self.trace.edges(self.signal, int(bounds[0]), int(bounds[-1]),
                                 max_edges=2 * n)
        times = edges.times[1:]
        column = np.searchsorted(bounds, times, side="right") - 1
        active = np.zeros(n, dtype=bool)
        active[column[times != bounds[column]]] = True
        return Columns(int(bounds[0]), int(bounds[-1]), edges.at(bounds[:-1]), active,
                       np.zeros(n, dtype=bool))


# --- drawing ---------------------------------------------------------------------------------

# column states, and the codes of raster()'s column patterns
_LOW, _HIGH, _UNKNOWN, _BAND, _PENDING, _FULL, _HATCHED = 0, 1, UNKNOWN, 3, 4, 5, 6
HATCH = 6  # pixels between the diagonals of an UNKNOWN band


def _argb(color: QtGui.QColor) -> int:
    return (color.alpha() << 24) | (color.red() << 16) | (color.green() << 8) | color.blue()


@dataclass(frozen=True)
class LaneColors:
    """ARGB32 pixel values of a lane."""

    line: int
    band: int
    pending: int

    @classmethod
    def of(cls, hex_color: str) -> LaneColors:
        return cls(_argb(qcolor(hex_color)), _argb(qcolor(hex_color, 110)),
                   _argb(qcolor("#ffffff", 28)))


def _patterns(height: int, colors: LaneColors) -> np.ndarray:
    """Pixel columns by code: _LOW, _HIGH, _BAND, _PENDING, _FULL (a vertical line), then
    HATCH phases of an UNKNOWN band (the diagonals shift by one row per column)."""
    columns = np.zeros((height, _HATCHED + HATCH), dtype=np.uint32)
    columns[-1, _LOW] = colors.line
    columns[0, _HIGH] = colors.line
    columns[1:-1, _BAND] = colors.band
    columns[:, _PENDING] = colors.pending
    columns[:, _FULL] = colors.line
    rows = np.arange(height)[:, None]
    columns[:, _HATCHED:] = np.where((rows + np.arange(HATCH)) % HATCH == 0, colors.line, 0)
    columns[[0, -1], _BAND] = columns[[0, -1], _HATCHED:] = colors.line
    return columns


def raster(cols: Columns, height: int, colors: LaneColors) -> np.ndarray:
    """The lane as ``height`` x ``len(cols)`` ARGB32 pixels, one column per Columns
    column: level 1 on the top row, 0 on the bottom row, a vertical line where the level
    changes at a column boundary, an outlined band where it changes inside columns, a
    hatched outlined band for UNKNOWN, a faint column where tiles are pending. One gather
    from a few column patterns: drawing costs the same whatever the signal does."""
    state = np.where(cols.active, _BAND, cols.first).astype(np.intp)
    state[cols.pending] = _PENDING
    area = (state == _BAND) | (state == _UNKNOWN)
    flat = state <= _HIGH
    # full-height lines: level steps between line columns, and the ends of area runs
    same = state[1:] == state[:-1]
    full = np.concatenate(([False], flat[1:] & flat[:-1] & ~same))
    full |= area & ~np.concatenate(([False], same)) | area & ~np.concatenate((same, [False]))
    code = np.where(state == _UNKNOWN, _HATCHED + np.arange(state.size) % HATCH, state)
    code[full] = _FULL
    return np.take(_patterns(height, colors), code, axis=1)  # C order: QImage rows


class SignalLane(LaneItem):
    """Draws ``signal`` between y = ``bottom`` and y = ``bottom + height`` (view units;
    x in seconds) from an EdgeTiles source, only over the visible window."""

    PAD = 0.2  # of the lane height, above level 1 and below level 0

    def __init__(self, signal: str, bottom: float, height: float, budget: FrameBudget) -> None:
        super().__init__(bottom, height)
        self.signal = signal
        self.budget = budget
        self.tiles: EdgeTiles | None = None
        self.shown: tuple[int, int] = (0, 0)  # [start, end) ps with data to draw
        self.last_columns: Columns | None = None
        self.colors = LaneColors.of(SIGNAL_COLORS.get(signal, "#cccccc"))
        # the last complete picture: a repaint of the same window (another lane, the
        # cursor, the linked IRQ view) draws it again instead of computing it again
        self._picture: tuple[tuple[int, ...], Columns, np.ndarray, QtGui.QImage] | None = None

    def set_source(self, tiles: EdgeTiles | None, shown: tuple[int, int]) -> None:
        if tiles is not self.tiles:
            self._picture = None
        self.tiles = tiles
        self.shown = shown
        self.update()

    def paint(self, painter: QtGui.QPainter, *args: object) -> None:
        self.last_columns = None
        view = self.viewRect()
        if self.tiles is None or view is None or view.width() <= 0:
            return
        t0 = max(self.shown[0], round(view.left() * PS_PER_S))
        t1 = min(self.shown[1], round(view.right() * PS_PER_S))
        if t1 <= t0:
            return
        transform = painter.transform()
        x0 = round(transform.map(QtCore.QPointF(t0 / PS_PER_S, 0)).x())
        x1 = round(transform.map(QtCore.QPointF(t1 / PS_PER_S, 0)).x())
        pad = self.height * self.PAD
        y0 = round(transform.map(QtCore.QPointF(0, self.bottom + self.height - pad)).y())
        y1 = round(transform.map(QtCore.QPointF(0, self.bottom + pad)).y())
        if x1 <= x0 or y1 - y0 < 2:
            return
        key = (t0, t1, x1 - x0, y1 - y0, self.tiles.generation)
        if self._picture is not None and self._picture[0] == key:
            _, cols, pixels, image = self._picture
        else:
            cols = self.tiles.columns(t0, t1, x1 - x0, self.budget.deadline)
            pixels = np.ascontiguousarray(raster(cols, y1 - y0 + 1, self.colors))
            image = QtGui.QImage(pixels.data, pixels.shape[1], pixels.shape[0],
                                 4 * pixels.shape[1], QtGui.QImage.Format.Format_ARGB32)
            complete = not cols.pending.any()
            self._picture = (key, cols, pixels, image) if complete else None
        self.last_columns = cols
        painter.save()
        painter.resetTransform()
        painter.drawImage(QtCore.QPointF(x0, y0), image)
        painter.restore()
