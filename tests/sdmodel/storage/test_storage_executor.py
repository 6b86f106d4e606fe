"""SerialExecutor and ImageFile: the two pieces that make closing safe with a stuck job."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sdmodel.storage import Storage, StorageErrorKind
from sdmodel.storage.executor import SerialExecutor
from sdmodel.storage.image import ImageFile


def test_shutdown_waits_at_most_its_timeout_for_a_job_stuck_in_a_call() -> None:
    executor = SerialExecutor("test-stuck")

    async def scenario() -> tuple[float, bool, object]:
        stuck = executor.submit(lambda: time.sleep(2.0), skip_if_cancelled=False)
        queued = executor.submit(lambda: "never", skip_if_cancelled=False)
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        finished = executor.shutdown(lambda: RuntimeError("cancelled"), timeout=0.3)
        elapsed = time.perf_counter() - start
        stuck.cancel()
        return elapsed, finished, (await asyncio.gather(queued, return_exceptions=True))[0]

    elapsed, finished, queued = asyncio.run(scenario())
    assert 0.25 < elapsed < 0.6
    assert not finished
    assert isinstance(queued, RuntimeError)


def test_fd_in_use_is_closed_only_when_the_call_returns(
    make_image: Callable[..., Path]
) -> None:
    image = ImageFile.open(make_image(), read_only=False, lock=True)
    with image.use(StorageErrorKind.CANCELLED, "read") as fd:
        image.close()
        assert os.pread(fd, 4, 512) == b"\x01" * 4  # still the image, not a reused fd
        ImageFile.open(image.path, read_only=False, lock=True).close()  # lock already free
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # closed when its last user left


def test_last_done_at_is_when_the_worker_finished_not_when_the_loop_noticed(
        make_image: Callable[..., Path], open_storage: Callable[..., Storage]) -> None:
    storage = open_storage(make_image(16))
    storage.faults.latency = (0.05, 0.05)  # the job itself takes 50 ms

    async def scenario() -> tuple[float, float, float]:
        start = time.perf_counter()
        reading = asyncio.ensure_future(storage.read(3))
        await asyncio.sleep(0)
        time.sleep(0.2)  # the loop is busy (a long frame) while the job finishes
        await reading
        return start, storage.last_done_at, time.perf_counter()

    start, done_at, noticed = asyncio.run(scenario())
    assert start + 0.045 <= done_at <= start + 0.19 < noticed
