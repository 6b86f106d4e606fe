"""ResponsivenessMeter: the largest event-loop gap of a sliding 5 s window, with colours
at 50 ms and 200 ms. Window tests inject gaps at fake times; one test blocks the real
GUI thread."""

from __future__ import annotations

import time
from typing import Any

import pytest

from widgets.qt import QTimer
from widgets.responsiveness import Level, ResponsivenessMeter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def meter(qtbot: Any, clock: FakeClock) -> ResponsivenessMeter:
    widget = ResponsivenessMeter(clock=clock, autostart=False)
    qtbot.addWidget(widget)
    return widget


def test_no_gap_yet_reads_zero(meter: ResponsivenessMeter) -> None:
    assert meter.largest_gap_ms() == 0.0
    assert meter.text() == "loop: max 0 ms (5 s)"
    assert meter.level() is Level.OK


def test_the_largest_gap_of_the_last_five_seconds_is_shown(meter: ResponsivenessMeter,
                                                          clock: FakeClock) -> None:
    for t, gap in [(0.0, 5.0), (1.0, 120.0), (2.0, 7.0), (4.0, 30.0)]:
        meter.record_gap(gap, now=1000.0 + t)
    clock.now = 1004.5
    assert meter.largest_gap_ms() == 120.0
    meter.refresh()
    assert meter.text() == "loop: max 120 ms (5 s)"
    clock.now = 1006.5  # the 120 ms gap (at t=1 s) has left the window
    assert meter.largest_gap_ms() == 30.0
    clock.now = 1009.5
    assert meter.largest_gap_ms() == 0.0


def test_a_later_smaller_gap_takes_over_when_the_big_one_expires(
        meter: ResponsivenessMeter) -> None:
    meter.record_gap(300.0, now=0.0)
    meter.record_gap(60.0, now=3.0)
    meter.record_gap(10.0, now=4.0)
    assert meter.largest_gap_ms(now=4.9) == 300.0
    assert meter.largest_gap_ms(now=5.5) == 60.0
    assert meter.largest_gap_ms(now=8.5) == 10.0


@pytest.mark.parametrize("gap, level, colour", [
    (50.0, Level.OK, ""),
    (51.0, Level.WARN, "#ffbf00"),
    (200.0, Level.WARN, "#ffbf00"),
    (201.0, Level.BAD, "#d63031"),
])
def test_colour_turns_amber_then_red(meter: ResponsivenessMeter, gap: float, level: Level,
                                     colour: str) -> None:
    meter.record_gap(gap)
    assert meter.level() is level
    assert (colour in meter.styleSheet()) if colour else meter.styleSheet() == ""


def test_colour_returns_to_normal_when_the_gap_leaves_the_window(
        meter: ResponsivenessMeter, clock: FakeClock) -> None:
    meter.record_gap(400.0)
    assert "#d63031" in meter.styleSheet()
    clock.now += 5.1
    meter.refresh()
    assert meter.styleSheet() == "" and meter.text() == "loop: max 0 ms (5 s)"


def test_a_blocked_gui_thread_shows_on_the_meter(qtbot: Any) -> None:
    meter = ResponsivenessMeter()
    qtbot.addWidget(meter)
    qtbot.wait(30)
    QTimer.singleShot(0, lambda: time.sleep(0.08))  # a synchronous read in a slot
    qtbot.waitUntil(lambda: meter.largest_gap_ms() >= 75, timeout=2000)
    assert meter.level() is Level.WARN
    assert meter.text().startswith("loop: max ")
    meter.stop()
    assert not meter.heartbeat.running
