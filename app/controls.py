"""The simulation toolbar: workload box, run / pause / stop, the four step units and the
speed; every action has a keyboard shortcut (the debugger conventions: F5 run, F10/F11
steps) and is also in the Simulation menu.

Controls never wait: steps run as asyncio tasks and the buttons follow the session's
state (a step while another is in flight is ignored).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from app.session import Session, SessionState
from sdmodel.driver.workload import parse_workload
from sdmodel.errors import WorkloadError
from sdmodel.sim.scheduler import StepUnit
from widgets.qt import QAction, QKeySequence, QtWidgets, QWidget

__all__ = ["SimulationControls", "STEP_SHORTCUTS", "DEFAULT_WORKLOAD", "SPEEDS"]

DEFAULT_WORKLOAD = "init; read 0 8; write 64 4; read 64 4"
STEP_SHORTCUTS: dict[StepUnit, str] = {
    StepUnit.BIT: "Ctrl+F11",
    StepUnit.TOKEN: "F11",
    StepUnit.COMMAND: "F10",
    StepUnit.TRANSFER: "Shift+F11",
}
# Speed choices: None = free run, else simulated seconds per wall second.
SPEEDS: tuple[tuple[str, float | None], ...] = (
    ("as fast as possible", None), ("real time", 1.0), ("1/10 real time", 0.1),
    ("1/100 real time", 0.01), ("1/1000 real time", 0.001),
)


@dataclass(frozen=True)
class _ActionSpec:
    name: str
    text: str
    shortcut: str
    tip: str


_ACTIONS = (
    _ActionSpec("run", "Run", "F5", "run the workload until it ends or hits a breakpoint"),
    _ActionSpec("pause", "Pause", "F6", "pause at the next bus operation"),
    _ActionSpec("stop", "Stop", "Shift+F5", "cancel the workload (the card stays usable)"),
    *(_ActionSpec(f"step_{unit.value}", f"Step {unit.value}", STEP_SHORTCUTS[unit],
                  f"advance exactly one {unit.value}") for unit in StepUnit),
)


class SimulationControls:
    """The actions and the toolbar widgets, bound to ``session``."""

    def __init__(self, session: Session, parent: QWidget,
                 error: Callable[[str], None]) -> None:
        self.session = session
        self._error = error
        self.actions: dict[str, QAction] = {}
        for spec in _ACTIONS:
            action = QAction(spec.text, parent)
            action.setShortcut(QKeySequence(spec.shortcut))
            action.setToolTip(f"{spec.text} ({spec.shortcut}): {spec.tip}")
            self.actions[spec.name] = action
        self.actions["run"].triggered.connect(self.run)
        self.actions["pause"].triggered.connect(session.pause)
        self.actions["stop"].triggered.connect(session.stop)
        for unit in StepUnit:
            self.actions[f"step_{unit.value}"].triggered.connect(
                lambda _checked=False, unit=unit: self.step(unit))
        self.workload = QtWidgets.QLineEdit(DEFAULT_WORKLOAD, parent)
        self.workload.setToolTip("init | read LBA COUNT | write LBA COUNT [pattern=0xNN|random|"
                                 "counter] | erase LBA COUNT | wait MS  (';' between)")
        self.workload.setMinimumWidth(260)
        self.workload.returnPressed.connect(self.run)
        self.speed = QtWidgets.QComboBox(parent)
        for text, value in SPEEDS:
            self.speed.addItem(text, value)
        self.speed.setToolTip("how fast simulated time runs while running")
        self.speed.currentIndexChanged.connect(self._speed_changed)
        self._step_task: asyncio.Task[object] | None = None
        session.sigState.connect(self._state_changed)
        self._state_changed(session.state)

    def toolbar(self, parent: QWidget) -> QtWidgets.QToolBar:
        bar = QtWidgets.QToolBar("Simulation", parent)
        bar.setObjectName("SimulationToolbar")
        bar.addWidget(QtWidgets.QLabel(" Workload: "))
        bar.addWidget(self.workload)
        bar.addAction(self.actions["run"])
        bar.addAction(self.actions["pause"])
        bar.addAction(self.actions["stop"])
        bar.addSeparator()
        for unit in StepUnit:
            bar.addAction(self.actions[f"step_{unit.value}"])
        bar.addSeparator()
        bar.addWidget(self.speed)
        return bar

    def fill_menu(self, menu: QtWidgets.QMenu) -> None:
        for name in ("run", "pause", "stop"):
            menu.addAction(self.actions[name])
        menu.addSeparator()
        for unit in StepUnit:
            menu.addAction(self.actions[f"step_{unit.value}"])

    def _checked_workload(self) -> str | None:
        text = self.workload.text().strip()
        try:
            parse_workload(text)
        except WorkloadError as error:
            self._error(str(error))
            return None
        return text

    def run(self) -> None:
        if self.session.busy:
            self.session.run(speed=self.speed.currentData())
            return
        workload = self._checked_workload()
        if workload is not None:
            self.session.start(workload)
            self._speed_changed()

    def step(self, unit: StepUnit) -> asyncio.Task[object] | None:
        if self._step_task is not None and not self._step_task.done():
            return None  # one step at a time
        workload = None if self.session.busy else self._checked_workload()
        if not self.session.busy and workload is None:
            return None
        self._step_task = asyncio.ensure_future(self.session.step(unit, workload))
        return self._step_task

    def _speed_changed(self, *_: object) -> None:
        if self.session.busy and self.session.state == SessionState.RUNNING:
            self.session.run(speed=self.speed.currentData())

    def _state_changed(self, state: str) -> None:
        busy = state != SessionState.IDLE
        self.actions["pause"].setEnabled(state == SessionState.RUNNING)
        self.actions["stop"].setEnabled(busy)
        self.workload.setEnabled(not busy)
