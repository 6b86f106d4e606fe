"""Shows a disk image's ``ImageInfo``: size, card type, capacity and partition table."""

from __future__ import annotations

from pathlib import Path

from sdmodel.images import PARTITION_COLUMNS, ImageInfo, describe_image
from widgets.qt import (
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QSizePolicy,
    Qt,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["ImageInfoView"]


class ImageInfoView(QWidget):
    """The rows of ``describe_image`` above a table of the image's partitions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._form = QFormLayout()
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._rows: dict[str, str] = {}
        self._warnings = QLabel()
        self._warnings.setWordWrap(True)
        self._warnings.setStyleSheet("color: #b35900;")
        self._partitions = QTreeWidget()
        self._partitions.setRootIsDecorated(False)
        self._partitions.setSizeAdjustPolicy(QTreeWidget.SizeAdjustPolicy.AdjustToContents)
        self._partitions.setHeaderLabels([title for title, _ in PARTITION_COLUMNS])
        self._partitions.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        card = QGroupBox("Card")
        card_layout = QVBoxLayout(card)
        card_layout.addLayout(self._form)
        card_layout.addWidget(self._warnings)
        partitions = QGroupBox("Partitions")
        QVBoxLayout(partitions).addWidget(self._partitions)
        layout = QVBoxLayout(self)
        layout.addWidget(card)
        layout.addWidget(partitions)
        layout.addStretch(1)
        self.set_info(None)

    def rows(self) -> dict[str, str]:
        """The facts as shown: row title -> text."""
        return dict(self._rows)

    def warnings_text(self) -> str:
        return self._warnings.text() if not self._warnings.isHidden() else ""

    def partition_rows(self) -> list[list[str]]:
        """The partition table as shown, one list of cell texts per partition."""
        root = self._partitions.invisibleRootItem()
        columns = len(PARTITION_COLUMNS)
        return [[root.child(i).text(c) for c in range(columns)] for i in range(root.childCount())]

    def set_info(self, info: ImageInfo | None) -> None:
        """Show ``info``, or say that no image is loaded."""
        while self._form.rowCount():
            self._form.removeRow(0)
        self._partitions.clear()
        rows = describe_image(info) if info is not None else [("Image", "no image loaded")]
        self._rows = dict(rows)
        for title, text in rows:
            if title == "Image":
                text = _home_relative(text)
            label = QLabel(text)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setToolTip(text)
            # Long paths are clipped rather than widening the dock (the tooltip has it all).
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self._form.addRow(f"{title}:", label)
        warnings = info.warnings if info is not None else ()
        self._warnings.setText("\n".join(warnings))
        self._warnings.setVisible(bool(warnings))
        names = info is not None and any(p.name for p in info.partitions)
        self._partitions.setColumnHidden(len(PARTITION_COLUMNS) - 1, not names)
        for part in info.partitions if info is not None else ():
            self._partitions.addTopLevelItem(
                QTreeWidgetItem([text(part) for _, text in PARTITION_COLUMNS])
            )


def _home_relative(path: str) -> str:
    """``~/x/y.img`` for a path under the home directory (shorter in a narrow dock)."""
    try:
        return str(Path("~") / Path(path).relative_to(Path.home()))
    except ValueError:
        return path
