"""The breakpoint editor: a list of breakpoint specs with enable boxes, add and remove.

Specs use the simulator's syntax (``cmd=17``, ``irq=DATA_TIMEOUT``, ``lba=100..199``...,
see ``sdmodel.sim.breakpoints.BREAKPOINT_KINDS``); a bad spec is shown inline under the
entry, never raised. The editor owns no simulation: ``breakpoints()`` gives the enabled
list and ``sigChanged`` tells the app to hand it to the scheduler.
"""

from __future__ import annotations

from sdmodel.sim.breakpoints import BREAKPOINT_KINDS, Breakpoint, BreakpointError, parse_breakpoint
from widgets.qt import QtCore, QtWidgets, QVBoxLayout, QWidget, Signal

__all__ = ["BreakpointEditor"]

_Check = QtCore.Qt.CheckState


class BreakpointEditor(QWidget):
    sigChanged = Signal()  # the enabled breakpoints changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = QtWidgets.QLineEdit(self)
        self.entry.setPlaceholderText("cmd=17, irq=DATA_TIMEOUT, state=prg, lba=0..63 …")
        self.entry.setToolTip("<br>".join(
            f"<b>{k.syntax}</b>: {k.meaning}" for k in BREAKPOINT_KINDS.values()))
        self.entry.setCompleter(QtWidgets.QCompleter(
            [k.syntax.split("[")[0].split(" ")[0] for k in BREAKPOINT_KINDS.values()], self))
        self.entry.returnPressed.connect(self.add_from_entry)
        self.add_button = QtWidgets.QPushButton("Add", self)
        self.add_button.clicked.connect(self.add_from_entry)
        self.error = QtWidgets.QLabel(self)
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        self.error.hide()
        self.list = QtWidgets.QListWidget(self)
        self.list.itemChanged.connect(lambda _item: self.sigChanged.emit())
        self.remove_button = QtWidgets.QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QtWidgets.QPushButton("Clear all", self)
        self.clear_button.clicked.connect(self.clear)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.entry, 1)
        top.addWidget(self.add_button)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.remove_button)
        bottom.addWidget(self.clear_button)
        bottom.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.error)
        layout.addWidget(self.list, 1)
        layout.addLayout(bottom)

    def add(self, spec: str) -> Breakpoint | None:
        """Add ``spec``; returns the breakpoint, or None (and shows why) if it is bad."""
        try:
            breakpoint_ = parse_breakpoint(spec)
        except BreakpointError as error:
            self.error.setText(str(error))
            self.error.show()
            return None
        self.error.hide()
        if breakpoint_.spec not in self.specs():
            item = QtWidgets.QListWidgetItem(breakpoint_.spec)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(_Check.Checked)
            item.setToolTip(BREAKPOINT_KINDS[breakpoint_.kind].meaning)
            self.list.addItem(item)  # itemChanged -> sigChanged
            self.sigChanged.emit()
        return breakpoint_

    def add_from_entry(self) -> None:
        if self.entry.text().strip() and self.add(self.entry.text()) is not None:
            self.entry.clear()

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.sigChanged.emit()

    def clear(self) -> None:
        self.list.clear()
        self.sigChanged.emit()

    def specs(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def breakpoints(self) -> list[Breakpoint]:
        """The enabled breakpoints, in list order."""
        return [parse_breakpoint(item.text()) for item in self._items()
                if item.checkState() == _Check.Checked]

    def set_specs(self, specs: list[str]) -> None:
        """Replace the list (saved settings); bad specs are skipped."""
        self.list.clear()
        for spec in specs:
            self.add(spec)
        self.error.hide()

    def _items(self) -> list[QtWidgets.QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]
