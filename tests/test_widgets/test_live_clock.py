"""The live clock: coalesced repaints, one slot per tick, so no frame holds two views."""

from __future__ import annotations

from typing import Any

import pytest

from widgets.live_clock import LiveClock, Slot
from widgets.qt import QObject


class Recorder(QObject):
    """A view whose flush notes the clock tick it ran in."""

    def __init__(self, clock: LiveClock, name: str, log: list[tuple[str, int]]) -> None:
        super().__init__()
        self.clock, self.name, self.log = clock, name, log

    def flush(self) -> None:
        self.log.append((self.name, self.clock._ticks))


@pytest.fixture
def clock(qapp: Any) -> LiveClock:
    return LiveClock(period_ms=2)


def test_each_slot_flushes_in_its_own_tick(qtbot: Any, clock: LiveClock) -> None:
    log: list[tuple[str, int]] = []
    views = {slot: Recorder(clock, slot.name, log) for slot in Slot}
    for slot, view in views.items():
        clock.request(slot, view.flush)
    qtbot.waitUntil(lambda: len(log) == len(Slot), timeout=1000)
    ticks = [tick for _, tick in log]
    assert len(set(ticks)) == len(Slot)  # never two slots in one tick
    assert [name for name, _ in log] == [slot.name for slot in Slot]


def test_a_flush_requested_many_times_runs_once(qtbot: Any, clock: LiveClock) -> None:
    log: list[tuple[str, int]] = []
    view = Recorder(clock, "waveform", log)
    for _ in range(50):  # one request per appended token
        clock.request(Slot.WAVEFORM, view.flush)
    qtbot.waitUntil(lambda: bool(log), timeout=1000)
    qtbot.wait(30)
    assert len(log) == 1
    assert not clock.is_pending(view.flush)


def test_the_clock_stops_when_nothing_is_pending(qtbot: Any, clock: LiveClock) -> None:
    log: list[tuple[str, int]] = []
    clock.request(Slot.CARD, Recorder(clock, "card", log).flush)
    qtbot.waitUntil(lambda: bool(log), timeout=1000)
    assert not clock._timer.isActive()


def test_a_cancelled_flush_does_not_run(qtbot: Any, clock: LiveClock) -> None:
    log: list[tuple[str, int]] = []
    view = Recorder(clock, "transactions", log)
    clock.request(Slot.TRANSACTIONS, view.flush)
    assert clock.is_pending(view.flush)
    clock.cancel(view.flush)
    qtbot.wait(30)
    assert log == []


def test_a_view_deleted_before_its_tick_is_skipped(qtbot: Any, clock: LiveClock) -> None:
    from widgets.qt import is_alive

    log: list[tuple[str, int]] = []
    doomed, kept = Recorder(clock, "doomed", log), Recorder(clock, "kept", log)
    clock.request(Slot.IRQ, doomed.flush)
    clock.request(Slot.IRQ, kept.flush)
    doomed.deleteLater()
    qtbot.waitUntil(lambda: not is_alive(doomed), timeout=1000)
    qtbot.waitUntil(lambda: bool(log), timeout=1000)
    assert [name for name, _ in log] == ["kept"]


def test_the_shared_clock_is_one_per_application(qapp: Any) -> None:
    assert LiveClock.shared() is LiveClock.shared()
    assert LiveClock.shared().parent() is qapp
