"""The main window: waveforms in the centre, panels in docks, the simulation toolbar.

Panels are ``QDockWidget``s added with ``add_dock``, which also lists them in the View
menu; their arrangement is saved in QSettings on close and restored on start, and View →
Reset layout brings back the arrangement the window was built with. Everything slow
(reading an image's headers, decoding a capture, exporting, creating an image) runs in
an executor or as a task on the one qasync loop; dialogs are opened with ``open()``.
The simulation itself lives in ``Session``; the docks follow its simulator.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from pathlib import Path

from qasync import asyncSlot

from app import __version__
from app.capture_import import ImportedCapture, decode_into_trace, read_header
from app.controls import SimulationControls
from app.docks.base import Dock
from app.docks.breakpoints_dock import BreakpointsDock
from app.docks.console_dock import ConsoleDock
from app.docks.image_dock import ImageDock
from app.docks.irq_dock import IrqDock
from app.docks.lesson_dock import LessonDock
from app.docks.registers_dock import RegistersDock
from app.docks.state_dock import StateDock
from app.docks.storage_dock import StorageDock
from app.docks.transactions_dock import TransactionsDock
from app.excepthook import show_error
from app.session import Session, SessionState
from app.settings import open_settings
from sdmodel.capture.export import export_format, export_trace
from sdmodel.errors import SdscopeError
from sdmodel.images import ImageInfo, create_image, ensure_demo_image, format_size, read_image_info
from sdmodel.lessons import Lesson
from sdmodel.lessons.runner import StepReport
from sdmodel.sim.simulator import Simulator
from sdmodel.tokens import Token
from sdmodel.trace import Trace
from widgets.channel_map_dialog import ChannelMapDialog
from widgets.new_image_dialog import NewImageDialog
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
    QtGui,
    QTimer,
    QtWidgets,
    QWidget,
    Signal,
)
from widgets.responsiveness import ResponsivenessMeter
from widgets.waveform import WaveformView

__all__ = ["MainWindow", "CAPTURE_SUFFIXES"]

_KEY_GEOMETRY = "mainWindow/geometry"
_KEY_STATE = "mainWindow/state"
_KEY_RECENT = "recentImages"
_KEY_BREAKPOINTS = "breakpoints"
_KEY_WORKLOAD = "workload"
_IMAGE_FILTERS = "Disk images (*.img *.bin *.raw *.iso);;All files (*)"
_CAPTURE_FILTERS = "Captures (*.sr *.vcd);;sigrok sessions (*.sr);;VCD (*.vcd);;All files (*)"
_EXPORT_FILTERS = "sigrok session (*.sr);;VCD (*.vcd)"
CAPTURE_SUFFIXES = (".sr", ".vcd")


class MainWindow(QMainWindow):
    """sdscope's window. ``await open_image(path)`` loads an image into the simulator and
    every panel; ``await open_capture(path)`` shows a decoded capture."""

    sigImageLoaded = Signal(object)  # ImageInfo
    sigCaptureLoaded = Signal(object)  # ImportedCapture
    sigFirstPaint = Signal()
    sigClosed = Signal()

    _painted = False  # a class default: Qt delivers events before __init__ finishes
    DEFAULT_SIZE = QSize(1400, 900)
    LAYOUT_VERSION = 3  # bump when docks change so old saved states are ignored
    MAX_RECENT = 8

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle("sdscope")
        self.setDockNestingEnabled(True)
        self.setAcceptDrops(True)
        self._settings = settings if settings is not None else open_settings()
        self._docks: list[QDockWidget] = []
        self._tasks: set[asyncio.Future[object]] = set()
        self.info: ImageInfo | None = None
        self.capture: ImportedCapture | None = None
        self.session = Session(self)
        self.controls = SimulationControls(self.session, self, self._workload_error)

        self.waveform = WaveformView(self)
        self.setCentralWidget(self.waveform)
        self._build_menus()
        self._build_docks()
        self.addToolBar(self.controls.toolbar(self))
        self._build_status_bar()
        self._connect()
        self._restore_settings()

        self.resize(self.DEFAULT_SIZE)
        self._default_state: QByteArray | None = None  # taken when first shown, sized
        self._restored = self.restore_layout()

    # --- construction ----------------------------------------------------------------

    def _build_docks(self) -> None:
        """Waveforms in the centre with the interrupt lanes under them; under those the
        tabs Transactions / Image / Storage / Console; registers and the state diagram at
        the right, running the full height."""
        self.image_dock = ImageDock(self)
        self.storage_dock = StorageDock(self.reopen, self)
        self.registers_dock = RegistersDock(self)
        self.state_dock = StateDock(self)
        self.breakpoints_dock = BreakpointsDock(self)
        self.transactions_dock = TransactionsDock(self)
        self.irq_dock = IrqDock(self)
        self.console_dock = ConsoleDock(self)
        self.lesson_dock = LessonDock(self.session.adopt, self.focus, self.open_capture, self)
        self._build_dock_layout()

    def _build_dock_layout(self) -> None:
        right = Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        for dock in (self.registers_dock, self.state_dock, self.breakpoints_dock,
                     self.lesson_dock):
            self.add_dock(dock, right)
        for dock in (self.irq_dock, self.transactions_dock, self.image_dock,
                     self.storage_dock, self.console_dock):
            self.add_dock(dock, bottom)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self.splitDockWidget(self.irq_dock, self.transactions_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(self.registers_dock, self.state_dock, Qt.Orientation.Vertical)
        for dock in (self.image_dock, self.storage_dock, self.console_dock):
            self.tabifyDockWidget(self.transactions_dock, dock)
        self.tabifyDockWidget(self.state_dock, self.breakpoints_dock)
        self.tabifyDockWidget(self.state_dock, self.lesson_dock)
        self.transactions_dock.raise_()
        self.state_dock.raise_()

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
        self.new_image_action = self._action("&New image…", self.show_new_image_dialog,
                                             "Ctrl+N")
        self.open_capture_action = self._action("Open &capture…", self.show_capture_dialog,
                                                "Ctrl+Shift+O")
        self.export_action = self._action("&Export capture…", self.show_export_dialog,
                                          "Ctrl+E")
        self.screenshot_action = self._action("Export &screenshot…", self.show_screenshot_dialog,
                                              "Ctrl+Shift+S")
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        for action in (self.open_action, self.open_demo_action, self.new_image_action):
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("&Recent images")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        file_menu.addSeparator()
        file_menu.addAction(self.open_capture_action)
        file_menu.addAction(self.export_action)
        file_menu.addAction(self.screenshot_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        self.simulation_menu = bar.addMenu("&Simulation")
        self.controls.fill_menu(self.simulation_menu)

        self.view_menu = bar.addMenu("&View")
        # F and End also work inside the waveform view (its own keys, see WaveformView)
        self.zoom_fit_action = self._action("Zoom to &fit", self.waveform.zoom_to_fit)
        self.follow_action = self._action("Follow the &live edge",
                                          lambda: self.waveform.set_following(True))
        self.view_menu.addAction(self.zoom_fit_action)
        self.view_menu.addAction(self.follow_action)
        self.view_menu.addSeparator()
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
        self._status_session = QLabel()
        self.meter = ResponsivenessMeter(self)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 100)
        self.progress.hide()
        labels = (self._status_image, self._status_card, self._status_capacity,
                  self._status_session, self.meter)
        self.statusBar().addPermanentWidget(self.progress)
        for i, label in enumerate(labels):
            if i:
                separator = QFrame()
                separator.setFrameShape(QFrame.Shape.VLine)
                separator.setFrameShadow(QFrame.Shadow.Sunken)
                self.statusBar().addPermanentWidget(separator)
            self.statusBar().addPermanentWidget(label)
        self._show_status(None)
        self._session_state(self.session.state)

    def _connect(self) -> None:
        session = self.session
        session.sigSimulator.connect(self._simulator_changed)
        session.sigState.connect(self._session_state)
        session.sigHorizon.connect(self._horizon)
        session.sigLog.connect(self._log)
        session.sigBreakpoint.connect(self._breakpoint)
        session.sigRequest.connect(
            lambda request: self._log(Session.describe_request(request), "info"))
        self.breakpoints_dock.editor.sigChanged.connect(self._breakpoints_changed)
        self.waveform.sigTokenClicked.connect(self._token_clicked)
        self.waveform.sigCursorsChanged.connect(
            lambda readout: self.irq_dock.view.set_cursor_times(readout.t_a, readout.t_b))
        self.transactions_dock.view.sigExchangeSelected.connect(self._exchange_selected)
        self.irq_dock.view.set_x_link(self.waveform.plot_item())

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

    # --- layout and settings ---------------------------------------------------------

    def save_layout(self) -> None:
        self._settings.setValue(_KEY_GEOMETRY, self.saveGeometry())
        self._settings.setValue(_KEY_STATE, self.saveState(self.LAYOUT_VERSION))
        self._settings.setValue(_KEY_BREAKPOINTS, self.breakpoints_dock.editor.specs())
        self._settings.setValue(_KEY_WORKLOAD, self.controls.workload.text())
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

    def _restore_settings(self) -> None:
        specs = self._settings.value(_KEY_BREAKPOINTS, [])
        self.breakpoints_dock.editor.set_specs([specs] if isinstance(specs, str)
                                               else list(specs or []))
        workload = self._settings.value(_KEY_WORKLOAD)
        if isinstance(workload, str) and workload.strip():
            self.controls.workload.setText(workload)

    def _default_sizes(self) -> None:
        """Give the waveforms most of the room (docks take their size hints otherwise)."""
        self.resizeDocks([self.registers_dock], [440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.irq_dock, self.transactions_dock], [150, 230],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.registers_dock, self.state_dock], [470, 330],
                         Qt.Orientation.Vertical)

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if self._default_state is None:
            self._default_state = QByteArray()  # Reset layout rebuilds it until sized
            if not self._restored:  # sizes apply once the layout has its geometry
                QTimer.singleShot(0, self._first_sizes)

    def _first_sizes(self) -> None:
        self._default_sizes()
        self._default_state = self.saveState(self.LAYOUT_VERSION)

    def reset_layout(self) -> None:
        """Back to the arrangement the window was built with: every dock shown and docked."""
        for dock in self._docks:
            dock.setFloating(False)
            dock.show()
        if self._default_state:
            self.restoreState(self._default_state, self.LAYOUT_VERSION)
        else:
            self._rebuild_default_layout()
        self.resize(self.DEFAULT_SIZE)
        self._default_sizes()

    def _rebuild_default_layout(self) -> None:
        for dock in self._docks:
            self.removeDockWidget(dock)
        docks = list(self._docks)
        self._docks.clear()
        for dock in docks:
            self.view_menu.removeAction(dock.toggleViewAction())
        self._build_dock_layout()
        for dock in docks:
            dock.show()

    # --- images ----------------------------------------------------------------------

    async def open_image(self, path: str | os.PathLike[str]) -> ImageInfo | None:
        """Load the image at ``path`` into the simulator and the panels; a problem is shown
        in a dialog and gives None (the previous image stays)."""
        loop = asyncio.get_running_loop()
        try:
            info = await loop.run_in_executor(None, read_image_info, Path(path))
            self.session.open(info.path)
        except SdscopeError as error:
            show_error("Cannot open image", str(error))
            return None
        self.set_image(info)
        return info

    def reopen(self, **changes: object) -> None:
        """Reopen the image with changed simulator options (storage mode switches)."""
        if self.session.busy:
            self.session.stop()
        try:
            self.session.reopen(**changes)
        except SdscopeError as error:
            show_error("Cannot reopen the image", str(error))

    def set_image(self, info: ImageInfo) -> None:
        self.info = info
        self.image_dock.set_info(info)
        self._show_status(info)
        self.setWindowTitle(f"{info.path.name} — sdscope")
        self._remember(info.path)
        self.sigImageLoaded.emit(info)

    def _simulator_changed(self, sim: Simulator) -> None:
        self.capture = None
        self.waveform.set_trace(sim.trace)
        self.waveform.set_following(True)
        for dock in self._docks:
            if isinstance(dock, Dock):
                dock.attach(sim)

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
        return self._file_dialog("Open disk image", _IMAGE_FILTERS, self._open_path)

    def _file_dialog(self, title: str, filters: str, chosen: Callable[[str], object], *,
                     save: bool = False) -> QFileDialog:
        """A non-blocking (``open()``) file dialog calling ``chosen`` with the path."""
        dialog = QFileDialog(self, title, self._start_folder(), filters)
        if save:
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(chosen)
        dialog.open()
        return dialog

    def _start_folder(self) -> str:
        return str(self.info.path.parent) if self.info else str(Path.home())

    @asyncSlot(str)
    async def _open_path(self, path: str) -> None:
        await self.open_image(path)

    @asyncSlot()
    async def _open_demo(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(None, ensure_demo_image)
        except SdscopeError as error:
            show_error("Cannot create the demo card", str(error))
            return
        await self.open_image(path)

    def show_new_image_dialog(self) -> NewImageDialog:
        dialog = NewImageDialog(Path(self._start_folder()), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.sigCreate.connect(self._create_image)
        dialog.open()
        return dialog

    @asyncSlot(object, object, bool)
    async def _create_image(self, path: Path, size: int, fat: bool) -> None:
        loop = asyncio.get_running_loop()
        self._log(f"creating {path} ({format_size(size)}{', FAT' if fat else ''})", "info")
        try:
            await loop.run_in_executor(None, functools.partial(create_image, path, size, fat=fat))
        except (SdscopeError, OSError) as error:
            show_error("Cannot create image", str(error))
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

    # --- captures --------------------------------------------------------------------

    def show_capture_dialog(self) -> QFileDialog:
        return self._file_dialog("Open capture", _CAPTURE_FILTERS, self._open_capture_path)

    @asyncSlot(str)
    async def _open_capture_path(self, path: str) -> None:
        await self.open_capture(path)

    async def open_capture(self, path: str | os.PathLike[str], mode: str = "auto",
                           mapping: str | None = None) -> ImportedCapture | None:
        """Decode a capture and show it; asks for a channel mapping when the names do
        not say which channel is which. None if it failed or waits for the mapping."""
        try:
            header = await read_header(path, mode, mapping)
        except SdscopeError as error:
            show_error("Cannot open capture", str(error))
            return None
        if header.mapping_problem:
            dialog = ChannelMapDialog(header.capture.names, header.capture.nprobes,
                                      header.mapping_problem, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.sigMapping.connect(
                lambda m, text: self._track(self.open_capture(path, m, text)))
            dialog.open()
            return None
        self.progress.setValue(0)
        self.progress.show()
        try:
            imported = await decode_into_trace(
                header, mode, mapping, lambda f: self.progress.setValue(int(f * 100)))
        except SdscopeError as error:
            show_error("Cannot decode capture", str(error))
            return None
        finally:
            self.progress.hide()
        self.show_capture(imported)
        return imported

    def show_capture(self, imported: ImportedCapture) -> None:
        """Show a decoded capture in the waveform, transactions and interrupt views, and
        the card registers and state its responses carried (the simulation stays as it
        was; opening an image or running shows it again)."""
        self.capture = imported
        self.waveform.set_trace(imported.trace)
        self.waveform.zoom_to_fit()
        self.transactions_dock.show_trace(imported.trace)
        self.irq_dock.show_trace(None)
        self.registers_dock.show_capture(imported.registers)
        self.state_dock.show_capture(imported.registers, spi=imported.mode == "spi")
        summary = imported.summary
        self._log(f"{imported.path.name}: {imported.mode.upper()} mode, {summary.tokens} tokens, "
                  f"{sum(summary.commands.values())} commands, {summary.crc_errors} CRC errors, "
                  f"{sum(summary.findings.values())} findings", "info")
        self.setWindowTitle(f"{imported.path.name} — sdscope")
        self.sigCaptureLoaded.emit(imported)

    def _track(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- export ----------------------------------------------------------------------

    def shown_trace(self) -> Trace | None:
        if self.capture is not None:
            return self.capture.trace
        return self.session.sim.trace if self.session.sim is not None else None

    def show_export_dialog(self) -> QFileDialog | None:
        if self.session.state == SessionState.RUNNING:
            show_error("Cannot export now", "pause or stop the simulation first: the trace "
                       "is still growing")
            return None
        return self._file_dialog("Export capture", _EXPORT_FILTERS, self._export_path,
                                 save=True)

    @asyncSlot(str)
    async def _export_path(self, path: str) -> None:
        await self.export_capture(path)

    async def export_capture(self, path: str | os.PathLike[str]) -> int | None:
        """Write the shown trace (up to the horizon while paused) as .sr or VCD."""
        trace = self.shown_trace()
        if trace is None or not len(trace):
            show_error("Nothing to export", "run a workload or open a capture first")
            return None
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".sr")
        horizon = self.session.sim.scheduler.horizon if self.session.sim else None
        end = trace.span()[1] if self.capture is not None or horizon is None else horizon
        loop = asyncio.get_running_loop()
        try:
            fmt = export_format(target)
            written = await loop.run_in_executor(None, functools.partial(
                export_trace, trace, target, fmt, t1=end))
        except (SdscopeError, OSError) as error:
            show_error("Cannot export", str(error))
            return None
        self._log(f"exported {target} ({written} {'samples' if fmt == 'sr' else 'changes'})",
                  "info")
        return written

    def show_screenshot_dialog(self) -> QFileDialog:
        return self._file_dialog("Export screenshot", "PNG (*.png)", self.save_screenshot,
                                 save=True)

    def save_screenshot(self, path: str) -> bool:
        target = Path(path) if Path(path).suffix else Path(path).with_suffix(".png")
        if not self.grab().save(str(target)):
            show_error("Cannot save screenshot", f"could not write {target}")
            return False
        self._log(f"screenshot saved to {target}", "info")
        return True

    # --- drag and drop ---------------------------------------------------------------

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        files = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not files:
            return
        event.acceptProposedAction()
        self.open_dropped(files[0])

    def open_dropped(self, path: Path) -> None:
        """A capture by its extension, anything else as a disk image."""
        if path.suffix.lower() in CAPTURE_SUFFIXES:
            self._track(self.open_capture(path))
        else:
            self._track(self.open_image(path))

    # --- simulation -> views ---------------------------------------------------------

    def _session_state(self, state: str) -> None:
        self._status_session.setText(state)
        self.registers_dock.set_running(state == SessionState.RUNNING)
        if state == SessionState.RUNNING:
            if self.capture is not None and self.session.sim is not None:
                self._simulator_shown_again()
            self.waveform.set_following(True)
        self.export_action.setEnabled(state != SessionState.RUNNING)

    def _simulator_shown_again(self) -> None:
        sim = self.session.sim
        assert sim is not None
        self.capture = None
        self.waveform.set_trace(sim.trace)
        self.transactions_dock.attach(sim)
        self.irq_dock.attach(sim)
        self.registers_dock.attach(sim)
        self.state_dock.attach(sim)

    def _horizon(self, ps: int | None) -> None:
        self.waveform.set_horizon(ps)
        if ps is not None:
            self.registers_dock.stepped()
            self.transactions_dock.view.select_at(ps)

    def _breakpoint(self, _breakpoint: object, item: Token) -> None:
        self.waveform.center_on(item)
        self.statusBar().showMessage(f"breakpoint: {item.kind} {item.label()}", 10_000)

    def _breakpoints_changed(self) -> None:
        self.session.set_breakpoints(self.breakpoints_dock.editor.breakpoints())

    def _token_clicked(self, token: Token) -> None:
        self.transactions_dock.view.select_at(token.start)

    def _exchange_selected(self, t0: int, t1: int, token: Token) -> None:
        self.waveform.center_on(token)

    def _log(self, message: str, level: str = "info") -> None:
        sim = self.session.sim
        time_ps = sim.clock.now if sim is not None else None
        self.console_dock.view.append(message, level, time_ps=time_ps)

    def _workload_error(self, message: str) -> None:
        self._log(message, "error")
        self.statusBar().showMessage(message, 10_000)

    # --- lessons ---------------------------------------------------------------------

    def start_lesson(self, lesson: Lesson) -> None:
        self.lesson_dock.open_lesson(lesson)

    def focus(self, focus: dict[str, str], report: StepReport | None) -> None:
        """Bring what a lesson step is about into view (its ``focus`` table)."""
        panel = focus.get("panel")
        if panel == "waveform" and report is not None and report.focus_range is not None:
            t0, t1 = report.focus_range
            margin = max((t1 - t0) // 4, 1)
            self.waveform.set_following(False)
            self.waveform.show_range(t0 - margin, t1 + margin)
            self.waveform.highlight(t0, t1)
        elif panel == "registers":
            self.registers_dock.raise_()
            self.registers_dock.show_field(focus.get("register", ""), focus.get("field"))
        elif panel == "irq":
            self.irq_dock.raise_()
        elif panel == "state":
            self.state_dock.raise_()
        elif panel == "storage":
            self.storage_dock.raise_()

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
        """Quit never waits on hung I/O: the session closes storage without waiting."""
        self.save_layout()
        super().closeEvent(event)
        if event.isAccepted():
            self.image_dock.shutdown()
            self.lesson_dock.shutdown()
            self.session.close()
            self.meter.stop()
            self.sigClosed.emit()
