"""The simulation behind the window: one Simulator on the qasync loop, driven by the
toolbar (run, pause, step, stop) and told to the panels through Qt signals.

A workload runs as one asyncio task; the scheduler decides how far it gets (free run,
pause, steps, breakpoints), so every control returns at once and the window never waits
on the model or on storage. Switching the storage mode (async / legacy synchronous)
reopens the image: the card is power-cycled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

from sdmodel.driver import Request
from sdmodel.errors import SdscopeError
from sdmodel.sim.breakpoints import Breakpoint
from sdmodel.sim.scheduler import RunMode, StepUnit
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import Token
from widgets.qt import QObject, Signal

__all__ = ["Session", "SessionState"]

log = logging.getLogger("sdscope.session")


class SessionState:
    IDLE = "idle"  # no workload running
    RUNNING = "running"
    PAUSED = "paused"


class Session(QObject):
    sigSimulator = Signal(object)  # a new Simulator (new image, or storage mode switched)
    sigState = Signal(str)  # SessionState
    sigHorizon = Signal(object)  # ps the views may show (None: everything, following)
    sigLog = Signal(str, str)  # message, level ("info", "warning", "error")
    sigBreakpoint = Signal(object, object)  # Breakpoint, Token
    sigRequest = Signal(object)  # driver Request (start and end)
    sigCardState = Signal(object, object, str)  # old, new CardState, reason
    sigWorkloadDone = Signal(object)  # WorkloadResult, or None when it was stopped

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sim: Simulator | None = None
        self.options = SimOptions()
        self.breakpoints: list[Breakpoint] = []
        self._task: asyncio.Task[object] | None = None
        self._owned = True  # close() closes the simulator's image
        self.state = SessionState.IDLE

    # --- the simulator ------------------------------------------------------------------

    @property
    def image(self) -> Path | None:
        return self.sim.storage.path if self.sim is not None else None

    def open(self, image: str | Path, options: SimOptions | None = None) -> Simulator:
        """A new simulator on ``image`` (the previous one is closed without waiting)."""
        options = options or self.options
        previous = self.sim if self._owned else None
        same = previous is not None and Path(image).resolve() == previous.storage.path.resolve()
        if same:  # the image's write lock must be free for the new simulator
            self.close()
        try:
            sim = Simulator(image, replace(options, breakpoints=()))
        except SdscopeError:
            if same:  # put the previous card back
                self._show(Simulator(image, replace(self.options, breakpoints=())), owned=True)
            raise
        self.close()
        self.options = options
        self._show(sim, owned=True)
        return sim

    def adopt(self, sim: Simulator) -> None:
        """Show a simulator someone else runs and closes (a lesson's): the controls stay
        idle, the panels follow it."""
        self.close()
        self._show(sim, owned=False)

    def _show(self, sim: Simulator, *, owned: bool) -> None:
        self._owned = owned
        self.sim = sim
        sim.scheduler.breakpoints[:] = self.breakpoints
        sim.events.log.connect(lambda message: self.sigLog.emit(message, "info"))
        sim.host.events.request.connect(self.sigRequest.emit)
        sim.card.events.state.connect(self.sigCardState.emit)
        sim.card.events.storage_error.connect(
            lambda error: self.sigLog.emit(f"storage: {error}", "error"))
        sim.scheduler.events.horizon.connect(self._horizon_changed)
        sim.scheduler.events.mode.connect(self._mode_changed)
        sim.scheduler.events.breakpoint.connect(self._breakpoint_hit)
        self.sigSimulator.emit(sim)
        self._set_state(SessionState.IDLE)

    def reopen(self, **changes: object) -> Simulator | None:
        """The same image with changed options (storage mode, bus width...)."""
        image = self.image
        if image is None:
            self.options = replace(self.options, **changes)  # type: ignore[arg-type]
            return None
        return self.open(image, replace(self.options, **changes))  # type: ignore[arg-type]

    def set_breakpoints(self, breakpoints: list[Breakpoint]) -> None:
        self.breakpoints = list(breakpoints)
        if self.sim is not None:
            self.sim.scheduler.breakpoints[:] = self.breakpoints

    # --- controls -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, workload: str, *, paused: bool = False) -> asyncio.Task[object] | None:
        """Run ``workload`` (free run, or parked before its first bus operation)."""
        sim = self._require()
        if sim is None:
            return None
        if self.busy:
            self.sigLog.emit("a workload is already running: stop it first", "warning")
            return None
        if paused:
            sim.scheduler.pause()
        else:
            sim.scheduler.run()
        self._task = asyncio.ensure_future(self._run(sim, workload))
        self._set_state(SessionState.PAUSED if paused else SessionState.RUNNING)
        return self._task

    async def _run(self, sim: Simulator, workload: str) -> object:
        try:
            result = await sim.run(workload)
        except asyncio.CancelledError:
            self.sigLog.emit("workload stopped", "warning")
            self.sigWorkloadDone.emit(None)
            raise
        except SdscopeError as error:
            self.sigLog.emit(str(error), "error")
            self.sigWorkloadDone.emit(None)
            return None
        finally:
            if self.sim is sim:
                self._set_state(SessionState.IDLE)
        for line in result.errors:
            self.sigLog.emit(line, "error")
        self.sigLog.emit("workload finished" + ("" if result.ok else " with errors"),
                         "info" if result.ok else "error")
        self.sigWorkloadDone.emit(result)
        return result

    def run(self, workload: str | None = None, speed: float | None = None) -> None:
        """Continue (or start ``workload``) in free run, or at ``speed`` x real time."""
        sim = self._require()
        if sim is None:
            return
        if not self.busy:
            if workload:
                self.start(workload)
            return
        sim.scheduler.run(RunMode.FREE if speed is None else RunMode.REALTIME, speed)
        self._set_state(SessionState.RUNNING)

    def pause(self) -> None:
        if self.sim is not None and self.busy:
            self.sim.scheduler.pause()
            self._set_state(SessionState.PAUSED)

    async def step(self, unit: StepUnit, workload: str | None = None) -> int | None:
        """One step; starts ``workload`` parked first when nothing runs."""
        sim = self._require()
        if sim is None:
            return None
        if not self.busy:
            if not workload:
                return None
            self.start(workload, paused=True)
        self._set_state(SessionState.PAUSED)
        return await sim.scheduler.step(unit)

    def stop(self) -> None:
        """Cancel the running workload (the driver leaves the card usable)."""
        if self.sim is not None:
            self.sim.storage.faults.release()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def close(self) -> None:
        """Stop and close the image at once: never waits for hung storage (the worker is a
        daemon thread; ``Storage.close`` waits at most 1 s for a stuck system call)."""
        self.stop()
        sim, self.sim = self.sim, None
        if sim is not None and self._owned:
            with contextlib.suppress(Exception):
                sim.storage.close()
        self._task = None

    # --- scheduler -> views --------------------------------------------------------------

    def _require(self) -> Simulator | None:
        if self.sim is None:
            self.sigLog.emit("open a disk image first", "warning")
        return self.sim

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.sigState.emit(state)

    def _horizon_changed(self, ps: int) -> None:
        if self.sim is not None and self.sim.scheduler.mode is RunMode.PAUSED:
            self.sigHorizon.emit(ps)

    def _mode_changed(self, mode: RunMode) -> None:
        if mode is RunMode.PAUSED:
            self.sigHorizon.emit(self.sim.scheduler.horizon if self.sim else None)
            if self.busy:
                self._set_state(SessionState.PAUSED)
        else:
            self.sigHorizon.emit(None)

    def _breakpoint_hit(self, breakpoint_: Breakpoint, item: Token) -> None:
        self.sigLog.emit(f"breakpoint {breakpoint_}: {item.kind} {item.label()}", "warning")
        self.sigBreakpoint.emit(breakpoint_, item)

    @staticmethod
    def describe_request(request: Request) -> str:
        span = f" {request.lba}+{request.count}" if request.count else ""
        status = "" if not request.done else (" ok" if request.ok else f" failed: {request.error}")
        return f"{request.op}{span}{status}"
