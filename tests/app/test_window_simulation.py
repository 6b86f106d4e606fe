"""The window driving the simulation: run, steps, breakpoints, panels following the model,
drag and drop, captures, export, quitting with hung storage, a lesson walked through."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.main_window import MainWindow
from app.session import SessionState
from sdmodel.decode import decode_capture
from sdmodel.lessons import find_lesson
from sdmodel.sim.scheduler import RunMode
from sdmodel.states import CardState
from sdmodel.tokens import CommandToken
from widgets.qt import QtCore, QtGui

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(),
                                    reason=f"real captures not found at {CAPTURES}")
WAIT_MS = 20_000


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "card.img"
    with path.open("wb") as f:
        f.truncate(1 << 30)
    return path


def opened(window: MainWindow, card: Path, arun: Callable[..., Any]) -> MainWindow:
    assert arun(window.open_image(card)) is not None
    return window


def run_to_end(qtbot: Any, window: MainWindow, workload: str) -> None:
    window.controls.workload.setText(workload)
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)


def shown_commands(window: MainWindow) -> list[int]:
    sim = window.session.sim
    assert sim is not None
    horizon = sim.scheduler.horizon
    return [t.index for t in sim.trace if isinstance(t, CommandToken) and t.end <= horizon]


def test_a_run_fills_every_panel(qtbot: Any, window: MainWindow, card: Path,
                                 arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    run_to_end(qtbot, window, "init; read 0 4; write 8 2")
    model = window.transactions_dock.view.model

    def commands_shown() -> set[str]:
        return {model.row(r).texts[2] for r in range(model.rowCount())}  # the Command column

    # the table shows new exchanges at its next live-clock tick: wait for the last one
    qtbot.waitUntil(lambda: any("CMD25" in n for n in commands_shown()), timeout=2000)
    assert model.rowCount() > 20
    names = commands_shown()
    assert any("CMD18" in n for n in names) and any("CMD25" in n for n in names)
    assert window.state_dock.view.state is CardState.TRAN
    assert window.registers_dock.view.row_texts("CSD")[1].startswith("0x")
    qtbot.waitUntil(lambda: "CMD_COMPLETE" in window.irq_dock.view.lanes(), timeout=2000)
    assert window.irq_dock.view.lanes()[0] == "IRQ"
    console = "\n".join(window.console_dock.view.lines())
    assert "workload finished" in console and "write 8+2 ok" in console
    assert window.image_dock.hex.mark_status(8) is not None


def test_step_command_button_reveals_one_command_at_a_time(
        qtbot: Any, window: MainWindow, card: Path, arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    window.controls.workload.setText("init")
    step = window.controls.actions["step_command"]
    for expected in ([0], [0, 8], [0, 8, 55]):
        step.trigger()
        qtbot.waitUntil(lambda: window.controls._step_task is not None
                        and window.controls._step_task.done(), timeout=WAIT_MS)
        assert shown_commands(window) == expected
    assert window.session.state == SessionState.PAUSED
    assert window.waveform.horizon == window.session.sim.scheduler.horizon  # type: ignore[union-attr]
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)


def test_a_breakpoint_from_the_editor_stops_the_run(
        qtbot: Any, window: MainWindow, card: Path, arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    assert window.breakpoints_dock.editor.add("cmd=17") is not None
    window.controls.workload.setText("init; read 5 1")
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.PAUSED, timeout=WAIT_MS)
    sim = window.session.sim
    assert sim is not None and sim.scheduler.mode is RunMode.PAUSED
    assert sim.scheduler.hit is not None and sim.scheduler.hit[1].index == 17  # type: ignore[attr-defined]
    t0, t1 = window.waveform.visible_range()
    assert t0 <= sim.scheduler.hit[1].start <= t1
    window.breakpoints_dock.editor.clear()
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)


def test_a_bad_workload_is_reported_not_run(qtbot: Any, window: MainWindow, card: Path,
                                            arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    window.controls.workload.setText("init; reed 0 1")
    window.controls.actions["run"].trigger()
    assert window.session.state == SessionState.IDLE
    assert 'unknown action "reed"' in "\n".join(window.console_dock.view.lines())


def test_storage_panel_latency_reaches_the_card_storage(
        window: MainWindow, card: Path, arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    window.storage_dock.panel.sigLatency.emit(window.session.sim.storage.faults.latency)  # type: ignore[union-attr]
    sim = window.session.sim
    assert sim is not None
    window.storage_dock.panel.apply_to(sim.storage.faults)
    window.storage_dock.panel.sigHang.emit(True)
    assert sim.storage.faults.hung
    window.storage_dock.panel.sigHang.emit(False)
    assert not sim.storage.faults.hung


def test_switching_to_legacy_storage_reopens_the_image(
        window: MainWindow, card: Path, arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    window.storage_dock.panel.sigLegacySync.emit(True)
    assert window.session.sim is not None and "legacy" in repr(window.session.sim.storage)


def test_dropping_an_image_file_opens_it(qtbot: Any, window: MainWindow, card: Path,
                                         aloop: Any) -> None:
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(card))])
    drop = QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton,
                            QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.info is not None, timeout=WAIT_MS)
    assert window.info is not None and window.info.path == card


def test_quit_does_not_wait_for_hung_storage(qtbot: Any, window: MainWindow, card: Path,
                                             arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    sim = window.session.sim
    assert sim is not None
    run_to_end(qtbot, window, "init")
    sim.storage.faults.hang()
    window.controls.workload.setText("write 0 1")
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: sim.card.busy, timeout=WAIT_MS)  # programming, hung
    start = time.perf_counter()
    window.close()
    assert time.perf_counter() - start < 2.0  # a hang is forever: closing must not wait
    assert sim.storage.closed


@needs_captures
@pytest.mark.parametrize("name", sorted(p.relative_to(CAPTURES).as_posix()
                                        for p in CAPTURES.glob("*/*.sr")))
def test_every_shared_capture_opens_in_the_window(
        window: MainWindow, name: str, arun: Callable[..., Any]) -> None:
    imported = arun(window.open_capture(CAPTURES / name), timeout=60)
    assert imported is not None
    assert window.waveform.trace is imported.trace
    commands = [t for t in imported.trace if t.kind == "cmd"]
    assert window.transactions_dock.view.model.exchange_count() >= len(commands) > 0


@needs_captures
def test_a_capture_shows_the_registers_and_state_its_responses_carried(
        qtbot: Any, window: MainWindow, card: Path, arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    run_to_end(qtbot, window, "init; read 0 1")
    arun(window.open_capture(CAPTURES / "sd_mode" / "cmd9_r2.sr"), timeout=60)
    registers = window.registers_dock.view
    assert registers.row_texts("CSD")[1] == "0x005E00325F5983D2EDB77F8F964000F7"  # CSD v1
    assert registers.row_texts("OCR")[1] == "—"  # not in this capture, not the sim card's
    assert window.registers_dock.windowTitle() == "Registers (capture)"
    assert window.state_dock.view.state is None  # R2 carries no card status
    arun(window.open_capture(CAPTURES / "sd_mode" / "cmd13_r1_2.sr"), timeout=60)
    assert window.state_dock.view.state is CardState.DATA
    run_to_end(qtbot, window, "read 0 1")  # running shows the simulated card again
    assert window.registers_dock.windowTitle() == "Registers"
    assert window.state_dock.view.state is CardState.TRAN
    assert registers.row_texts("OCR")[1] != "—"


def test_export_writes_a_capture_our_decoder_reads_back(
        qtbot: Any, window: MainWindow, card: Path, tmp_path: Path,
        arun: Callable[..., Any]) -> None:
    opened(window, card, arun)
    run_to_end(qtbot, window, "init; read 0 1")
    target = tmp_path / "session.sr"
    assert arun(window.export_capture(target), timeout=60)
    sim = window.session.sim
    assert sim is not None
    ours = [t.index for t in sim.trace if isinstance(t, CommandToken)]
    assert [t.index for t in decode_capture(target) if t.kind == "cmd"] == ours


async def _result_of(task: Any) -> Any:
    return await task


def test_lesson_3_walks_through_the_window(qtbot: Any, window: MainWindow,
                                           arun: Callable[..., Any]) -> None:
    lesson = find_lesson("03")
    window.start_lesson(lesson)
    dock = window.lesson_dock
    assert dock.panel.lesson is not None and dock.panel.lesson.id == lesson.id
    for step in lesson.steps:
        task = dock.show_me(step)
        assert task is not None

        report = arun(_result_of(task), timeout=60)
        assert report is not None and report.ok, [r.found for r in report.results]
        assert window.session.sim is dock.runner.sim  # type: ignore[union-attr]
    assert window.waveform.highlighted() is not None
