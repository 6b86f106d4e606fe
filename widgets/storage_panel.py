"""Storage and faults: latency, hang/release, EIO range, disk full, durable, async/legacy.

The panel only emits what the user asked for (design.md "Asynchronous storage": fault
injection for teaching and tests); ``apply_to(faults)`` wires the fault signals straight
to a ``FaultInjector``. Durable and legacy-sync are ``StorageOptions``: the app applies
them (they need the image reopened). Bad input shows an inline error and emits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sdmodel.storage import FaultInjector, FaultSpec, Latency, LbaRange
from sdmodel.units import format_size, parse_size
from widgets.qt import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QtWidgets,
    QVBoxLayout,
    QWidget,
    Signal,
)

__all__ = ["StoragePanel"]

_MAX_LATENCY_MS = 600_000.0  # ten minutes: anything longer is a hang
_ERROR_STYLE = "color: #c0392b;"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def _parse_lba(text: str, what: str) -> int:
    value = text.strip().replace(",", "").replace("_", "")
    if not value.isdigit():
        raise ValueError(f"{what} must be a block number (0, 1, 2...), not {text.strip()!r}")
    return int(value)


class StoragePanel(QWidget):
    """Controls for the storage of the running card."""

    sigLatency = Signal(object)  # Latency
    sigHang = Signal(bool)  # True: hang, False: release
    sigEio = Signal(object, object)  # first LBA, last LBA (Python ints)
    sigDiskFull = Signal(object)  # bytes that may still be written; None: full now
    sigClearFaults = Signal()
    sigDurable = Signal(bool)
    sigLegacySync = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._block_count: int | None = None
        self._target: FaultInjector | None = None
        self._latency = Latency()
        self._hung = False
        self._eio: list[LbaRange] = []
        self._full: int | None = None
        self._full_set = False
        self._external: tuple[str, ...] = ()
        layout = QVBoxLayout(self)
        layout.addWidget(self._latency_group())
        layout.addWidget(self._hang_group())
        layout.addWidget(self._eio_group())
        layout.addWidget(self._full_group())
        layout.addWidget(self._mode_group())
        self._summary = QLabel()
        self._summary.setWordWrap(True)
        layout.addWidget(self._summary)
        self.clear_button = QtWidgets.QPushButton("Clear all faults")
        self.clear_button.setToolTip("Remove latency, hang, EIO ranges and disk full")
        self.clear_button.clicked.connect(self._clear)
        layout.addWidget(self.clear_button)
        layout.addStretch(1)
        self.sigLatency.connect(self._forward_latency)
        self.sigHang.connect(self._forward_hang)
        self.sigEio.connect(self._forward_eio)
        self.sigDiskFull.connect(self._forward_full)
        self.sigClearFaults.connect(self._forward_clear)
        self._show_state()

    # -- building -------------------------------------------------------------------------

    def _latency_group(self) -> QGroupBox:
        box = QGroupBox("Latency per storage operation")
        self.latency_fixed = QtWidgets.QRadioButton("fixed")
        self.latency_random = QtWidgets.QRadioButton("random (uniform)")
        self.latency_fixed.setChecked(True)
        kinds = QtWidgets.QHBoxLayout()
        kinds.addWidget(self.latency_fixed)
        kinds.addWidget(self.latency_random)
        kinds.addStretch(1)
        self.latency_min = self._ms_spin()
        self.latency_max = self._ms_spin()
        self._latency_min_label = QLabel("delay:")
        self._latency_max_label = QLabel("max:")
        self.latency_error = self._error_label()
        form = QFormLayout(box)
        form.addRow(kinds)
        form.addRow(self._latency_min_label, self.latency_min)
        form.addRow(self._latency_max_label, self.latency_max)
        form.addRow(self.latency_error)
        self.latency_fixed.toggled.connect(self._latency_kind_changed)
        self.latency_min.valueChanged.connect(self._latency_edited)
        self.latency_max.valueChanged.connect(self._latency_edited)
        self._latency_kind_changed(emit=False)
        return box

    def _ms_spin(self) -> QtWidgets.QDoubleSpinBox:
        spin = QtWidgets.QDoubleSpinBox()
        spin.setRange(0.0, _MAX_LATENCY_MS)
        spin.setDecimals(1)
        spin.setSuffix(" ms")
        spin.setKeyboardTracking(False)  # emit when the user is done typing
        return spin

    def _error_label(self) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setStyleSheet(_ERROR_STYLE)
        label.hide()
        return label

    def _hang_group(self) -> QGroupBox:
        box = QGroupBox("Hang")
        self.hang_button = QtWidgets.QPushButton("Hang storage")
        self.hang_button.setToolTip("Every storage operation waits until Release")
        self.release_button = QtWidgets.QPushButton("Release")
        self.hang_button.clicked.connect(lambda: self._emit_hang(True))
        self.release_button.clicked.connect(lambda: self._emit_hang(False))
        row = QtWidgets.QHBoxLayout(box)
        row.addWidget(self.hang_button)
        row.addWidget(self.release_button)
        return box

    def _eio_group(self) -> QGroupBox:
        box = QGroupBox("I/O error (EIO) on blocks")
        self.eio_first = QtWidgets.QLineEdit()
        self.eio_first.setPlaceholderText("first LBA")
        self.eio_last = QtWidgets.QLineEdit()
        self.eio_last.setPlaceholderText("last LBA (= first)")
        self.eio_add = QtWidgets.QPushButton("Add")
        self.eio_add.clicked.connect(self._add_eio)
        self.eio_last.returnPressed.connect(self._add_eio)
        self.eio_error = self._error_label()
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.eio_first)
        row.addWidget(QLabel("–"))
        row.addWidget(self.eio_last)
        row.addWidget(self.eio_add)
        column = QVBoxLayout(box)
        column.addLayout(row)
        column.addWidget(self.eio_error)
        return box

    def _full_group(self) -> QGroupBox:
        box = QGroupBox("Disk full")
        self.full_bytes = QtWidgets.QLineEdit()
        self.full_bytes.setPlaceholderText("bytes still writable, e.g. 1MiB (empty: full now)")
        self.full_set = QtWidgets.QPushButton("Set")
        self.full_set.clicked.connect(self._set_full)
        self.full_bytes.returnPressed.connect(self._set_full)
        self.full_error = self._error_label()
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.full_bytes, 1)
        row.addWidget(self.full_set)
        column = QVBoxLayout(box)
        column.addLayout(row)
        column.addWidget(self.full_error)
        return box

    def _mode_group(self) -> QGroupBox:
        box = QGroupBox("Storage mode")
        self.async_mode = QtWidgets.QRadioButton("asynchronous (I/O in the storage executor)")
        self.legacy_mode = QtWidgets.QRadioButton(
            "synchronous legacy (I/O in the GUI thread: freezes the window)")
        self.async_mode.setChecked(True)
        self.durable = QtWidgets.QCheckBox("durable: fdatasync before acknowledging a write")
        self.legacy_mode.toggled.connect(self.sigLegacySync.emit)
        self.durable.toggled.connect(self.sigDurable.emit)
        column = QVBoxLayout(box)
        column.addWidget(self.async_mode)
        column.addWidget(self.legacy_mode)
        column.addWidget(self.durable)
        return box

    # -- state shown ----------------------------------------------------------------------

    def set_block_count(self, blocks: int | None) -> None:
        """The card's size in blocks: EIO ranges beyond it are refused."""
        self._block_count = blocks

    def set_storage_options(self, *, durable: bool, legacy_sync: bool) -> None:
        """Show the storage's options without emitting."""
        quiet = (self.durable, self.legacy_mode, self.async_mode)
        for widget in quiet:
            widget.blockSignals(True)
        self.durable.setChecked(durable)
        (self.legacy_mode if legacy_sync else self.async_mode).setChecked(True)
        for widget in quiet:
            widget.blockSignals(False)

    def show_faults(self, faults: FaultInjector, specs: Iterable[FaultSpec] = ()) -> None:
        """Show ``faults``' latency and hang; ``specs`` names faults applied elsewhere
        (the CLI's ``--fault``) that the injector cannot list."""
        self._latency = faults.latency
        self._hung = faults.hung
        self._external = tuple(str(spec) for spec in specs)
        quiet = (self.latency_fixed, self.latency_random, self.latency_min, self.latency_max)
        for widget in quiet:  # radios are exclusive: block both before checking one
            widget.blockSignals(True)
        (self.latency_fixed if self._latency.fixed else self.latency_random).setChecked(True)
        self.latency_min.setValue(self._latency.low_s * 1000.0)
        self.latency_max.setValue(self._latency.high_s * 1000.0)
        for widget in quiet:
            widget.blockSignals(False)
        self._latency_kind_changed(emit=False)
        self._show_state()

    def apply_to(self, faults: FaultInjector | None) -> None:
        """From now on every fault action is applied to ``faults`` (None: to nothing);
        shows its current latency and hang."""
        self._target = faults
        if faults is not None:
            self._eio.clear()
            self._full_set = False
            self.show_faults(faults)

    def faults_text(self) -> str:
        """The active faults as one line, e.g. ``latency 300 ms · hang · EIO 100-199``."""
        parts = []
        if self._latency.high_s > 0:
            latency = (_ms(self._latency.low_s) if self._latency.fixed else
                       f"{_ms(self._latency.low_s)} – {_ms(self._latency.high_s)}")
            parts.append(f"latency {latency}")
        if self._hung:
            parts.append("hang")
        parts += [f"EIO {lbas}" for lbas in self._eio]
        if self._full_set:
            parts.append("disk full" if not self._full else
                         f"disk full after {format_size(self._full)}")
        parts += self._external
        return " · ".join(parts) if parts else "none"

    def error_text(self) -> str:
        """The inline errors now shown, one per line."""
        labels = (self.latency_error, self.eio_error, self.full_error)
        return "\n".join(label.text() for label in labels if not label.isHidden())

    def _show_state(self) -> None:
        self._summary.setText(f"Active faults: {self.faults_text()}")
        self.hang_button.setEnabled(not self._hung)
        self.release_button.setEnabled(self._hung)

    def _set_error(self, label: QLabel, text: str) -> None:
        label.setText(text)
        label.setVisible(bool(text))

    # -- user actions -----------------------------------------------------------------------

    def _latency_kind_changed(self, *_: object, emit: bool = True) -> None:
        random = self.latency_random.isChecked()
        self._latency_min_label.setText("min:" if random else "delay:")
        self.latency_max.setVisible(random)
        self._latency_max_label.setVisible(random)
        if emit:
            self._latency_edited()

    def _latency_edited(self) -> None:
        low = self.latency_min.value() / 1000.0
        high = self.latency_max.value() / 1000.0 if self.latency_random.isChecked() else low
        try:
            latency = Latency(low, high)
        except ValueError:
            self._set_error(self.latency_error, f"random latency needs min <= max "
                                                f"(min {_ms(low)}, max {_ms(high)})")
            return
        self._set_error(self.latency_error, "")
        self._latency = latency
        self._show_state()
        self.sigLatency.emit(latency)

    def _emit_hang(self, hang: bool) -> None:
        self._hung = hang
        self._show_state()
        self.sigHang.emit(hang)

    def _add_eio(self) -> None:
        try:
            first = _parse_lba(self.eio_first.text(), "first LBA")
            last_text = self.eio_last.text().strip()
            last = _parse_lba(last_text, "last LBA") if last_text else first
            if last < first:
                raise ValueError(f"last LBA {last:,} is before first LBA {first:,}")
            if self._block_count is not None and last >= self._block_count:
                raise ValueError(f"LBA {last:,} is past the end of the card "
                                 f"(last LBA {self._block_count - 1:,})")
        except ValueError as error:
            self._set_error(self.eio_error, str(error))
            return
        self._set_error(self.eio_error, "")
        self._eio.append(LbaRange(first, last))
        self._show_state()
        self.sigEio.emit(first, last)

    def _set_full(self) -> None:
        text = self.full_bytes.text().strip()
        try:
            budget = parse_size(text) if text else None
        except ValueError as error:
            self._set_error(self.full_error, str(error))
            return
        self._set_error(self.full_error, "")
        self._full, self._full_set = budget, True
        self._show_state()
        self.sigDiskFull.emit(budget)

    def _clear(self) -> None:
        self._latency = Latency()
        self._hung = False
        self._eio.clear()
        self._full_set = False
        self._external = ()
        for spin in (self.latency_min, self.latency_max):
            spin.blockSignals(True)
            spin.setValue(0.0)
            spin.blockSignals(False)
        for label in (self.latency_error, self.eio_error, self.full_error):
            self._set_error(label, "")
        self._show_state()
        self.sigClearFaults.emit()

    # -- apply_to ---------------------------------------------------------------------------

    def _forward_latency(self, latency: Latency) -> None:
        if self._target is not None:
            self._target.latency = latency

    def _forward_hang(self, hang: bool) -> None:
        if self._target is not None:
            (self._target.hang if hang else self._target.release)()

    def _forward_eio(self, first: int, last: int) -> None:
        if self._target is not None:
            self._target.eio(first, last)

    def _forward_full(self, budget: int | None) -> None:
        if self._target is not None:
            self._target.disk_full(budget)

    def _forward_clear(self) -> None:
        if self._target is not None:
            self._target.clear()
