"""Event-loop responsiveness probe for the Qt event loop.

A 5 ms precise QTimer records how long each tick took to arrive. While the GUI thread is
free, the gap is about 5 ms; when something blocks it (the "synchronous (legacy)" storage
mode, a slow paint), the next tick comes late by the length of the block. ``max_gap_ms``
and the percentiles over the last ``window`` gaps drive the status-bar responsiveness
meter and the GUI stall tests. The asyncio twin is ``sdmodel.heartbeat.LoopHeartbeat``.
"""

from __future__ import annotations

import time
from collections import deque

from sdmodel.heartbeat import percentile
from widgets.qt import QObject, Qt, QTimer, Signal

__all__ = ["Heartbeat"]


class Heartbeat(QObject):
    """Measures gaps between ticks of a ``interval_ms`` timer on the thread's event loop."""

    sigGap = Signal(float)  # every measured gap, in milliseconds

    def __init__(
        self, interval_ms: int = 5, window: int = 2000, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._gaps: deque[float] = deque(maxlen=window)
        self._max_gap = 0.0
        self._last = 0.0

    @property
    def interval_ms(self) -> int:
        return self._timer.interval()

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    @property
    def max_gap_ms(self) -> float:
        """The longest gap since ``start()`` or ``reset()``, in milliseconds."""
        return self._max_gap * 1000.0

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50.0)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99.0)

    @property
    def samples(self) -> int:
        """Gaps in the current window."""
        return len(self._gaps)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the gaps in the window, in milliseconds."""
        return percentile(self._gaps, q) * 1000.0

    def start(self) -> None:
        """Start (or restart) measuring from now; clears earlier measurements."""
        self.reset()
        self._timer.start()

    def stop(self) -> None:
        """Stop ticking. A stall that ended after the last tick still counts as a gap."""
        if self._timer.isActive():
            self._record(time.perf_counter())
            self._timer.stop()

    def reset(self) -> None:
        self._gaps.clear()
        self._max_gap = 0.0
        self._last = time.perf_counter()

    def _tick(self) -> None:
        self._record(time.perf_counter())

    def _record(self, now: float) -> None:
        gap = now - self._last
        self._last = now
        self._gaps.append(gap)
        self._max_gap = max(self._max_gap, gap)
        self.sigGap.emit(gap * 1000.0)
