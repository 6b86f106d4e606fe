"""Status-bar meter: the largest event-loop gap of the last 5 s ("loop: max 7 ms (5 s)").

It listens to a ``widgets.heartbeat.Heartbeat`` (a 5 ms timer on the GUI thread): while
the loop is free every gap is about 5 ms; a blocking call (legacy-sync storage, a slow
paint) shows up as one long gap. The meter keeps the gaps of a sliding window in a
monotonic deque (O(1) amortised per gap) and turns amber above 50 ms, red above 200 ms.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from widgets.heartbeat import Heartbeat
from widgets.qt import QLabel, QTimer, QWidget

__all__ = ["Level", "ResponsivenessMeter"]

WINDOW_S = 5.0
WARN_MS = 50.0
BAD_MS = 200.0
REFRESH_MS = 250  # how often old gaps leave the window on screen


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"  # > 50 ms: noticeable
    BAD = "bad"  # > 200 ms: the window froze


_STYLES: dict[Level, str] = {
    Level.OK: "",
    Level.WARN: "background: #ffbf00; color: #1d1d1d; padding: 0 4px;",
    Level.BAD: "background: #d63031; color: white; padding: 0 4px;",
}


class ResponsivenessMeter(QLabel):
    """Largest gap of the GUI event loop in the last ``window_s`` seconds."""

    def __init__(self, parent: QWidget | None = None, *, heartbeat: Heartbeat | None = None,
                 clock: Callable[[], float] = time.perf_counter, window_s: float = WINDOW_S,
                 autostart: bool = True) -> None:
        super().__init__(parent)
        self._clock = clock
        self._window = window_s
        self._gaps: deque[tuple[float, float]] = deque()  # (time, gap ms), gaps decreasing
        self._shown = -1.0
        self._level: Level | None = None
        self.heartbeat = heartbeat if heartbeat is not None else Heartbeat(parent=self)
        self.heartbeat.sigGap.connect(self.record_gap)
        self._refresh = QTimer(self)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self.refresh)
        self.setToolTip(f"Largest gap between ticks of a {self.heartbeat.interval_ms} ms timer "
                        f"on the GUI event loop in the last {window_s:g} s: how long the "
                        f"window was unresponsive. Amber above {WARN_MS:g} ms, red above "
                        f"{BAD_MS:g} ms.")
        # as wide as the widest reading: a new number repaints the label, not the status bar
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance(self._text(99_999.0)) + 8)
        self.refresh()
        if autostart:
            self.start()

    def start(self) -> None:
        if not self.heartbeat.running:
            self.heartbeat.start()
        self._refresh.start()

    def stop(self) -> None:
        self._refresh.stop()
        self.heartbeat.stop()

    def record_gap(self, gap_ms: float, now: float | None = None) -> None:
        """One measured gap ending at ``now`` (the clock's time when omitted)."""
        now = self._clock() if now is None else now
        while self._gaps and self._gaps[-1][1] <= gap_ms:
            self._gaps.pop()  # a smaller gap can never be the maximum again
        self._gaps.append((now, gap_ms))
        if gap_ms > self._shown:
            self.refresh(now)

    def largest_gap_ms(self, now: float | None = None) -> float:
        """The largest gap that ended within the window before ``now``; 0 if none."""
        now = self._clock() if now is None else now
        while self._gaps and self._gaps[0][0] < now - self._window:
            self._gaps.popleft()
        return self._gaps[0][1] if self._gaps else 0.0

    def level(self, now: float | None = None) -> Level:
        gap = self.largest_gap_ms(now)
        return Level.BAD if gap > BAD_MS else Level.WARN if gap > WARN_MS else Level.OK

    def _text(self, gap_ms: float) -> str:
        return f"loop: max {gap_ms:.0f} ms ({self._window:g} s)"

    def refresh(self, now: float | None = None) -> None:
        """Redraw the text and colour for the window ending at ``now``."""
        gap = self.largest_gap_ms(now)
        self._shown = gap
        self.setText(self._text(gap))
        level = self.level(now)
        if level is not self._level:
            self._level = level
            self.setStyleSheet(_STYLES[level])
