"""The Qt Heartbeat sees how long the GUI thread was blocked."""

from __future__ import annotations

import time
from typing import Any

from widgets.heartbeat import Heartbeat
from widgets.qt import QTimer


def test_blocking_the_gui_thread_shows_as_a_gap(qtbot: Any, heartbeat: Heartbeat) -> None:
    qtbot.wait(30)
    QTimer.singleShot(0, lambda: time.sleep(0.12))  # a synchronous read in a slot
    qtbot.wait(40)
    assert heartbeat.max_gap_ms >= 115
    assert heartbeat.p50_ms < 60  # most ticks were on time


def test_idle_gui_ticks_at_its_interval(qtbot: Any, heartbeat: Heartbeat) -> None:
    qtbot.wait(150)
    assert heartbeat.samples >= 10
    assert heartbeat.interval_ms == 5
    assert 4.0 <= heartbeat.p50_ms <= heartbeat.p99_ms <= heartbeat.max_gap_ms


def test_stop_counts_a_stall_after_the_last_tick(qtbot: Any) -> None:
    beat = Heartbeat()
    beat.start()
    qtbot.wait(20)
    time.sleep(0.08)
    beat.stop()
    assert not beat.running
    assert beat.max_gap_ms >= 75


def test_every_gap_is_signalled(qtbot: Any) -> None:
    beat = Heartbeat(interval_ms=5)
    gaps: list[float] = []
    beat.sigGap.connect(gaps.append)
    beat.start()
    qtbot.waitUntil(lambda: len(gaps) >= 5, timeout=2000)
    beat.stop()
    assert max(gaps) == beat.max_gap_ms
    assert len(gaps) == beat.samples
