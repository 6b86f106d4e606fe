"""A dock panel of the main window: one widget, a unique object name (saved layouts
identify docks by it), and ``attach`` to follow a new simulator."""

from __future__ import annotations

from sdmodel.sim.simulator import Simulator
from widgets.qt import QDockWidget, QWidget

__all__ = ["Dock"]


class Dock(QDockWidget):
    def __init__(self, title: str, name: str, widget: QWidget,
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setObjectName(name)
        self.setWidget(widget)

    def attach(self, sim: Simulator) -> None:
        """Show ``sim`` (a new image or a reopened one). Default: nothing to follow."""
