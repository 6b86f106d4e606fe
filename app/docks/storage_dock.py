"""The "Storage & faults" dock: latency, hang, EIO, disk full, durable and legacy modes
applied to the open image's fault injector; the mode switches reopen the image."""

from __future__ import annotations

from collections.abc import Callable

from app.docks.base import Dock
from sdmodel.sim.simulator import Simulator
from widgets.qt import QtWidgets, QWidget
from widgets.storage_panel import StoragePanel

__all__ = ["StorageDock"]


class StorageDock(Dock):
    def __init__(self, reopen: Callable[..., object], parent: QWidget | None = None) -> None:
        self.panel = StoragePanel()
        scroll = QtWidgets.QScrollArea()  # the panel is tall; the dock may be short
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        super().__init__("Storage and faults", "StorageDock", scroll, parent)
        self.panel.sigDurable.connect(lambda on: reopen(durable=on))
        self.panel.sigLegacySync.connect(lambda on: reopen(legacy_sync=on))

    def attach(self, sim: Simulator) -> None:
        self.panel.apply_to(sim.storage.faults)
        self.panel.set_block_count(sim.storage.block_count)
        self.panel.set_storage_options(durable=sim.options.durable,
                                       legacy_sync=sim.options.legacy_sync)
        self.panel.show_faults(sim.storage.faults)
