"""ConsoleView: stamped lines, bounded length, level filter, copy, and log records from
another thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from widgets.console import ConsoleView, LogLevel
from widgets.qt import QApplication


@pytest.fixture
def console(qtbot: Any) -> ConsoleView:
    widget = ConsoleView(max_lines=50)
    qtbot.addWidget(widget)
    widget.resize(600, 300)
    widget.show()
    return widget


def test_lines_carry_the_simulated_time_and_level(console: ConsoleView) -> None:
    console.append("CMD17 READ_SINGLE_BLOCK arg=0x00000000", time_ps=12_345_678_000)
    console.append("data timeout", "warning", time_ps=2_000_000_000_000)
    console.append("no card")
    assert console.lines() == [
        "   12.345678 ms  CMD17 READ_SINGLE_BLOCK arg=0x00000000",
        " 2000.000000 ms  warning: data timeout",
        "no card",
    ]


def test_a_multi_line_message_keeps_its_lines_together(console: ConsoleView) -> None:
    console.append("recovery:\nCMD12\nreset DAT", "error", time_ps=0)
    assert console.lines() == [
        "    0.000000 ms  error: recovery:",
        "                 CMD12",
        "                 reset DAT",
    ]


def test_the_console_keeps_only_the_newest_lines(console: ConsoleView) -> None:
    for i in range(120):
        console.append(f"message {i}")
    lines = console.lines()
    assert len(lines) == console.max_lines == 50
    assert (lines[0], lines[-1]) == ("message 70", "message 119")


@pytest.mark.parametrize("level, shown", [
    ("debug", ["d", "i", "w", "e"]),
    ("info", ["i", "w", "e"]),
    ("warning", ["w", "e"]),
    (logging.ERROR, ["e"]),
])
def test_filter_shows_the_level_and_above(console: ConsoleView, level: str | int,
                                          shown: list[str]) -> None:
    for name in ("debug", "info", "warning", "error"):
        console.append(name[0], name)
    console.set_min_level(level)
    assert [line.split()[-1] for line in console.lines()] == shown
    assert len(console.lines(visible_only=False)) == 4
    console.append("late debug", "debug")
    assert ("debug: late debug" in console.lines()) == (level == "debug")


def test_unknown_level_is_refused_with_one_line(console: ConsoleView) -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud': use debug, info"):
        console.append("x", "loud")


def test_copy_all_puts_the_shown_lines_on_the_clipboard(console: ConsoleView) -> None:
    console.append("one", "debug")
    console.append("two", "error")
    console.set_min_level("info")
    console.copy_all()
    assert QApplication.clipboard().text() == "error: two"


def test_clear_empties_the_console(console: ConsoleView) -> None:
    console.append("one")
    console.clear()
    assert console.lines() == []
    console.append("two")
    assert console.lines() == ["two"]


def test_log_records_from_a_worker_thread_arrive(console: ConsoleView, qtbot: Any) -> None:
    log = logging.getLogger("sdmodel.storage.test")
    handler = console.log_handler()
    log.addHandler(handler)
    try:
        worker = threading.Thread(target=log.warning, args=("write at LBA %d failed", 7))
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: len(console.lines()) == 1, timeout=2000)
    finally:
        log.removeHandler(handler)
    assert console.lines() == ["warning: sdmodel.storage.test: write at LBA 7 failed"]


@pytest.mark.parametrize("level, expected", [
    ("WARN", LogLevel.WARNING), (logging.CRITICAL, LogLevel.ERROR), (25, LogLevel.INFO),
    (0, LogLevel.DEBUG),
])
def test_levels_accept_names_and_logging_numbers(level: str | int, expected: LogLevel) -> None:
    assert LogLevel.of(level) is expected
