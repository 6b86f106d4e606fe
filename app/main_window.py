"""The main window: menus, status bar, dock panels and the loaded disk image.

Panels are ``QDockWidget``s added with ``add_dock``, which also lists them in the View
menu; their arrangement is saved in QSettings on close and restored on start, and View →
Reset layout brings back the arrangement the window was built with. Loading an image
reads its headers in an executor thread so a slow disk never freezes the window.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from pathlib import Path

from qasync import asyncSlot

from app import __version__
from app.docks.image_dock import ImageDock
from app.excepthook import show_error
from app.settings import open_settings
from sdmodel.errors import ImageError
from sdmodel.images import ImageInfo, ensure_demo_image, format_size, read_image_info
from widgets.qt import (
    QAction,
    QByteArray,
    QCloseEvent,
    QDockWidget,
    QEvent,
    QFileDialog,
    QFrame,
    QKeySequence,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSettings,
    QSize,
    Qt,
    QTimer,
    QWidget,
    Signal,
)

__all__ = ["MainWindow"]

_KEY_GEOMETRY = "mainWindow/geometry"
_KEY_STATE = "mainWindow/state"
_KEY_RECENT = "recentImages"
_IMAGE_FILTERS = "Disk images (*.img *.bin *.raw *.iso);;All files (*)"


class MainWindow(QMainWindow):
    """sdscope's window. ``await open_image(path)`` loads an image into every panel."""

    sigImageLoaded = Signal(object)  # ImageInfo
    sigFirstPaint = Signal()
    sigClosed = Signal()

    _painted = False  # a class default: Qt delivers events before __init__ finishes
    DEFAULT_SIZE = QSize(900, 560)
    LAYOUT_VERSION = 1  # bump when docks change so old saved states are ignored
    MAX_RECENT = 8

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle("sdscope")
        self.setDockNestingEnabled(True)
        self._settings = settings if settings is not None else open_settings()
        self._docks: list[QDockWidget] = []
        self.info: ImageInfo | None = None
        self._build_menus()
        self._build_status_bar()

        self.image_dock = ImageDock(self)
        self.add_dock(self.image_dock, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.resize(self.DEFAULT_SIZE)
        self._default_state = self.saveState(self.LAYOUT_VERSION)
        self.restore_layout()

    # --- construction ----------------------------------------------------------------

    def _action(
        self, text: str, slot: Callable[..., object], shortcut: str | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action("&Open image…", self.show_open_dialog, "Ctrl+O")
        self.open_demo_action = self._action("Open &demo card", self._open_demo)
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        file_menu.addAction(self.open_action)
        file_menu.addAction(self.open_demo_action)
        self.recent_menu = file_menu.addMenu("&Recent images")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        self.view_menu = bar.addMenu("&View")
        self._view_separator = self.view_menu.addSeparator()
        self.reset_layout_action = self._action("&Reset layout", self.reset_layout)
        self.view_menu.addAction(self.reset_layout_action)

        help_menu = bar.addMenu("&Help")
        self.about_action = self._action("&About sdscope", self.show_about)
        help_menu.addAction(self.about_action)

    def _build_status_bar(self) -> None:
        self._status_image = QLabel()
        self._status_card = QLabel()
        self._status_capacity = QLabel()
        for i, label in enumerate((self._status_image, self._status_card, self._status_capacity)):
            if i:
                separator = QFrame()
                separator.setFrameShape(QFrame.Shape.VLine)
                separator.setFrameShadow(QFrame.Shadow.Sunken)
                self.statusBar().addPermanentWidget(separator)
            self.statusBar().addPermanentWidget(label)
        self._show_status(None)

    def add_dock(self, dock: QDockWidget, area: Qt.DockWidgetArea) -> None:
        """Add a panel; it gets a toggle in the View menu and takes part in saved layouts
        (it needs a unique object name)."""
        if not dock.objectName():
            raise ValueError(f"dock {dock.windowTitle()!r} needs an object name")
        self.addDockWidget(area, dock)
        self.view_menu.insertAction(self._view_separator, dock.toggleViewAction())
        self._docks.append(dock)

    @property
    def docks(self) -> tuple[QDockWidget, ...]:
        return tuple(self._docks)

    # --- layout ----------------------------------------------------------------------

    def save_layout(self) -> None:
        self._settings.setValue(_KEY_GEOMETRY, self.saveGeometry())
        self._settings.setValue(_KEY_STATE, self.saveState(self.LAYOUT_VERSION))
        self._settings.sync()

    def restore_layout(self) -> bool:
        """Apply the saved geometry and dock arrangement; False if none was usable."""
        geometry = self._settings.value(_KEY_GEOMETRY)
        state = self._settings.value(_KEY_STATE)
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            return self.restoreState(state, self.LAYOUT_VERSION)
        return False

    def reset_layout(self) -> None:
        """Back to the arrangement the window was built with: every dock shown and docked."""
        for dock in self._docks:
            dock.setFloating(False)
            dock.show()
        self.restoreState(self._default_state, self.LAYOUT_VERSION)
        self.resize(self.DEFAULT_SIZE)

    # --- images ----------------------------------------------------------------------

    async def open_image(self, path: str | os.PathLike[str]) -> ImageInfo | None:
        """Load the image at ``path``; a problem is shown in a dialog and gives None."""
        loop = asyncio.get_running_loop()
        try:
            info = await loop.run_in_executor(None, read_image_info, Path(path))
        except ImageError as error:
            show_error("Cannot open image", str(error))
            return None
        self.set_image(info)
        return info

    def set_image(self, info: ImageInfo) -> None:
        self.info = info
        self.image_dock.set_info(info)
        self._show_status(info)
        self.setWindowTitle(f"{info.path.name} — sdscope")
        self._remember(info.path)
        self.sigImageLoaded.emit(info)

    def _show_status(self, info: ImageInfo | None) -> None:
        self._status_image.setText(info.path.name if info else "no image")
        self._status_card.setText(info.card_type.value if info else "")
        self._status_capacity.setText(format_size(info.capacity) if info else "")

    def status_texts(self) -> tuple[str, str, str]:
        """Image name, card type and capacity as the status bar shows them."""
        return (self._status_image.text(), self._status_card.text(),
                self._status_capacity.text())

    def show_open_dialog(self) -> QFileDialog:
        """A non-blocking file dialog; choosing a file loads it."""
        start = str(self.info.path.parent) if self.info else str(Path.home())
        dialog = QFileDialog(self, "Open disk image", start, _IMAGE_FILTERS)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self._open_path)
        dialog.open()
        return dialog

    @asyncSlot(str)
    async def _open_path(self, path: str) -> None:
        await self.open_image(path)

    @asyncSlot()
    async def _open_demo(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(None, ensure_demo_image)
        except ImageError as error:
            show_error("Cannot create the demo card", str(error))
            return
        await self.open_image(path)

    def recent_images(self) -> list[str]:
        value = self._settings.value(_KEY_RECENT, [])
        if isinstance(value, str):  # QSettings returns a one-element list as a string
            value = [value]
        return [str(v) for v in value or []]

    def _remember(self, path: Path) -> None:
        entry = str(path.resolve())
        recent = [entry, *(p for p in self.recent_images() if p != entry)][: self.MAX_RECENT]
        self._settings.setValue(_KEY_RECENT, recent)
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_images()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(functools.partial(self._open_path, path))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self._settings.remove(_KEY_RECENT)
        # Rebuilt later: this runs inside the triggered signal of an action clear() deletes.
        QTimer.singleShot(0, self._fill_recent_menu)

    # --- misc ------------------------------------------------------------------------

    def show_about(self) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "About sdscope",
            f"<b>sdscope {__version__}</b><p>An interactive SD-bus debugger: a simulated SD "
            "card backed by a disk image, an SDHCI controller and a host driver, with the "
            "bus shown as it happens.</p>",
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            self.sigFirstPaint.emit()
        return handled

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)
        if event.isAccepted():
            self.sigClosed.emit()
