"""Closing never waits for a hung job: queued and hung jobs are cancelled, the lock is
released, and a process with a hung job still exits at once (daemon worker)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sdmodel.storage import Storage, StorageError, StorageErrorKind

BLOCK = 512


def test_close_with_a_hung_job_cancels_everything_and_frees_the_image(
    make_image: Callable[..., Path]
) -> None:
    path = make_image()
    before = path.read_bytes()
    storage = Storage.open(path)
    storage.faults.hang()

    async def scenario() -> tuple[float, list[object]]:
        jobs = [asyncio.create_task(storage.read(0)),
                asyncio.create_task(storage.write(1, b"\xff" * BLOCK)),
                asyncio.create_task(storage.flush())]
        await asyncio.sleep(0.05)  # read hung in the worker, write and flush queued
        assert storage.pending == 3
        start = time.perf_counter()
        storage.close()
        elapsed = time.perf_counter() - start
        return elapsed, await asyncio.gather(*jobs, return_exceptions=True)

    elapsed, outcomes = asyncio.run(scenario())
    assert elapsed < 1.0
    assert [getattr(o, "kind", o) for o in outcomes] == [StorageErrorKind.CANCELLED] * 3
    assert storage.pending == 0
    assert path.read_bytes() == before
    Storage.open(path).close()  # lock released


def test_aclose_gives_up_on_a_hung_job_after_a_second(make_image: Callable[..., Path]) -> None:
    storage = Storage.open(make_image())
    storage.faults.hang()

    async def scenario() -> tuple[float, object]:
        read = asyncio.create_task(storage.read(0))
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        await storage.aclose()
        elapsed = time.perf_counter() - start
        return elapsed, (await asyncio.gather(read, return_exceptions=True))[0]

    elapsed, outcome = asyncio.run(scenario())
    assert 0.9 < elapsed < 1.5
    assert isinstance(outcome, StorageError)
    assert outcome.kind is StorageErrorKind.CANCELLED


HUNG_AT_EXIT = """
import asyncio, sys
from sdmodel.storage import Storage

async def main():
    storage = Storage.open(sys.argv[1])
    storage.faults.hang()
    read = asyncio.create_task(storage.read(0))
    await asyncio.sleep(0.05)
    assert storage.pending == 1
    print("hung", flush=True)

asyncio.run(main())
"""


def test_process_with_a_hung_job_exits_within_a_second(make_image: Callable[..., Path]) -> None:
    child = subprocess.Popen([sys.executable, "-c", HUNG_AT_EXIT, str(make_image())],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "hung\n"
        start = time.perf_counter()
        assert child.wait(timeout=5) == 0
        assert time.perf_counter() - start < 1.0
    finally:
        if child.poll() is None:
            child.kill()
            pytest.fail("process with a hung storage job did not exit")


def test_forgotten_storage_releases_its_image_when_collected(
    make_image: Callable[..., Path]
) -> None:
    path = make_image()
    storage = Storage.open(path)
    storage.faults.hang()
    del storage  # no close(): the finalizer closes without waiting
    gc.collect()
    Storage.open(path).close()
