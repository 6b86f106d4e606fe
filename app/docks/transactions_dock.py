"""The "Transactions" dock: one row per command exchange of the shown trace."""

from __future__ import annotations

from app.docks.base import Dock
from sdmodel.sim.simulator import Simulator
from sdmodel.trace import Trace
from widgets.qt import QWidget
from widgets.transactions import TransactionView

__all__ = ["TransactionsDock"]


class TransactionsDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.view = TransactionView()
        super().__init__("Transactions", "TransactionsDock", self.view, parent)

    def attach(self, sim: Simulator) -> None:
        self.show_trace(sim.trace, byte_addressed=not sim.card.block_addressed)

    def show_trace(self, trace: Trace | None, *, byte_addressed: bool | None = None) -> None:
        self.view.set_trace(trace)
        self.view.model.set_byte_addressed(byte_addressed)
