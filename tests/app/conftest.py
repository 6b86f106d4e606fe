"""Fixtures shared by the window tests of ``tests/app``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.main_window import MainWindow
from widgets.qt import QApplication, QFileDialog, QMessageBox, QSettings


@pytest.fixture
def window(qtbot: Any, tmp_path: Path, qt_settings: None) -> Iterator[MainWindow]:
    """The main window on its own settings file, shown; afterwards its session is closed
    and any message box or file dialog it left is closed too."""
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.session.close()
    for box in QApplication.topLevelWidgets():
        if isinstance(box, QMessageBox | QFileDialog):
            box.close()
