"""Two measurement cursors (A and B) on the waveform and what they measure.

``measure`` is the arithmetic: Δt = B - A, the clock periods in it (at the period in
force at A: the one of the last bus token that began before A, as the clock is drawn,
sdmodel.waveform) and 1/Δt. ``CursorPair`` holds the two vertical lines; dragging one
updates the readout.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sdmodel.tokens import PS_PER_S
from sdmodel.trace import Trace
from sdmodel.waveform import is_bus_token
from widgets.qt import QObject, QtGui, Signal, pg

__all__ = ["CursorReadout", "CursorPair", "measure", "period_at", "CURSOR_NAMES"]

CURSOR_NAMES = ("A", "B")
_COLORS = ("#ffd84a", "#ff8fd0")
_LOOKBACK = 4096  # trace items searched back for the bus token in force


@dataclass(frozen=True)
class CursorReadout:
    t_a: int | None  # ps
    t_b: int | None
    dt_ps: int | None  # t_b - t_a
    clocks: float | None  # dt_ps / the clock period at A
    hz: float | None  # 1 / |dt|

    def text(self) -> str:
        """One line for a status label."""
        parts = [f"{name} {pg.siFormat(t / PS_PER_S, precision=9, suffix='s')}"
                 for name, t in zip(CURSOR_NAMES, (self.t_a, self.t_b), strict=True)
                 if t is not None]
        if self.dt_ps is not None:
            parts.append(f"\u0394t {pg.siFormat(self.dt_ps / PS_PER_S, precision=6, suffix='s')}")
        if self.clocks is not None:
            parts.append(f"{self.clocks:,.2f} clocks")
        if self.hz is not None:
            parts.append(f"1/\u0394t {pg.siFormat(self.hz, precision=6, suffix='Hz')}")
        return "   ".join(parts) if parts else "click: cursor A, Shift+click: cursor B"


def measure(t_a: int | None, t_b: int | None, period_ps: int) -> CursorReadout:
    """The readout of cursors at ``t_a`` and ``t_b`` with clock period ``period_ps`` at A
    (0: unknown, no clock count)."""
    if t_a is None or t_b is None:
        return CursorReadout(t_a, t_b, None, None, None)
    dt = t_b - t_a
    clocks = dt / period_ps if period_ps > 0 else None
    return CursorReadout(t_a, t_b, dt, clocks, PS_PER_S / abs(dt) if dt else None)


def period_at(trace: Trace | None, ps: int) -> int:
    """The clock period in force at ``ps``: the one of the last bus token that began at or
    before it, else of the first one after; 0 without any."""
    if trace is None:
        return 0
    tokens = trace.tokens
    i = bisect.bisect_right(trace.starts, ps)
    for j in range(i - 1, max(-1, i - 1 - _LOOKBACK), -1):
        if is_bus_token(tokens[j]) and tokens[j].period > 0:
            return tokens[j].period
    for token in tokens[i:i + _LOOKBACK]:
        if is_bus_token(token) and token.period > 0:
            return token.period
    return 0


class CursorPair(QObject):
    """Cursors A and B as draggable vertical lines (x in seconds) in one PlotItem."""

    sigMoved = Signal()

    def __init__(self, plot: pg.PlotItem) -> None:
        super().__init__()
        self.lines: list[pg.InfiniteLine] = []
        for name, color in zip(CURSOR_NAMES, _COLORS, strict=True):
            pen = QtGui.QPen(QtGui.QColor(color), 1)
            pen.setCosmetic(True)
            line = pg.InfiniteLine(angle=90, movable=True, pen=pen, label=name,
                                   labelOpts={"position": 0.02, "color": color,
                                              "fill": (0, 0, 0, 200)})
            line.setZValue(20)
            line.hide()
            line.sigPositionChanged.connect(self.sigMoved)
            plot.addItem(line, ignoreBounds=True)
            self.lines.append(line)

    def set(self, which: int, ps: int) -> None:
        if which not in (0, 1):
            raise ValueError(f"cursor must be 0 (A) or 1 (B), not {which}")
        line = self.lines[which]
        line.show()
        line.setValue(ps / PS_PER_S)

    def position(self, which: int) -> int | None:
        line = self.lines[which]
        return round(line.value() * PS_PER_S) if line.isVisible() else None
