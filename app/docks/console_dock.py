"""The "Console" dock: driver, simulator and window messages."""

from __future__ import annotations

from app.docks.base import Dock
from widgets.console import ConsoleView
from widgets.qt import QWidget

__all__ = ["ConsoleDock"]


class ConsoleDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.view = ConsoleView()
        super().__init__("Console", "ConsoleDock", self.view, parent)
