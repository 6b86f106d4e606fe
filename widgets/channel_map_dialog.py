"""Which capture channel is which bus line, when the file's channel names do not say.

Non-modal (``open()``): ``sigMapping(mode, mapping)`` gives the chosen mode ("sd" or
"spi") and a mapping string in the CLI's syntax (``CLK=0,CMD=3,DAT0=1``) once accepted.
The roles come from ``sdmodel.capture.channels`` (the same tables the decoder uses).
"""

from __future__ import annotations

from collections.abc import Mapping

from sdmodel.capture.channels import REQUIRED, ROLE_SPELLINGS, Mode
from widgets.qt import QFormLayout, QLabel, QtWidgets, QVBoxLayout, QWidget, Signal

__all__ = ["ChannelMapDialog"]

_UNUSED = -1


class ChannelMapDialog(QtWidgets.QDialog):
    sigMapping = Signal(str, str)  # mode, mapping

    def __init__(self, names: Mapping[int, str], nchannels: int, reason: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Map capture channels")
        self._channels = [(i, names.get(i, f"channel {i}")) for i in range(nchannels)]
        self.mode = QtWidgets.QComboBox(self)
        self.mode.addItem("SD mode (CLK, CMD, DAT0-3)", Mode.SD.value)
        self.mode.addItem("SPI mode (SCK, MOSI, MISO, CS)", Mode.SPI.value)
        self.mode.currentIndexChanged.connect(self._build_rows)
        self.form = QFormLayout()
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #c62828")
        self.combos: dict[str, QtWidgets.QComboBox] = {}
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        if reason:
            note = QLabel(reason, self)
            note.setWordWrap(True)
            layout.addWidget(note)
        layout.addWidget(self.mode)
        layout.addLayout(self.form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._build_rows()

    def _build_rows(self, *_: object) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.combos.clear()
        mode = Mode(self.mode.currentData())
        for n, role in enumerate(ROLE_SPELLINGS[mode]):
            combo = QtWidgets.QComboBox(self)
            combo.addItem("(not captured)", _UNUSED)
            for index, name in self._channels:
                combo.addItem(f"{index}: {name}", index)
            if n < len(self._channels):
                combo.setCurrentIndex(n + 1)
            required = role in REQUIRED[mode]
            self.combos[role] = combo
            self.form.addRow(f"{role}{' *' if required else ''}", combo)
        self.error.clear()

    def mapping(self) -> str:
        return ",".join(f"{role}={combo.currentData()}" for role, combo in self.combos.items()
                        if combo.currentData() != _UNUSED)

    def problem(self) -> str:
        """Why the current choice cannot be decoded ("" if it can)."""
        mode = Mode(self.mode.currentData())
        missing = [r for r in REQUIRED[mode] if self.combos[r].currentData() == _UNUSED]
        if missing:
            return f"choose a channel for {', '.join(missing)}"
        used = [c.currentData() for c in self.combos.values() if c.currentData() != _UNUSED]
        if len(used) != len(set(used)):
            return "each channel can carry only one line"
        return ""

    def _accept(self) -> None:
        problem = self.problem()
        if problem:
            self.error.setText(problem)
            return
        self.sigMapping.emit(self.mode.currentData(), self.mapping())
        self.accept()
