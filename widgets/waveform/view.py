"""The waveform view: bus signals and annotation lanes of a trace on one time axis.

Lanes are stacked in one PlotItem (x in seconds, simulated ps / 1e12; lane k occupies
y in [-k-1, -k], named on the left axis): the signals of the trace's bus (SD: CLK, CMD,
DAT0-3; SPI: CS, SCLK, MOSI, MISO), then the annotation lanes (SD: CMD, DAT, Findings;
SPI: SPI, Findings). Each lane is one GraphicsObject painting only the visible window
(signal_lane, annotation_lane). Appended tokens are indexed and redrawn by a ~30 Hz timer,
never one redraw per token; signal tiles missing after a frame are computed by a
background timer in short slices.

Mouse: wheel zooms around the pointer, drag pans, click sets cursor A (Shift: B) and
emits the token under it. Keys: see ``KEYS``. Any pan or zoom by the user stops following
the live edge.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdmodel.tokens import (
    PS_PER_S,
    Line,
    Token,
)
from sdmodel.trace import Trace
from sdmodel.waveform import SD_SIGNALS, SPI_SIGNALS, is_bus_token
from widgets.live_clock import LiveClock, Slot
from widgets.qt import (
    QLabel,
    Qt,
    QtCore,
    QtGui,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
    pg,
)
from widgets.waveform.annotation_lane import (
    SD_ANNOTATIONS,
    SPI_ANNOTATIONS,
    AnnotationLane,
    LaneTokens,
    tooltip_text,
)
from widgets.waveform.cursors import CursorPair, CursorReadout, measure, period_at
from widgets.waveform.signal_lane import EdgeTiles, FrameBudget, SignalLane

__all__ = ["WaveformView", "KEYS", "LaneKind"]

WORK_SLICE_S = 0.005  # background tile computing per event-loop turn
PROGRESS_S = 0.1  # repaint lanes with tiles in progress this often
INDEX_CHUNK = 8000  # trace items indexed per turn when a long trace is set
MIN_RANGE_S = 2e-9  # narrowest window (a tenth of a 50 MHz clock period)
PAN = 0.1  # of the window, per arrow key
ZOOM = 2.0  # per +/- key
HOVER_PX = 3  # how near the pointer a token must be for its tooltip

@dataclass(frozen=True)
class LaneKind:
    name: str
    signal: bool  # a bus signal (else annotations)


def _is_spi(trace: Trace) -> bool | None:
    """SPI or SD bus; None while the trace holds no bus token yet."""
    if trace.signals == SPI_SIGNALS:
        return True
    head = list(itertools.islice(trace, 256))
    if any(t.line is Line.SPI for t in head):
        return True
    return False if any(is_bus_token(t) for t in head) else None


class _PlotWidget(pg.PlotWidget):
    """Starts the frame budget of the signal lanes at each paint."""

    def __init__(self, budget: FrameBudget, painted: Callable[[], None]) -> None:
        super().__init__()
        self._budget = budget
        self._painted = painted

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        self._budget.start()
        super().paintEvent(event)
        self._painted()


class WaveformView(QWidget):
    """Waveforms and annotations of a Trace; see the module docstring."""

    sigTokenClicked = Signal(object)  # the Token under the mouse on click
    sigRangeChanged = Signal("qint64", "qint64")  # visible [t0, t1) in ps
    sigCursorsChanged = Signal(object)  # CursorReadout
    sigFollowingChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace: Trace | None = None
        self.horizon: int | None = None
        self._following = False
        self._spi: bool | None = None
        self._budget = FrameBudget()
        self._signals: list[SignalLane] = []
        self._annotations: list[AnnotationLane] = []
        self._incoming: list[Token] = []  # appended, not indexed yet
        self._backlog: list[Token] = []  # a set trace's items, indexed in chunks
        self._known_end = 0
        self._last_progress = 0.0
        self._turn = 0  # which lane's tiles the next background slice starts with
        self._hovered: Token | None = None
        self._highlight: pg.LinearRegionItem | None = None

        self._plot_widget = _PlotWidget(self._budget, self._after_paint)
        self._plot_widget.setFocusProxy(self)
        self._plot: pg.PlotItem = self._plot_widget.getPlotItem()
        self._vb: pg.ViewBox = self._plot.getViewBox()
        self._plot.hideButtons()
        self._plot.setMenuEnabled(False)
        self._plot.setLabel("bottom", units="s")
        self._plot.getAxis("bottom").setStyle(maxTickLevel=0)  # minor ticks: ~2 ms a frame
        self._plot.getAxis("left").setWidth(64)
        self._vb.setMouseEnabled(x=True, y=False)
        self._vb.enableAutoRange(enable=False)
        self._vb.setLimits(minXRange=MIN_RANGE_S)
        self._vb.sigXRangeChanged.connect(self._on_range)
        self._vb.sigRangeChangedManually.connect(self._user_moved)
        scene = self._plot.scene()
        scene.sigMouseClicked.connect(self._on_click)
        scene.sigMouseMoved.connect(self._on_hover)

        self._cursors = CursorPair(self._plot)
        self._cursors.sigMoved.connect(self._cursors_moved)
        self._readout = QLabel()
        self._readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self._plot_widget, 1)
        layout.addWidget(self._readout)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self._clock = LiveClock.shared()  # live redraws, in the waveform's slot
        self._lanes_done: set[SignalLane] = set()  # tiles computed, lane not repainted yet
        self._tick = QTimer(self)  # indexing a set trace's backlog, chunk by chunk
        self._tick.setSingleShot(True)
        self._tick.setInterval(0)
        self._tick.timeout.connect(self._flush)
        self._work = QTimer(self)
        self._work.setSingleShot(True)
        self._work.setInterval(0)
        self._work.timeout.connect(self._work_slice)
        self._layout_lanes(SD_SIGNALS, SD_ANNOTATIONS)
        self._cursors_moved()
        self.show_range(0, PS_PER_S // 1000)

    # --- the trace -----------------------------------------------------------------------

    def set_trace(self, trace: Trace | None) -> None:
        """Show ``trace`` (SD or SPI lanes, after its bus), zoomed to fit; None: nothing."""
        if self.trace is not None:
            self.trace.events.appended.disconnect(self._on_appended)
            self.trace.events.cleared.disconnect(self._on_cleared)
        self.trace = trace
        self._incoming = []
        self._hovered = None
        self._spi = None if trace is None else _is_spi(trace)
        self._relayout()
        if trace is not None:
            trace.events.appended.connect(self._on_appended)
            trace.events.cleared.connect(self._on_cleared)
            self._backlog = list(trace.tokens)
            self._known_end = trace.span()[1]
            self._index_backlog()
        self._refresh_shown()
        self.zoom_to_fit()

    def set_horizon(self, ps: int | None) -> None:
        """Show the trace up to ``ps`` only (the scheduler's horizon); None: all of it."""
        self.horizon = ps
        for lane in self._annotations:
            lane.set_horizon(ps)
        self._refresh_shown()
        if self._following:
            self._follow()

    def _relayout(self) -> None:
        if self._spi:
            self._layout_lanes(SPI_SIGNALS, SPI_ANNOTATIONS)
        else:
            self._layout_lanes(SD_SIGNALS, SD_ANNOTATIONS)

    def _layout_lanes(self, signals: tuple[str, ...],
                      annotations: tuple[LaneTokens, ...]) -> None:
        """Lanes for ``signals`` and ``annotations`` on the current trace; the same lanes
        are kept (emptied) when only the trace changes."""
        if [lane.signal for lane in self._signals] == list(signals) and \
                [lane.name for lane in self._annotations] == [name for name, _ in annotations]:
            for lane in self._annotations:
                lane.clear()
            for lane in self._signals:
                tiles = EdgeTiles(self.trace, lane.signal) if self.trace is not None else None
                lane.set_source(tiles, (0, 0))
            return
        for item in [*self._signals, *self._annotations]:
            self._plot.removeItem(item)
        self._signals = [SignalLane(name, -k - 1.0, 1.0, self._budget)
                         for k, name in enumerate(signals)]
        self._annotations = [AnnotationLane(name, -len(signals) - k - 1.0, 1.0, accepts)
                             for k, (name, accepts) in enumerate(annotations)]
        names = [*signals, *(name for name, _ in annotations)]
        for lane in [*self._signals, *self._annotations]:
            self._plot.addItem(lane, ignoreBounds=True)
        for lane in self._annotations:
            lane.set_horizon(self.horizon)
        for lane in self._signals:
            tiles = EdgeTiles(self.trace, lane.signal) if self.trace is not None else None
            lane.set_source(tiles, (0, 0))
        self._plot.getAxis("left").setTicks(
            [[(-k - 0.5, name) for k, name in enumerate(names)], []])
        self._vb.setLimits(yMin=-len(names), yMax=0)
        self._vb.setYRange(-len(names), 0, padding=0)

    def _refresh_shown(self) -> None:
        """What the signal lanes draw: the trace's span, cut at the horizon."""
        start, end = self.trace.span() if self.trace is not None else (0, 0)
        if self.horizon is not None:
            end = min(end, self.horizon)
        for lane in self._signals:
            lane.set_source(lane.tiles, (start, max(start, end)))

    def _index_backlog(self) -> None:
        chunk, self._backlog = self._backlog[:INDEX_CHUNK], self._backlog[INDEX_CHUNK:]
        for lane in self._annotations:
            lane.offer(chunk)
            lane.update()
        if self._backlog:
            self._tick.start()

    # --- live updates --------------------------------------------------------------------

    def _on_appended(self, token: Token) -> None:
        self._incoming.append(token)
        self._clock.request(Slot.WAVEFORM, self._flush)

    def _on_cleared(self) -> None:
        self._incoming = []
        self._backlog = []
        self._known_end = 0
        self._spi = None
        for lane in self._annotations:
            lane.clear()
        for lane in self._signals:
            if lane.tiles is not None:
                lane.tiles.clear()
        self._refresh_shown()

    def _flush(self) -> None:
        """Index what arrived since the last tick (after what remains of a set trace's
        items), drop the tiles it changes, follow."""
        if self.trace is None:
            return
        batch, self._incoming = self._incoming, []
        relaid = False
        if batch and self._spi is None:
            self._spi = _is_spi(self.trace)
            if self._spi:  # the first bus tokens are SPI: new lanes, index it all again
                self._relayout()
                self._backlog, relaid = list(self.trace.tokens), True
        if self._backlog:
            if not relaid:
                self._backlog += batch
            self._index_backlog()
        else:
            for lane in self._annotations:
                if lane.offer(batch):
                    lane.update()
        if not batch:
            return
        starts = [t.start for t in batch if is_bus_token(t)]
        if starts:
            changed = min(min(starts), self._known_end)
            for lane in self._signals:
                if lane.tiles is not None:
                    lane.tiles.invalidate_from(changed)
                lane.update()
        self._known_end = self.trace.span()[1]
        self._refresh_shown()
        if self._following:
            self._follow()

    def flush(self) -> None:
        """Index appended tokens now instead of at the next redraw tick."""
        self._tick.stop()
        self._clock.cancel(self._flush)
        while self._backlog:
            self._index_backlog()
        self._flush()

    # --- background tiles ----------------------------------------------------------------

    def _after_paint(self) -> None:
        if any(lane.tiles is not None and lane.tiles.wanted for lane in self._signals):
            if not self._work.isActive():
                self._work.start()

    def _work_slice(self) -> None:
        """One short slice of the tiles the last frame lacked, lanes taking turns; lanes
        that completed repaint, the others every PROGRESS_S to show their progress."""
        busy = [lane for lane in self._signals if lane.tiles is not None and lane.tiles.wanted]
        if not busy:
            return
        deadline = time.perf_counter() + WORK_SLICE_S
        self._turn = (self._turn + 1) % len(busy)
        order = busy[self._turn:] + busy[:self._turn]
        done = [lane for k, lane in enumerate(order)
                if lane.tiles is not None and lane.tiles.work(deadline, grace=k == 0)]
        unfinished = [lane for lane in busy if lane not in done]
        now = time.perf_counter()
        if unfinished and now - self._last_progress >= PROGRESS_S:
            self._last_progress = now
            done += unfinished
        self._lanes_done.update(done)
        if done:
            self._clock.request(Slot.WAVEFORM, self._show_work)
        if unfinished:
            self._work.start()

    def _show_work(self) -> None:
        """Repaint the lanes whose tiles the background computed, in the waveform's slot."""
        lanes, self._lanes_done = self._lanes_done, set()
        for lane in lanes:
            lane.update()

    def pending(self) -> bool:
        """Whether a signal lane still lacks tiles of the last frame."""
        return any(lane.tiles is not None and bool(lane.tiles.wanted) for lane in self._signals)

    def settle(self) -> None:
        """Compute every tile the last frame lacked now (tests, benchmarks) and repaint."""
        for lane in self._signals:
            if lane.tiles is not None:
                lane.tiles.work(math.inf)
            lane.update()

    # --- following -----------------------------------------------------------------------

    @property
    def following(self) -> bool:
        return self._following

    def set_following(self, on: bool) -> None:
        """Keep the right edge at the newest token's end (or the horizon)."""
        if on == self._following:
            return
        self._following = on
        self.sigFollowingChanged.emit(on)
        if on:
            self._follow()

    def _live_end(self) -> int:
        """The newest token's end, or the horizon before it."""
        end = self.trace.span()[1] if self.trace is not None else 0
        return min(end, self.horizon) if self.horizon is not None else end

    def _follow(self) -> None:
        t0, t1 = self.visible_range()
        end = self._live_end()
        if end > 0:
            self.show_range(end - (t1 - t0), end)

    # --- range ---------------------------------------------------------------------------

    def plot_item(self) -> pg.PlotItem:
        """The PlotItem (x-link target for other views: ``other.setXLink(view.plot_item())``)."""
        return self._plot

    def visible_range(self) -> tuple[int, int]:
        (x0, x1), _ = self._vb.viewRange()
        return round(x0 * PS_PER_S), round(x1 * PS_PER_S)

    def show_range(self, t0: int, t1: int) -> None:
        if t1 <= t0:
            raise ValueError(f"empty time range [{t0}, {t1})")
        self._vb.setXRange(t0 / PS_PER_S, t1 / PS_PER_S, padding=0)
        # apply the new transform now: done lazily in the paint, it makes every item
        # change geometry there and queue a second, identical frame
        self._vb.updateMatrix()

    def zoom_to_fit(self) -> None:
        """The whole trace (up to the horizon), with a 1 % margin."""
        start = self.trace.span()[0] if self.trace is not None else 0
        end = self._live_end()
        if end <= start:
            self.show_range(0, PS_PER_S // 1000)
            return
        margin = max(1, (end - start) // 100)
        self.show_range(start - margin, end + margin)

    def zoom(self, factor: float, center_ps: int | None = None) -> None:
        """Narrow the window ``factor`` times (below 1: widen) around ``center_ps``
        (default: the middle), which stays where it is on screen."""
        if not factor > 0:
            raise ValueError(f"zoom factor must be positive, not {factor}")
        t0, t1 = self.visible_range()
        c = (t0 + t1) // 2 if center_ps is None else center_ps
        self.show_range(round(c - (c - t0) / factor), round(c + (t1 - c) / factor))

    def pan(self, fraction: float) -> None:
        """Move the window by ``fraction`` of its width (negative: earlier)."""
        t0, t1 = self.visible_range()
        shift = round((t1 - t0) * fraction)
        self.show_range(t0 + shift, t1 + shift)

    def go_start(self) -> None:
        t0, t1 = self.visible_range()
        start = self.trace.span()[0] if self.trace is not None else 0
        self.show_range(start, start + (t1 - t0))

    def go_end(self) -> None:
        t0, t1 = self.visible_range()
        end = self._live_end()
        self.show_range(end - (t1 - t0), end)

    def zoom_to_cursors(self) -> None:
        """The region between cursors A and B ("zoom to selection"), if both are set."""
        a, b = self._cursors.position(0), self._cursors.position(1)
        if a is not None and b is not None and a != b:
            self.show_range(min(a, b), max(a, b))

    def center_on(self, token: Token) -> None:
        """Centre ``token`` (widening the window if it does not fit); stops following."""
        self.set_following(False)
        t0, t1 = self.visible_range()
        width = max(t1 - t0, math.ceil((token.end - token.start) / 0.8))
        middle = (token.start + token.end) // 2
        self.show_range(middle - width // 2, middle - width // 2 + width)

    def highlight(self, t0: int, t1: int) -> None:
        """Shade [t0, t1) behind the lanes (lessons); an empty span removes the shading."""
        if self._highlight is None:
            self._highlight = pg.LinearRegionItem(
                movable=False, brush=pg.mkBrush(255, 255, 255, 34),
                pen=pg.mkPen(255, 255, 255, 90))
            self._highlight.setZValue(-10)
            self._plot.addItem(self._highlight, ignoreBounds=True)
        self._highlight.setVisible(t1 > t0)
        if t1 > t0:
            self._highlight.setRegion((t0 / PS_PER_S, t1 / PS_PER_S))

    def highlighted(self) -> tuple[int, int] | None:
        if self._highlight is None or not self._highlight.isVisible():
            return None
        a, b = self._highlight.getRegion()
        return round(a * PS_PER_S), round(b * PS_PER_S)

    def _user_moved(self, _mask: object) -> None:
        self.set_following(False)

    def _on_range(self, _vb: object, _range: object) -> None:
        self.sigRangeChanged.emit(*self.visible_range())

    # --- cursors -------------------------------------------------------------------------

    def set_cursor(self, which: int, ps: int) -> None:
        """Put cursor ``which`` (0: A, 1: B) at ``ps``."""
        self._cursors.set(which, ps)

    def readout(self) -> CursorReadout:
        a = self._cursors.position(0)
        return measure(a, self._cursors.position(1),
                       period_at(self.trace, a) if a is not None else 0)

    def _cursors_moved(self) -> None:
        readout = self.readout()
        self._readout.setText(readout.text())
        self.sigCursorsChanged.emit(readout)

    # --- lanes ---------------------------------------------------------------------------

    def lanes(self) -> list[LaneKind]:
        """The lanes from top to bottom."""
        return [*(LaneKind(lane.signal, True) for lane in self._signals),
                *(LaneKind(lane.name, False) for lane in self._annotations)]

    def signal_lane(self, signal: str) -> SignalLane:
        return next(lane for lane in self._signals if lane.signal == signal)

    def annotation_lane(self, name: str) -> AnnotationLane:
        return next(lane for lane in self._annotations if lane.name == name)

    def _annotation_at(self, scene_pos: QtCore.QPointF) -> tuple[AnnotationLane, int] | None:
        """The annotation lane under a scene position and the time there (ps)."""
        if not self._vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = self._vb.mapSceneToView(scene_pos)
        for lane in self._annotations:
            if lane.bottom <= point.y() < lane.bottom + lane.height:
                return lane, round(point.x() * PS_PER_S)
        return None

    def _token_at(self, scene_pos: QtCore.QPointF) -> tuple[AnnotationLane, Token | None] | None:
        found = self._annotation_at(scene_pos)
        if found is None:
            return None
        lane, ps = found
        t0, t1 = self.visible_range()
        tolerance = round(HOVER_PX * (t1 - t0) / max(1.0, self._vb.width()))
        return lane, lane.token_at(ps, tolerance)

    # --- mouse and keys ------------------------------------------------------------------

    def _on_click(self, event: Any) -> None:
        """pyqtgraph's MouseClickEvent: left click sets cursor A, Shift+click B."""
        scene_pos = event.scenePos()
        if event.button() != Qt.MouseButton.LeftButton or \
                not self._vb.sceneBoundingRect().contains(scene_pos):
            return
        self.setFocus()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.set_cursor(1 if shift else 0, round(self._vb.mapSceneToView(scene_pos).x()
                                                 * PS_PER_S))
        hit = self._token_at(scene_pos)
        if hit is not None and hit[1] is not None:
            self.sigTokenClicked.emit(hit[1])

    def _on_hover(self, scene_pos: QtCore.QPointF) -> None:
        hit = self._token_at(scene_pos)
        token = hit[1] if hit is not None else None
        if token is self._hovered:
            return
        self._hovered = token
        for lane in self._annotations:
            lane.setToolTip(tooltip_text(token) if hit is not None and hit[0] is lane
                            and token is not None else "")

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        action = KEYS.get(Qt.Key(event.key()))
        if action is None:
            super().keyPressEvent(event)
            return
        self.set_following(False)
        action(self)
        event.accept()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.set_trace(None)
        self._work.stop()
        super().closeEvent(event)


# key -> what it does (gui task: +/- zoom around the centre, arrows pan 10 %, Home/End,
# F zoom to fit, Z zoom to the cursors)
KEYS: dict[Qt.Key, Callable[[WaveformView], None]] = {
    Qt.Key.Key_Plus: lambda v: v.zoom(ZOOM),
    Qt.Key.Key_Equal: lambda v: v.zoom(ZOOM),
    Qt.Key.Key_Minus: lambda v: v.zoom(1 / ZOOM),
    Qt.Key.Key_Left: lambda v: v.pan(-PAN),
    Qt.Key.Key_Right: lambda v: v.pan(PAN),
    Qt.Key.Key_Home: WaveformView.go_start,
    Qt.Key.Key_End: WaveformView.go_end,
    Qt.Key.Key_F: WaveformView.zoom_to_fit,
    Qt.Key.Key_Z: WaveformView.zoom_to_cursors,
}
