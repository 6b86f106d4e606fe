"""The controller's background work (commands, data phases, resets) as asyncio tasks: the
driver's register write returns at once, ``idle()`` waits until the work is done and
re-raises a failure of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]

log = logging.getLogger("sdmodel.sdhci")


class TaskSet:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("controller task failed: %s", error, exc_info=error)
            self._failure = self._failure or error

    async def idle(self) -> None:
        while pending := {t for t in self._tasks if not t.done()}:
            await asyncio.wait(pending)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
