"""Broken inputs and a restless user in the window (issue "Reliability", GUI column):
every bad image or capture ends in a dialog with the window still usable, Stop works on
hung storage, a read-only image is never written, and a long random sequence of user
actions reaches neither the excepthook nor a Qt warning."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.main_window import MainWindow
from app.session import SessionState
from sdmodel.sim.scheduler import StepUnit
from widgets.qt import QApplication, QFileDialog, QMessageBox, QtCore

WAIT_MS = 20_000
GIB = 1 << 30


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions that reach ``sys.excepthook`` during the test (there must be none)."""
    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda _t, exc, _tb: seen.append(exc))
    return seen


def close_dialogs() -> list[str]:
    texts = []
    for box in QApplication.topLevelWidgets():
        if isinstance(box, QMessageBox) and box.isVisible():
            texts.append(box.text())
        if isinstance(box, QMessageBox | QFileDialog):
            box.close()
    return texts


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def good_image(tmp_path: Path) -> Path:
    return sparse(tmp_path / "good.img", GIB)


BAD_IMAGES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (lambda d: sparse(d / "empty.img", 0), "empty"),
    "not-a-multiple-of-512": (lambda d: sparse(d / "odd.img", 1000 * 1024 + 1),
                              "not a multiple of 512"),
    "larger-than-2-TiB": (lambda d: sparse(d / "huge.img", 3 << 40), "2 TiB"),
    "missing": (lambda d: d / "missing.img", "no such"),
    "directory": (lambda d: (d / "folder.img").mkdir() or d / "folder.img", "directory"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_a_bad_image_is_a_dialog_and_the_window_stays_usable(
        window: MainWindow, tmp_path: Path, arun: Callable[..., Any], case: str) -> None:
    make, message = BAD_IMAGES[case]
    assert arun(window.open_image(make(tmp_path))) is None
    texts = close_dialogs()
    assert len(texts) == 1 and message in texts[0]
    assert arun(window.open_image(good_image(tmp_path))) is not None  # still usable
    assert window.session.sim is not None


def test_an_image_another_process_writes_is_refused_with_a_dialog(
        window: MainWindow, tmp_path: Path, arun: Callable[..., Any]) -> None:
    image = good_image(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from sdmodel.storage import Storage
        storage = Storage.open({str(image)!r})
        print("locked", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert arun(window.open_image(image)) is None
        (text,) = close_dialogs()
        assert "in use by another sdscope process" in text
    finally:
        holder.kill()
        holder.wait()


def test_a_read_only_image_is_never_written_from_the_window(
        qtbot: Any, window: MainWindow, tmp_path: Path, arun: Callable[..., Any]) -> None:
    image = good_image(tmp_path)
    before = (image.read_bytes()[:1 << 20], os.stat(image).st_mtime_ns)
    image.chmod(0o444)
    try:
        if os.access(image, os.W_OK):  # root writes anyway: open it read-only by option
            window.session.options = replace(window.session.options, read_only=True)
        assert arun(window.open_image(image)) is not None
        window.controls.workload.setText("init; write 0 4; read 0 4")
        window.controls.actions["run"].trigger()
        qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)
        assert "WP_VIOLATION" in "\n".join(window.console_dock.view.lines())
    finally:
        window.session.close()
        image.chmod(0o644)
    assert (image.read_bytes()[:1 << 20], os.stat(image).st_mtime_ns) == before


def test_an_image_truncated_while_in_use_is_a_storage_error_not_a_crash(
        qtbot: Any, window: MainWindow, tmp_path: Path, arun: Callable[..., Any],
        hook_calls: list[BaseException]) -> None:
    image = good_image(tmp_path)
    assert arun(window.open_image(image)) is not None
    window.controls.workload.setText("init")
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)
    os.truncate(image, 64 * 1024 * 1024)
    window.controls.workload.setText("write 10 2; read 10 2")
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)
    console = "\n".join(window.console_dock.view.lines())
    assert "storage:" in console and "changed" in console
    assert not hook_calls


def test_stop_ends_a_workload_hung_in_storage(qtbot: Any, window: MainWindow, tmp_path: Path,
                                              arun: Callable[..., Any]) -> None:
    assert arun(window.open_image(good_image(tmp_path))) is not None
    window.controls.workload.setText("init")
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)
    sim = window.session.sim
    assert sim is not None
    sim.storage.faults.hang()
    window.controls.workload.setText("write 0 8")
    window.controls.actions["run"].trigger()
    qtbot.waitUntil(lambda: sim.card.busy, timeout=WAIT_MS)
    window.controls.actions["stop"].trigger()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=1000)
    assert "workload stopped" in "\n".join(window.console_dock.view.lines())


def _not_a_zip(d: Path) -> Path:
    path = d / "junk.sr"
    path.write_bytes(b"this is not a capture")
    return path


def _no_metadata(d: Path) -> Path:
    path = d / "nometa.sr"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("version", "2")
        z.writestr("logic-1-1", bytes(16))
    return path


def _unitsize_zero(d: Path) -> Path:
    path = d / "unitsize.sr"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("version", "2")
        z.writestr("metadata", "[device 1]\ncapturefile=logic-1\ntotal probes=2\n"
                   "samplerate=1 MHz\nunitsize=0\nprobe1=CLK\nprobe2=CMD\n")
        z.writestr("logic-1-1", bytes(16))
    return path


def _vcd_without_timescale(d: Path) -> Path:
    path = d / "bad.vcd"
    path.write_text("$scope module top $end\n$var wire 1 ! CLK $end\n$upscope $end\n"
                    "$enddefinitions $end\n#0\n0!\n")
    return path


@pytest.mark.parametrize("make, message", [
    (_not_a_zip, "not a zip"), (_no_metadata, "metadata"), (_unitsize_zero, "unitsize"),
    (_vcd_without_timescale, "timescale"),
])
def test_a_hostile_capture_is_a_dialog_and_the_window_stays_usable(
        window: MainWindow, tmp_path: Path, arun: Callable[..., Any],
        make: Callable[[Path], Path], message: str) -> None:
    assert arun(window.open_capture(make(tmp_path))) is None
    texts = close_dialogs()
    assert len(texts) == 1 and message in texts[0]
    assert arun(window.open_image(good_image(tmp_path))) is not None


def test_a_long_random_sequence_of_user_actions_breaks_nothing(
        qtbot: Any, window: MainWindow, tmp_path: Path, arun: Callable[..., Any],
        hook_calls: list[BaseException]) -> None:
    """300 seeded random actions: panels, steps, run/pause/stop, images, faults, keys."""
    images = [good_image(tmp_path), sparse(tmp_path / "small.img", 64 << 20)]
    arun(window.open_image(images[0]))
    rng = random.Random(20261126)
    keys = [QtCore.Qt.Key.Key_Plus, QtCore.Qt.Key.Key_Minus, QtCore.Qt.Key.Key_Left,
            QtCore.Qt.Key.Key_Right, QtCore.Qt.Key.Key_Home, QtCore.Qt.Key.Key_End,
            QtCore.Qt.Key.Key_F, QtCore.Qt.Key.Key_Z]
    panel = window.storage_dock.panel

    def toggle_dock() -> None:
        dock = rng.choice(window.docks)
        dock.setVisible(not dock.isVisible())

    def step() -> None:
        window.controls.step(rng.choice(list(StepUnit)))

    def key() -> None:
        qtbot.keyClick(window.waveform, rng.choice(keys))

    def image() -> None:
        window._track(window.open_image(rng.choice(images)))

    def workload() -> None:
        window.controls.workload.setText(rng.choice(
            ["init; read 0 4", "init; write 8 2; read 8 2", "init; erase 0 8", "wait 1"]))

    def fault() -> None:
        rng.choice([lambda: panel.sigHang.emit(True), lambda: panel.sigHang.emit(False),
                    lambda: panel.sigClearFaults.emit()])()

    actions = [toggle_dock, step, key, image, workload, fault,
               window.controls.actions["run"].trigger, window.controls.actions["pause"].trigger,
               window.controls.actions["stop"].trigger, window.waveform.zoom_to_fit,
               window.reset_layout]
    for _ in range(300):
        rng.choice(actions)()
        qtbot.wait(rng.choice([0, 1, 5, 20]))
    if window.session.sim is not None:
        window.session.sim.storage.faults.release()
    window.session.stop()
    qtbot.waitUntil(lambda: window.session.state == SessionState.IDLE, timeout=WAIT_MS)
    close_dialogs()
    assert not hook_calls
    assert window.isVisible()
