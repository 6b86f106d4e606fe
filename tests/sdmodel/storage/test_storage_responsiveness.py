"""The event loop never stalls on slow or hung storage; legacy mode shows the freeze.

design.md: "nothing in the event-loop thread touches the file"; measured with the loop
heartbeat (a task sleeping 5 ms whose late wake-ups are the loop's stalls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from sdmodel.heartbeat import LoopHeartbeat
from sdmodel.storage import Storage, StorageError, StorageErrorKind

BLOCK = 512
# A loop stalled by storage would show one storage latency (up to 500 ms here, or the
# 1 s hang); scheduling noise on a loaded 2-core machine stays far below this line.
MAX_GAP_MS = 100.0


async def mixed_io(storage: Storage, jobs: int) -> list[bytes | None]:
    """Concurrent reads and writes on different blocks."""
    calls = [storage.write(lba, bytes([lba]) * BLOCK) if lba % 2 else storage.read(lba)
             for lba in range(jobs)]
    return await asyncio.gather(*calls)


def test_random_latency_never_stalls_the_loop(make_image: Callable[..., Path],
                                              open_storage: Callable[..., Storage]) -> None:
    storage = open_storage(make_image())
    storage.faults.latency = (0.0, 0.5)
    storage.faults.reseed(1)

    async def scenario() -> float:
        async with LoopHeartbeat() as heartbeat:
            results = await mixed_io(storage, 6)
        assert results[0::2] == [bytes([lba]) * BLOCK for lba in range(0, 6, 2)]
        return heartbeat.max_gap_ms

    assert asyncio.run(scenario()) < MAX_GAP_MS


def test_hung_storage_never_stalls_the_loop(make_image: Callable[..., Path],
                                            open_storage: Callable[..., Storage]) -> None:
    path = make_image()
    storage = open_storage(path)
    storage.faults.hang()

    async def scenario() -> float:
        async with LoopHeartbeat() as heartbeat:
            asyncio.get_running_loop().call_later(1.0, storage.faults.release)
            work = asyncio.gather(mixed_io(storage, 6), storage.flush())
            await asyncio.sleep(0.5)
            assert not work.done()
            assert storage.pending == 7
            await work
        return heartbeat.max_gap_ms

    assert asyncio.run(scenario()) < MAX_GAP_MS
    assert path.read_bytes()[5 * BLOCK:6 * BLOCK] == bytes([5]) * BLOCK


def test_legacy_mode_freezes_the_loop_for_the_latency(make_image: Callable[..., Path],
                                                      open_storage: Callable[..., Storage]
                                                      ) -> None:
    storage = open_storage(make_image(), legacy_sync=True)
    storage.faults.latency = 0.3

    async def scenario() -> float:
        async with LoopHeartbeat() as heartbeat:
            await asyncio.sleep(0.02)
            assert await storage.read(3) == bytes([3]) * BLOCK
        return heartbeat.max_gap_ms

    assert asyncio.run(scenario()) >= 250.0


def test_legacy_mode_reports_faults_like_async_mode(make_image: Callable[..., Path],
                                                    open_storage: Callable[..., Storage]) -> None:
    storage = open_storage(make_image(), legacy_sync=True)
    storage.faults.eio(2, 2)
    with pytest.raises(StorageError) as failed:
        asyncio.run(storage.read(2))
    assert failed.value.kind is StorageErrorKind.EIO
