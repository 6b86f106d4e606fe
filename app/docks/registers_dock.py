"""The "Registers" dock: the card's registers and the SDHCI register file, field by field.

Values are read from the model without side effects (``Card.register_values``,
``SdhciController.peek``) at most a few times per second while running, and at once
when the simulation pauses or steps; ``mark_step`` then highlights what the step changed.
"""

from __future__ import annotations

from app.docks.base import Dock
from sdmodel.sdhci.registers import REGISTERS
from sdmodel.sim.simulator import Simulator
from sdmodel.trace_registers import SeenRegisters
from widgets.live_clock import LiveClock, Slot
from widgets.qt import QtGui, QTimer, QWidget
from widgets.register_view import RegisterView

__all__ = ["RegistersDock", "REFRESH_MS"]

REFRESH_MS = 500  # while running; a pause or step refreshes at once


class RegistersDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.view = RegisterView()
        super().__init__("Registers", "RegistersDock", self.view, parent)
        self.sim: Simulator | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        # while running: every REFRESH_MS, in the live clock's card slot
        self._timer.timeout.connect(lambda: LiveClock.shared().request(Slot.CARD, self.refresh))

    def attach(self, sim: Simulator) -> None:
        self.sim = sim
        self.setWindowTitle("Registers")
        self.view.clear()
        self.refresh()
        self.view.mark_step()

    def show_capture(self, seen: SeenRegisters) -> None:
        """A decoded capture: the card registers its responses and data blocks carried
        (newest of each); the controller's are not on the bus, so they read unknown."""
        self.sim = None
        self._timer.stop()
        self.setWindowTitle("Registers (capture)")
        self.view.clear()
        self.view.set_card_registers(seen.values)

    def set_running(self, running: bool) -> None:
        if running:
            self._timer.start()
        else:
            self._timer.stop()
            self.refresh()

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()  # values skipped while hidden

    def stepped(self) -> None:
        """After a step: show the new values highlighted against the previous step."""
        self.refresh()
        self.view.mark_step()

    def refresh(self) -> None:
        sim = self.sim
        if sim is None or self.visibleRegion().isEmpty():  # hidden or tabbed away
            return
        self.view.set_card_registers(sim.card.register_values())
        if sim.controller is not None:
            self.view.set_controller_registers(
                {reg.name: sim.controller.peek(reg.name) for reg in REGISTERS})

    def show_field(self, register: str, field: str | None) -> None:
        """Select a register (and field) in the tree, e.g. for a lesson's focus."""
        try:
            item = self.view.item(register, field)
        except KeyError:  # not shown (e.g. a controller register in SPI mode)
            return
        if item is not None:
            self.view.tree.setCurrentItem(item)
            self.view.tree.scrollToItem(item)
