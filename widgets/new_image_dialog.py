"""File → New image: where, how large, and whether to put a FAT file system on it.

Non-modal (``open()``); ``sigCreate(path, size, fat)`` once the entries are valid. The
size uses the product's one size grammar (``sdmodel.units.parse_size``) and the card
limits of ``sdmodel.capacity``; problems show under the entries.
"""

from __future__ import annotations

from pathlib import Path

from sdmodel.capacity import card_type_for_size
from sdmodel.errors import SdscopeError
from sdmodel.units import format_size, parse_size
from widgets.qt import QFormLayout, QLabel, QtWidgets, QVBoxLayout, QWidget, Signal

__all__ = ["NewImageDialog"]


class NewImageDialog(QtWidgets.QDialog):
    sigCreate = Signal(object, object, bool)  # Path, size in bytes (may pass 2^31), FAT

    def __init__(self, folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New disk image")
        self.path = QtWidgets.QLineEdit(str(folder / "card.img"), self)
        browse = QtWidgets.QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.size = QtWidgets.QLineEdit("64MiB", self)
        self.size.setToolTip("e.g. 64MiB (SDSC), 4GiB (SDHC), 64GiB (SDXC); sparse on disk")
        self.size.textChanged.connect(self._describe)
        self.fat = QtWidgets.QCheckBox("FAT partition with sample files (MBR, at 4 MiB)", self)
        self.fat.setChecked(True)
        self.card = QLabel(self)
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("File", row)
        form.addRow("Size", self.size)
        form.addRow("", self.fat)
        form.addRow("Card", self.card)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._describe()

    def _browse(self) -> None:
        dialog = QtWidgets.QFileDialog(self, "New disk image", str(Path(self.path.text()).parent),
                                       "Disk images (*.img)")
        dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
        dialog.fileSelected.connect(self.path.setText)
        dialog.open()

    def checked(self) -> tuple[Path, int] | str:
        """(path, size) or the reason they cannot be used."""
        try:
            size = parse_size(self.size.text())
            card_type_for_size(size)
        except (SdscopeError, ValueError) as error:
            return str(error)
        path = Path(self.path.text()).expanduser()
        if not path.parent.is_dir():
            return f"folder {path.parent} does not exist"
        if path.exists():
            return f"{path.name} exists already; choose another name"
        return path, size

    def _describe(self, *_: object) -> None:
        result = self.checked()
        if isinstance(result, str):
            self.card.setText("—")
            return
        size = result[1]
        self.card.setText(f"{card_type_for_size(size).value}, {format_size(size)}")

    def _accept(self) -> None:
        result = self.checked()
        if isinstance(result, str):
            self.error.setText(result)
            return
        self.sigCreate.emit(result[0], result[1], self.fat.isChecked())
        self.accept()
