"""The "Interrupts" dock: the IRQ line and each status bit on the waveform's time axis."""

from __future__ import annotations

from app.docks.base import Dock
from sdmodel.sim.simulator import Simulator
from sdmodel.trace import Trace
from widgets.irq_timeline import IrqTimeline
from widgets.qt import QWidget

__all__ = ["IrqDock"]


class IrqDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.view = IrqTimeline()
        super().__init__("Interrupts", "IrqDock", self.view, parent)

    def attach(self, sim: Simulator) -> None:
        self.show_trace(sim.trace)

    def show_trace(self, trace: Trace | None) -> None:
        self.view.set_trace(trace)
