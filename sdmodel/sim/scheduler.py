"""How far the model may run: free run, real time x k, pause, step, breakpoints.

The host driver, controller and card are coroutines on one asyncio loop; the bus awaits
``Scheduler.gate(op)`` before every operation (a command with its response, a read
block, a written block with its CRC status, a busy wait). Paused, the model parks at
that gate; a step lets it run until the step's condition holds at a later gate.

What the user sees is bounded by the *horizon*: while running it follows the newest
token; paused, it stops at the end of the last revealed unit. One bus operation yields
a command and its response at once (the card answers when the command's end bit
arrives), so stepping by token or bit reveals tokens the model already computed before
letting it run again. Stepping units (design.md "Stepping"):

- ``bit``: the horizon moves by one clock period;
- ``token``: to the end of the next bus token;
- ``command``: to the end of the next command's exchange (response, data, busy), i.e.
  until the driver is about to send the command after it;
- ``transfer``: until the driver request in progress (or the next one) has completed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum

from sdmodel.clock import SimClock
from sdmodel.events import EmitterGroup
from sdmodel.sim.breakpoints import AddressContext, Breakpoint
from sdmodel.tokens import PS_PER_S, CommandToken, FindingToken, Line, Token
from sdmodel.trace import Trace

__all__ = ["StepUnit", "RunMode", "Scheduler", "YIELD_EVERY_S"]

YIELD_EVERY_S = 0.005  # free run gives the event loop a turn at least this often
_REALTIME_SLICE_S = 0.05  # longest single sleep while throttling to real time
_BUS_LINES = (Line.CMD, Line.DAT, Line.SPI)


class StepUnit(StrEnum):
    BIT = "bit"
    TOKEN = "token"
    COMMAND = "command"
    TRANSFER = "transfer"


class RunMode(StrEnum):
    FREE = "free"  # as fast as possible, yielding to the event loop every few ms
    REALTIME = "realtime"  # simulated time follows wall time x speed
    PAUSED = "paused"


def _is_bus_token(item: Token) -> bool:
    return item.line in _BUS_LINES and not isinstance(item, FindingToken)


class Scheduler:
    """The gate between the model and the user's run/pause/step/breakpoint controls.

    Events: ``mode(RunMode)``, ``parked(op)`` (the model waits at a gate, or ``"end"``
    once the workload finished), ``breakpoint(Breakpoint, Token)``, ``horizon(int)``.
    """

    def __init__(self, clock: SimClock, trace: Trace) -> None:
        self.clock = clock
        self.trace = trace
        self.mode = RunMode.FREE
        self.speed = 1.0  # REALTIME: simulated seconds per wall second
        self.breakpoints: list[Breakpoint] = []
        self.address = AddressContext()
        self.hit: tuple[Breakpoint, Token] | None = None
        self.computed_end = 0  # end of the newest bus token the model produced
        self.commands = 0  # command tokens produced
        self.transfers_done = 0  # driver requests completed (``request_done`` calls)
        self.parked_at: str | None = None
        self.finished = False
        self.events = EmitterGroup("mode", "parked", "breakpoint", "horizon")
        self._horizon = 0
        self._until: Callable[[str], bool] | None = None
        self._resume: asyncio.Future[None] | None = None
        self._parked = asyncio.Event()
        self._reveal_on_park = False
        self._last_yield = time.perf_counter()
        self._anchor = (time.perf_counter(), 0)  # (wall, simulated ps) for REALTIME
        trace.events.appended.connect(self._on_item)

    # --- what the user sees -------------------------------------------------------------

    @property
    def horizon(self) -> int:
        """Simulated time up to which the trace is revealed."""
        return self.computed_end if self.mode is not RunMode.PAUSED else self._horizon

    def _set_horizon(self, ps: int) -> None:
        self._horizon = ps
        self.events.horizon.emit(ps)

    def _on_item(self, item: Token) -> None:
        if _is_bus_token(item):
            self.computed_end = max(self.computed_end, item.end)
        if isinstance(item, CommandToken):
            self.commands += 1
        for bp in self.breakpoints:
            if bp.matches(item, self.address):
                self._break(bp, item)
                break
        if isinstance(item, CommandToken) and not item.app:
            if item.index == 23:
                self.address.pending_count = item.arg & 0xFFFF or None
            elif item.index in (18, 25):
                self.address.pending_count = None

    def _break(self, bp: Breakpoint, item: Token) -> None:
        self.hit = (bp, item)
        was_running = self.mode is not RunMode.PAUSED
        self._set_mode(RunMode.PAUSED)
        self._until = lambda _op: True
        self._reveal_on_park = False
        self._set_horizon(item.end if was_running else max(item.end, self._horizon))
        self.events.breakpoint.emit(bp, item)

    # --- controls -----------------------------------------------------------------------

    def _set_mode(self, mode: RunMode) -> None:
        if mode is RunMode.PAUSED and self.mode is not RunMode.PAUSED:
            self._horizon = self.computed_end
        self.mode = mode
        self._anchor = (time.perf_counter(), self.clock.now)
        self.events.mode.emit(mode)

    def run(self, mode: RunMode = RunMode.FREE, speed: float | None = None) -> None:
        """Let the model run freely (or at ``speed`` x real time) until a breakpoint."""
        if mode is RunMode.PAUSED:
            raise ValueError("run() takes FREE or REALTIME; use pause() to pause")
        if speed is not None:
            if speed <= 0:
                raise ValueError(f"speed must be positive, not {speed}")
            self.speed = speed
        self.hit = None
        self._until = None
        self._set_mode(mode)
        self._wake()

    def pause(self) -> None:
        """Stop the model at its next gate (the horizon stays at what was produced)."""
        if self.mode is not RunMode.PAUSED:
            self._set_mode(RunMode.PAUSED)
            self._until = lambda _op: True
            self._reveal_on_park = True

    async def step(self, unit: StepUnit) -> int:
        """Advance by one ``unit``; returns the new horizon. Pauses first if running."""
        self.pause()
        self.hit = None
        start = self._horizon
        if unit is StepUnit.BIT:
            target = start + self._period_at(start)
            await self._advance(lambda _op: self.computed_end >= target)
            self._set_horizon(min(target, max(self.computed_end, start)))
        elif unit is StepUnit.TOKEN:
            await self._advance(lambda _op: self._next_token_end(start) is not None)
            self._set_horizon(self._next_token_end(start) or start)
        elif unit is StepUnit.COMMAND:
            if not (self.parked_at == "command" and self.computed_end > start):
                first = self.commands
                await self._advance(lambda op: op == "command" and self.commands > first)
            self._set_horizon(max(self.computed_end, start))
        else:
            done = self.transfers_done
            await self._advance(lambda _op: self.transfers_done > done)
            self._set_horizon(max(self.computed_end, start))
        if self.hit is not None:  # a breakpoint inside the step stops it there
            self._set_horizon(max(self.hit[1].end, start))
        return self._horizon

    def _period_at(self, ps: int) -> int:
        for item in reversed(self.trace.window(max(0, ps - 1), ps + 1)):
            if _is_bus_token(item) and item.period:
                return item.period
        return self.clock.period

    def _next_token_end(self, after: int) -> int | None:
        if self.computed_end <= after:
            return None
        for item in self.trace.window(after, self.computed_end + 1):
            if _is_bus_token(item) and item.end > after:
                return item.end
        return None

    async def _advance(self, until: Callable[[str], bool]) -> None:
        """Let the model run until ``until(op)`` holds at a gate (or the workload ends)."""
        if self.finished or until(self.parked_at or ""):
            return
        self._until = until
        self._parked.clear()
        self._wake()
        await self._parked.wait()

    async def wait_parked(self) -> None:
        """Until the model waits at a gate (or the workload has ended)."""
        while self.parked_at is None:
            self._parked.clear()
            await self._parked.wait()

    def _wake(self) -> None:
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def request_done(self) -> None:
        """The driver completed a request (the ``transfer`` step unit)."""
        self.transfers_done += 1

    def finish(self) -> None:
        """The workload ended: steps return at once from now on."""
        self.finished = True
        self.parked_at = "end"
        self._parked.set()
        self.events.parked.emit("end")

    def restart(self) -> None:
        """A new workload starts on the same model."""
        self.finished = False
        self.parked_at = None

    # --- the gate the bus awaits -----------------------------------------------------------

    async def gate(self, op: str) -> None:
        while True:
            if self.mode is RunMode.FREE:
                await self._yield_now_and_then()
                return
            if self.mode is RunMode.REALTIME:
                await self._follow_wall_time()
                if self.mode is RunMode.REALTIME:
                    return
                continue
            until = self._until
            if until is not None and not until(op):
                return
            await self._park(op)  # resumed by run() or a step: decide again

    async def _park(self, op: str) -> None:
        self.parked_at = op
        if self._reveal_on_park:  # a pause from running shows all that was produced
            self._reveal_on_park = False
            self._set_horizon(max(self._horizon, self.computed_end))
        # Several coroutines can park at once (the driver's command and the controller's
        # data path): they all wait for the same resume, or one would never wake.
        if self._resume is None or self._resume.done():
            self._resume = asyncio.get_running_loop().create_future()
        resume = self._resume
        self._parked.set()
        self.events.parked.emit(op)
        try:
            await resume
        finally:
            if self._resume is resume:
                self._resume = None
            self.parked_at = None

    async def _yield_now_and_then(self) -> None:
        now = time.perf_counter()
        if now - self._last_yield >= YIELD_EVERY_S:
            self._last_yield = now
            await asyncio.sleep(0)

    async def _follow_wall_time(self) -> None:
        wall0, sim0 = self._anchor
        while self.mode is RunMode.REALTIME:
            due = wall0 + (self.clock.now - sim0) / PS_PER_S / self.speed
            ahead = due - time.perf_counter()
            if ahead <= 0:
                await self._yield_now_and_then()
                return
            await asyncio.sleep(min(ahead, _REALTIME_SLICE_S))
