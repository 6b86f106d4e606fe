"""Reads and writes: byte-exact round trips, FIFO order, range checks, durability,
cancellation, and detection of an image file changed behind our back."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from sdmodel.storage import FaultHit, FaultKind, Storage, StorageError, StorageErrorKind

BLOCK = 512
MODES = pytest.mark.parametrize("legacy_sync", [False, True], ids=["async", "legacy"])


def file_block(path: Path, lba: int, count: int = 1) -> bytes:
    """What a separate, plain open() of the image sees."""
    with open(path, "rb") as image:
        image.seek(lba * BLOCK)
        return image.read(count * BLOCK)


@MODES
@pytest.mark.parametrize(("lba", "count"), [(0, 1), (5, 3), (10, 16), (63, 1)])
def test_acknowledged_write_reads_back_byte_exact_and_is_on_disk(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage],
    legacy_sync: bool, lba: int, count: int,
) -> None:
    path = make_image(64)
    expected = bytearray(path.read_bytes())
    data = random.Random(lba).randbytes(count * BLOCK)
    storage = open_storage(path, legacy_sync=legacy_sync)

    async def scenario() -> bytes:
        await storage.write(lba, data)
        assert file_block(path, lba, count) == data  # acknowledged => visible to others
        return await storage.read(lba, count)

    assert asyncio.run(scenario()) == data
    expected[lba * BLOCK:(lba + count) * BLOCK] = data
    assert path.read_bytes() == expected  # neighbours untouched


def test_fresh_sparse_image_reads_as_zeros(tmp_path: Path,
                                           open_storage: Callable[..., Storage]) -> None:
    path = tmp_path / "sparse.img"
    path.touch()
    os.truncate(path, 1024 * 1024)
    storage = open_storage(path)
    assert asyncio.run(storage.read(100, 4)) == bytes(4 * BLOCK)


def test_jobs_run_in_submission_order_whatever_their_latency(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage]
) -> None:
    path = make_image(8)
    storage = open_storage(path)
    storage.faults.latency = (0.0, 0.01)  # random per job: reordering would show

    async def scenario() -> list[bytes | None]:
        jobs = []
        for i in range(24):
            jobs.append(storage.write(i % 3, bytes([i]) * BLOCK))
            jobs.append(storage.read(i % 3))
        return await asyncio.gather(*jobs)

    results = asyncio.run(scenario())
    assert results[1::2] == [bytes([i]) * BLOCK for i in range(24)]
    assert [file_block(path, lba)[0] for lba in range(3)] == [21, 22, 23]


@pytest.mark.parametrize(("lba", "count"), [(-1, 1), (64, 1), (63, 2), (1000, 1)])
@pytest.mark.parametrize("op", ["read", "write"])
def test_blocks_outside_the_image_are_refused_before_any_io(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage],
    op: str, lba: int, count: int,
) -> None:
    path = make_image(64)
    before = path.read_bytes()
    storage = open_storage(path)
    call = (storage.read(lba, count) if op == "read"
            else storage.write(lba, b"\xee" * count * BLOCK))
    with pytest.raises(StorageError) as refused:
        asyncio.run(call)
    assert refused.value.kind is StorageErrorKind.OUT_OF_RANGE
    assert refused.value.lba == lba
    assert path.read_bytes() == before


@pytest.mark.parametrize("call", [
    lambda s: s.read(0, 0),
    lambda s: s.write(0, b""),
    lambda s: s.write(0, bytes(100)),
], ids=["read 0 blocks", "write nothing", "write partial block"])
def test_malformed_requests_raise_value_error(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage],
    call: Callable[[Storage], object],
) -> None:
    storage = open_storage(make_image())
    with pytest.raises(ValueError, match="must be"):
        asyncio.run(call(storage))  # type: ignore[arg-type]


@pytest.mark.parametrize(("durable", "syncs_after_writes"), [(True, 3), (False, 0)])
def test_durable_writes_are_synced_before_they_complete(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage],
    durable: bool, syncs_after_writes: int,
) -> None:
    storage = open_storage(make_image(), durable=durable)

    async def scenario() -> list[int]:
        seen = []
        for lba in range(3):
            await storage.write(lba, bytes(BLOCK))
            seen.append(storage.syncs)
        await storage.flush()
        seen.append(storage.syncs)
        return seen

    expected = [1, 2, 3] if durable else [0, 0, 0]
    assert asyncio.run(scenario()) == [*expected, syncs_after_writes + 1]


def test_submitted_write_completes_even_if_its_awaiter_is_cancelled(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage]
) -> None:
    path = make_image()
    storage = open_storage(path)
    storage.faults.latency = 0.05

    async def scenario() -> None:
        running = asyncio.create_task(storage.write(3, b"\x33" * BLOCK))
        queued = asyncio.create_task(storage.write(4, b"\x44" * BLOCK))
        await asyncio.sleep(0.02)  # the first is in the worker, the second still queued
        assert storage.pending == 2
        running.cancel()
        queued.cancel()
        await storage.flush()

    asyncio.run(scenario())
    assert file_block(path, 3, 2) == b"\x33" * BLOCK + b"\x44" * BLOCK


def test_read_cancelled_before_it_starts_is_dropped(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage]
) -> None:
    storage = open_storage(make_image())
    storage.faults.latency = 0.05
    hits: list[FaultHit] = []
    storage.on_fault = hits.append

    async def scenario() -> bytes:
        first = asyncio.create_task(storage.read(1))
        dropped = asyncio.create_task(storage.read(2))
        await asyncio.sleep(0.02)
        dropped.cancel()
        data = await first
        await storage.flush()
        return data

    assert asyncio.run(scenario()) == bytes([1]) * BLOCK
    assert [(hit.op, hit.lba) for hit in hits] == [("read", 1), ("flush", None)]
    assert {hit.kind for hit in hits} == {FaultKind.LATENCY}


def test_error_of_a_write_nobody_awaits_is_raised_by_the_next_flush(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage]
) -> None:
    storage = open_storage(make_image())
    storage.faults.latency = 0.05
    storage.faults.eio(4, 4, ops={"write"})

    async def scenario() -> None:
        write = asyncio.create_task(storage.write(4, bytes(BLOCK)))
        await asyncio.sleep(0.01)
        write.cancel()
        with pytest.raises(StorageError) as failed:
            await storage.flush()
        assert (failed.value.kind, failed.value.lba) == (StorageErrorKind.EIO, 4)
        await storage.flush()  # reported once

    asyncio.run(scenario())


def _truncate(path: Path) -> None:
    os.truncate(path, 32 * BLOCK)


def _extend(path: Path) -> None:
    os.truncate(path, 128 * BLOCK)


def _replace(path: Path) -> None:
    fresh = path.with_name("fresh.img")
    fresh.write_bytes(bytes(64 * BLOCK))
    os.replace(fresh, path)


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(("change", "words"), [
    (_truncate, "changed size from 32768 to 16384"),
    (_extend, "changed size"),
    (_replace, "replaced"),
    (_remove, "removed"),
])
def test_image_changed_while_in_use_is_detected(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage],
    change: Callable[[Path], None], words: str,
) -> None:
    path = make_image(64)
    storage = open_storage(path)
    storage.check_file()
    change(path)
    with pytest.raises(StorageError, match=words) as detected:
        storage.check_file()
    assert detected.value.kind is StorageErrorKind.CHANGED
    with pytest.raises(StorageError, match=words) as detected:
        asyncio.run(storage.read(0))
    assert detected.value.kind is StorageErrorKind.CHANGED


@pytest.mark.parametrize("call", [
    lambda s: asyncio.run(s.read(0)),
    lambda s: asyncio.run(s.write(0, bytes(BLOCK))),
    lambda s: asyncio.run(s.flush()),
    lambda s: s.check_file(),
], ids=["read", "write", "flush", "check_file"])
def test_closed_storage_refuses_every_operation(
    make_image: Callable[..., Path], call: Callable[[Storage], object]
) -> None:
    with Storage.open(make_image()) as storage:
        pass
    storage.close()  # idempotent
    assert storage.closed
    with pytest.raises(StorageError) as refused:
        call(storage)
    assert refused.value.kind is StorageErrorKind.CLOSED


def test_async_with_lets_submitted_writes_finish_before_closing(
    make_image: Callable[..., Path]
) -> None:
    path = make_image()

    async def scenario() -> None:
        async with Storage.open(path) as storage:
            storage.faults.latency = 0.02
            writes = [asyncio.create_task(storage.write(lba, b"\xaa" * BLOCK))
                      for lba in range(5)]
            await asyncio.sleep(0)  # let the tasks submit their jobs
            assert storage.pending == 5
        assert storage.closed
        assert all(write.done() for write in writes)

    asyncio.run(scenario())
    assert file_block(path, 0, 5) == b"\xaa" * 5 * BLOCK
