"""A one-thread FIFO executor whose worker is a daemon thread.

``concurrent.futures.ThreadPoolExecutor`` joins its (non-daemon) workers at interpreter
exit, so one hung ``pread`` on a dead network share would keep sdscope from exiting. This
worker is a daemon: exit never waits for it, and ``shutdown()`` waits at most its timeout.
Jobs run strictly in submission order, so a read submitted after a write sees its data.
Results reach the submitting event loop through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

__all__ = ["SerialExecutor"]


def _settle(
    future: asyncio.Future[Any],
    result: object,
    error: BaseException | None,
    orphan: Callable[[BaseException], None] | None,
) -> None:
    """Runs in the loop thread: hand the outcome to the awaiter, if it still waits."""
    if future.done():  # the awaiting task was cancelled
        if error is not None and orphan is not None:
            orphan(error)
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


@dataclass(eq=False)
class _Job:
    fn: Callable[[], object]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    skip_if_cancelled: bool
    orphan: Callable[[BaseException], None] | None

    def settle(self, result: object = None, error: BaseException | None = None) -> None:
        with suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(_settle, self.future, result, error, self.orphan)

    def run(self) -> tuple[object, BaseException | None] | None:
        """The outcome (result, error) to settle; None for a job skipped as cancelled."""
        if self.skip_if_cancelled and self.future.cancelled():
            return None
        try:
            return self.fn(), None
        except BaseException as exc:  # delivered to the awaiter, never lost in the thread
            return None, exc


class SerialExecutor:
    """Runs blocking callables one at a time, in order, on a daemon thread."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._closed = False
        # perf_counter() when the worker last finished a job: how long storage really took,
        # without the time the loop needed to notice (a busy GUI frame is not an access time)
        self.last_done_at = 0.0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return len(self._queue) + (self._running is not None)

    def submit(
        self,
        fn: Callable[[], object],
        *,
        skip_if_cancelled: bool,
        orphan: Callable[[BaseException], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue ``fn``; the returned future (of the running loop) gets its outcome.

        ``skip_if_cancelled``: drop the job if its awaiter is cancelled before it starts
        (reads). Otherwise the job runs anyway and an error nobody awaits goes to
        ``orphan`` (writes: a submitted write is performed even if its awaiter gives up).
        """
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop, loop.create_future(), skip_if_cancelled, orphan)
        with self._cond:
            if self._closed:
                raise RuntimeError("executor is shut down")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def shutdown(self, cancelled: Callable[[], BaseException], timeout: float) -> bool:
        """Stop accepting jobs, fail queued ones with ``cancelled()``, wait up to ``timeout``
        seconds for the running one. Returns True if the worker has finished."""
        with self._cond:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in dropped:
            job.settle(error=cancelled())
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._running = self._queue.popleft()
            try:
                outcome = job.run()
                self.last_done_at = time.perf_counter()  # before the loop can see the outcome
                if outcome is not None:
                    job.settle(*outcome)
            finally:
                with self._cond:
                    self._running = None
