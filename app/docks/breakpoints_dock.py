"""The "Breakpoints" dock: the breakpoint editor."""

from __future__ import annotations

from app.docks.base import Dock
from widgets.breakpoint_editor import BreakpointEditor
from widgets.qt import QWidget

__all__ = ["BreakpointsDock"]


class BreakpointsDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.editor = BreakpointEditor()
        super().__init__("Breakpoints", "BreakpointsDock", self.editor, parent)
