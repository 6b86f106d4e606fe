"""The "Card state" dock: the §4.8 state diagram with the current state lit."""

from __future__ import annotations

from app.docks.base import Dock
from sdmodel.sim.simulator import Simulator
from widgets.qt import QWidget
from widgets.state_diagram import StateDiagram

__all__ = ["StateDock"]


class StateDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.view = StateDiagram()
        super().__init__("Card state", "StateDock", self.view, parent)

    def attach(self, sim: Simulator) -> None:
        card = sim.card
        self.view.set_spi_mode(sim.options.mode == "spi")
        self.view.set_state(card.state)
        card.events.state.connect(self.view.set_transition)
        card.events.busy.connect(self.view.set_busy)
