"""Event-loop responsiveness probe for plain asyncio (no Qt).

A task sleeps ``interval`` seconds in a loop and records how late each wake-up is. If
something blocks the loop thread (a synchronous file read, a long computation), the next
wake-up arrives late by the length of the block, so ``max_gap_ms`` is the longest stall
seen while the heartbeat ran. The Qt twin is ``widgets.heartbeat.Heartbeat``.

    async with LoopHeartbeat() as hb:
        await storage.read(...)
    assert hb.max_gap_ms < 50
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Self

__all__ = ["LoopHeartbeat", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by the nearest-rank method; 0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class LoopHeartbeat:
    """Measures the largest gap between wake-ups of a task sleeping ``interval`` seconds.

    A gap is the time between two consecutive wake-ups: with an idle loop it is about
    ``interval``; a stall of the loop thread for ``t`` seconds shows up as a gap of about
    ``t``. ``window`` bounds how many recent gaps the percentiles cover.
    """

    def __init__(self, interval: float = 0.005, window: int = 10_000) -> None:
        self.interval = interval
        self._gaps: deque[float] = deque(maxlen=window)
        self._max_gap = 0.0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def max_gap_ms(self) -> float:
        """The longest gap seen since ``start()``, in milliseconds."""
        return self._max_gap * 1000.0

    @property
    def p99_ms(self) -> float:
        """The 99th percentile of recent gaps, in milliseconds."""
        return percentile(self._gaps, 99.0) * 1000.0

    @property
    def samples(self) -> int:
        """How many gaps are in the current window."""
        return len(self._gaps)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start beating on the running loop; resets previous measurements."""
        if self.running:
            return
        self._gaps.clear()
        self._max_gap = 0.0
        self._last = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="heartbeat")

    async def stop(self) -> None:
        """Stop beating; the measurements stay readable."""
        task, self._task = self._task, None
        if task is None:
            return
        # A stall that ended just before stop() has not been seen by a wake-up yet: the
        # time since the last wake-up is a gap too.
        self._record(time.perf_counter())
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    def _record(self, now: float) -> None:
        gap = now - self._last
        self._last = now
        self._gaps.append(gap)
        self._max_gap = max(self._max_gap, gap)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._record(time.perf_counter())

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
