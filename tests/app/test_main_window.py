"""The main window: menus, the Image dock, status bar, layout persistence, dialogs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.main_window import MainWindow
from sdmodel.images import create_image
from widgets.qt import QApplication, QFileDialog, QMessageBox, QSettings


@pytest.fixture
def settings(tmp_path: Path, qt_settings: None) -> QSettings:
    """A settings file of this test only."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot: Any, settings: QSettings) -> Iterator[MainWindow]:
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    for box in QApplication.topLevelWidgets():
        if isinstance(box, QMessageBox | QFileDialog):
            box.close()


def _menu_texts(window: MainWindow) -> dict[str, list[str]]:
    menus = {}
    for action in window.menuBar().actions():
        menu = action.menu()
        menus[action.text().replace("&", "")] = [
            a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()
        ]
    return menus


def _visible_message_boxes() -> list[QMessageBox]:
    widgets = QApplication.topLevelWidgets()
    return [w for w in widgets if isinstance(w, QMessageBox) and w.isVisible()]


def test_window_opens_within_two_seconds(qtbot: Any, settings: QSettings) -> None:
    start = time.perf_counter()
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert time.perf_counter() - start < 2.0


def test_menus_and_shortcuts(window: MainWindow) -> None:
    assert _menu_texts(window) == {
        "File": ["Open image…", "Open demo card", "New image…", "Recent images",
                 "Open capture…", "Export capture…", "Export screenshot…", "Quit"],
        "Simulation": ["Run", "Pause", "Stop", "Step bit", "Step token", "Step command",
                       "Step transfer"],
        "View": ["Zoom to fit", "Follow the live edge", "Registers", "Card state",
                 "Breakpoints", "Lesson", "Interrupts", "Transactions", "Image",
                 "Storage and faults",
                 "Console", "Reset layout"],
        "Help": ["About sdscope"],
    }
    shortcuts = {
        window.open_action: "Ctrl+O", window.quit_action: "Ctrl+Q",
        window.new_image_action: "Ctrl+N", window.open_capture_action: "Ctrl+Shift+O",
        window.export_action: "Ctrl+E", window.controls.actions["run"]: "F5",
        window.controls.actions["pause"]: "F6", window.controls.actions["stop"]: "Shift+F5",
        window.controls.actions["step_bit"]: "Ctrl+F11",
        window.controls.actions["step_token"]: "F11",
        window.controls.actions["step_command"]: "F10",
        window.controls.actions["step_transfer"]: "Shift+F11",
    }
    for action, shortcut in shortcuts.items():
        assert action.shortcut().toString() == shortcut, action.text()


def test_image_dock_and_status_bar_show_the_demo_card(
    window: MainWindow, demo_image: Path, arun: Callable[..., Any]
) -> None:
    assert window.status_texts() == ("no image", "", "")
    info = arun(window.open_image(demo_image))
    assert info is not None and window.info == info
    rows = window.image_dock.view.rows()
    assert rows["Size"] == "64 MiB (67,108,864 bytes)"
    assert rows["Card type"] == "SDSC (byte addressing)"
    assert window.image_dock.view.partition_rows()[0][4] == 'FAT16 "SDSCOPE"'
    assert window.status_texts() == (demo_image.name, "SDSC", "64 MiB")
    assert window.windowTitle() == f"{demo_image.name} — sdscope"


def test_bad_image_shows_a_dialog_and_keeps_the_old_one(
    window: MainWindow, demo_image: Path, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    arun(window.open_image(demo_image))
    odd = tmp_path / "odd.img"
    odd.write_bytes(bytes(1000))
    assert arun(window.open_image(odd)) is None
    (box,) = _visible_message_boxes()
    assert "not a multiple of 512" in box.text()
    assert window.info is not None and window.info.path == demo_image


def test_open_dialog_does_not_block_and_loads_the_choice(
    window: MainWindow, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    path = create_image(tmp_path / "chosen.img", 8 * 1024**2, fat=True)
    dialog = window.show_open_dialog()  # returns at once: open(), not exec()
    assert dialog.isVisible()

    async def choose() -> None:
        dialog.fileSelected.emit(str(path))
        while window.info is None:
            await asyncio.sleep(0.01)

    arun(choose())
    assert window.info is not None and window.info.path == path


def test_open_demo_card_action(
    window: MainWindow, demo_image: Path, arun: Callable[..., Any]
) -> None:
    async def choose() -> None:
        window.open_demo_action.trigger()
        while window.info is None:
            await asyncio.sleep(0.01)

    arun(choose())
    assert window.info is not None and window.info.path == demo_image


def test_recent_images_remember_loaded_paths(
    qtbot: Any, window: MainWindow, demo_image: Path, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    other = create_image(tmp_path / "other.img", 1024**2)
    arun(window.open_image(demo_image))
    arun(window.open_image(other))
    assert window.recent_images() == [str(other.resolve()), str(demo_image.resolve())]
    assert window.recent_menu.isEnabled()
    texts = [a.text() for a in window.recent_menu.actions() if not a.isSeparator()]
    assert texts == [str(other.resolve()), str(demo_image.resolve()), "Clear list"]
    window.recent_menu.actions()[-1].trigger()  # Clear list
    assert window.recent_images() == []
    qtbot.waitUntil(lambda: not window.recent_menu.isEnabled(), timeout=1000)


def test_layout_is_saved_on_close_and_restored(
    qtbot: Any, window: MainWindow, settings: QSettings
) -> None:
    window.image_dock.hide()
    window.close()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert not again.image_dock.isVisible()
    assert not again.image_dock.toggleViewAction().isChecked()


def test_reset_layout_brings_every_dock_back(qtbot: Any, window: MainWindow) -> None:
    window.image_dock.setFloating(True)
    window.image_dock.hide()
    window.reset_layout_action.trigger()
    assert window.image_dock.isVisible()
    assert not window.image_dock.isFloating()
    assert window.size() == MainWindow.DEFAULT_SIZE


def test_about_opens_without_blocking(window: MainWindow) -> None:
    box = window.show_about()
    assert box.isVisible()
    assert "sdscope" in box.text()


def test_quit_closes_the_window(qtbot: Any, window: MainWindow) -> None:
    with qtbot.waitSignal(window.sigClosed, timeout=1000):
        window.quit_action.trigger()
    assert not window.isVisible()
