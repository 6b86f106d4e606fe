"""The "Card state" dock: the §4.8 state diagram with the current state lit."""

from __future__ import annotations

from app.docks.base import Dock
from sdmodel.card import Card
from sdmodel.sim.simulator import Simulator
from sdmodel.trace_registers import SeenRegisters
from widgets.qt import QWidget
from widgets.state_diagram import StateDiagram

__all__ = ["StateDock"]


class StateDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.view = StateDiagram()
        super().__init__("Card state", "StateDock", self.view, parent)
        self._card: Card | None = None

    def attach(self, sim: Simulator) -> None:
        self._detach()
        card = self._card = sim.card
        self.setWindowTitle("Card state")
        self.view.set_spi_mode(sim.options.mode == "spi")
        self.view.set_state(card.state)
        card.events.state.connect(self.view.set_transition)
        card.events.busy.connect(self.view.set_busy)

    def show_capture(self, seen: SeenRegisters, spi: bool) -> None:
        """A decoded capture: the state its newest card status reported (SD mode)."""
        self._detach()
        self.setWindowTitle("Card state (capture)")
        self.view.set_spi_mode(spi)
        if seen.state is not None:
            self.view.set_state(seen.state)
        else:
            self.view.set_unknown(
                "Capture: no card status in it, so no state is known. SPI responses carry "
                "only R1's in_idle_state bit (§7.3.2)." if spi else
                "Capture: no R1/R1b/R6 response in it, so no state is known (§4.10.1).")

    def _detach(self) -> None:
        if self._card is not None:
            self._card.events.state.disconnect(self.view.set_transition)
            self._card.events.busy.disconnect(self.view.set_busy)
            self._card = None
