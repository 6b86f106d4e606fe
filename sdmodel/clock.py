"""Simulated time (design.md "Time and events").

Time is an integer count of picoseconds since power-on. The bus clock changes
(400 kHz identification, 25/50 MHz later), so the clock keeps the period in force.
While the card waits for storage, simulated time advances with wall time times a
user time scale, so slow storage appears as a long N_AC or busy and can trip the
controller's data timeout (reference Part C).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SimClock", "WaitResult", "PS_PER_S"]

PS_PER_S = 1_000_000_000_000
T = TypeVar("T")


@dataclass
class WaitResult(Generic[T]):
    done: bool  # False: the simulated deadline passed first (the awaitable goes on)
    value: T | None = None
    waited_ps: int = 0


class SimClock:
    """The simulated clock shared by host, controller and card.

    ``free_wall_s``: storage that answers within this wall time counts as instant, so
    traces of fast storage are deterministic (the card's nominal timing applies).
    """

    def __init__(
        self, hz: float = 400_000.0, *, time_scale: float = 1.0, free_wall_s: float = 0.002
    ) -> None:
        self.now = 0
        self.time_scale = time_scale
        self.free_wall_s = free_wall_s
        self.period = 0
        self.hz = 0.0
        self.set_frequency(hz)

    def set_frequency(self, hz: float) -> None:
        if hz <= 0:
            raise ValueError(f"clock frequency must be positive, not {hz}")
        self.hz = float(hz)
        self.period = max(1, round(PS_PER_S / hz))

    def advance_clocks(self, n: int) -> int:
        self.now += max(0, n) * self.period
        return self.now

    def advance_ps(self, ps: int) -> int:
        self.now += max(0, int(ps))
        return self.now

    def clocks_between(self, start: int, end: int) -> int:
        return max(0, end - start) // self.period

    async def wait(
        self, awaitable: Awaitable[T], *, deadline: int | None = None, quantum_s: float = 0.001,
        finished_at: Callable[[], float] | None = None,
    ) -> WaitResult[T]:
        """Await ``awaitable`` while simulated time follows wall time x ``time_scale``.

        Returns ``done=False`` when simulated time reaches ``deadline`` first; the
        awaitable is left running (a card keeps programming after a host gave up).
        Simulated time is rounded up to whole clock periods. A future that is already
        done costs no time and no turn of the event loop. ``finished_at`` (a
        ``perf_counter`` time, e.g. ``Storage.last_done_at``) says when the work behind
        the awaitable really ended: the loop noticing later (busy with a GUI frame) adds
        no simulated time.
        """
        if isinstance(awaitable, asyncio.Future) and awaitable.done():
            return WaitResult(True, awaitable.result(), 0)
        task = asyncio.ensure_future(awaitable)
        start_ps = self.now
        wall0 = time.perf_counter()
        while True:
            if deadline is not None:
                remaining_wall = (deadline - self.now) / PS_PER_S / max(self.time_scale, 1e-12)
                timeout = max(0.0, min(quantum_s * 50, remaining_wall))
            else:
                timeout = None
            done, _ = await asyncio.wait({task}, timeout=timeout)
            wall = time.perf_counter() - wall0
            if done and finished_at is not None:
                wall = min(wall, max(0.0, finished_at() - wall0))
            sim_ps = 0 if (done and wall <= self.free_wall_s) else int(
                wall * self.time_scale * PS_PER_S
            )
            target = start_ps + -(-sim_ps // self.period) * self.period
            if deadline is not None and target >= deadline:
                self.now = max(self.now, deadline)
                return WaitResult(False, None, self.now - start_ps)
            self.now = max(self.now, target)
            if done:
                return WaitResult(True, task.result(), self.now - start_ps)
