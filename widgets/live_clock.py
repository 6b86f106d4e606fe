"""One clock for the live views' coalesced repaints (style.md: about 30 Hz while running).

A live view does not start its own redraw timer when tokens arrive: it asks the clock to
call its flush. The clock ticks every ``PERIOD_MS`` while a flush is pending and each tick
serves one ``Slot`` of its cycle: the waveform view (new tokens, tiles computed in the
background, labels a paint had no time for), the IRQ timeline, the transactions table,
the card (state diagram, registers). Each view thus redraws at about 15 Hz, and no window
frame holds two of these repaints at once: the largest event-loop gap while running is
one of them, not their sum.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from widgets.qt import QObject, Qt, QtCore, QTimer, is_alive

__all__ = ["LiveClock", "PERIOD_MS", "Slot"]

PERIOD_MS = 16  # one slot per tick: each slot every len(Slot) ticks (64 ms, ~15 Hz)


class Slot(IntEnum):
    WAVEFORM = 0
    IRQ = 1
    TRANSACTIONS = 2
    CARD = 3


Flush = Callable[[], None]


class LiveClock(QObject):
    """Calls requested flushes in their slot's next tick, each once per request."""

    _shared: LiveClock | None = None

    def __init__(self, parent: QObject | None = None, period_ms: int = PERIOD_MS) -> None:
        super().__init__(parent)
        self._pending: list[list[Flush]] = [[] for _ in Slot]
        self._ticks = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(period_ms)
        self._timer.timeout.connect(self._tick)

    @classmethod
    def shared(cls) -> LiveClock:
        """The application's clock (one per QCoreApplication)."""
        app = QtCore.QCoreApplication.instance()
        if cls._shared is None or not is_alive(cls._shared) or cls._shared.parent() is not app:
            cls._shared = cls(app)
        return cls._shared

    def request(self, slot: Slot, flush: Flush) -> None:
        """Call ``flush`` in ``slot``'s next tick (once, however often requested)."""
        pending = self._pending[slot]
        if flush not in pending:
            pending.append(flush)
        if not self._timer.isActive():
            self._timer.start()

    def cancel(self, flush: Flush) -> None:
        """Forget a requested flush (the view flushed by itself or closed)."""
        for pending in self._pending:
            if flush in pending:
                pending.remove(flush)

    def is_pending(self, flush: Flush) -> bool:
        return any(flush in pending for pending in self._pending)

    def _tick(self) -> None:
        slot = self._ticks % len(Slot)
        self._ticks += 1
        due, self._pending[slot] = self._pending[slot], []
        for flush in due:
            owner = getattr(flush, "__self__", None)
            if not isinstance(owner, QObject) or is_alive(owner):  # skip deleted views
                flush()
        if not any(self._pending):
            self._timer.stop()
