"""``Storage.write_soon``: a write queued without a task, as the card programs a block
(design.md "Asynchronous storage: the contract")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from sdmodel.storage import Storage, StorageError, StorageErrorKind

BLOCK = 512
MODES = pytest.mark.parametrize("legacy_sync", [False, True], ids=["async", "legacy"])


def file_block(path: Path, lba: int) -> bytes:
    with open(path, "rb") as image:
        image.seek(lba * BLOCK)
        return image.read(BLOCK)


@MODES
def test_the_future_completes_once_the_block_is_in_the_file(
        make_image: Callable[..., Path], open_storage: Callable[..., Storage],
        legacy_sync: bool) -> None:
    path = make_image(16)
    storage = open_storage(path, legacy_sync=legacy_sync)
    on_disk_when_done: list[bool] = []

    async def scenario() -> None:
        data = bytearray(b"\x7e" * BLOCK)
        stored = storage.write_soon(9, data)
        data[:] = bytes(BLOCK)  # the caller may reuse its buffer at once
        stored.add_done_callback(lambda _: on_disk_when_done.append(
            file_block(path, 9) == b"\x7e" * BLOCK))
        await stored

    asyncio.run(scenario())
    assert on_disk_when_done == [True]


def test_writes_queued_back_to_back_land_in_order(
        make_image: Callable[..., Path], open_storage: Callable[..., Storage]) -> None:
    path = make_image(16)
    storage = open_storage(path)

    async def scenario() -> None:
        await asyncio.gather(*(storage.write_soon(3, bytes([n]) * BLOCK) for n in range(5)))

    asyncio.run(scenario())
    assert file_block(path, 3) == bytes([4]) * BLOCK


REFUSED: dict[str, tuple[int, bytes, type[Exception], str]] = {
    "partial block": (0, b"\x00" * 100, ValueError, "multiple of 512"),
    "beyond the end": (16, b"\x00" * BLOCK, StorageError, "outside the image"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_request_is_refused_before_anything_is_queued(
        case: str, make_image: Callable[..., Path],
        open_storage: Callable[..., Storage]) -> None:
    lba, data, error, message = REFUSED[case]
    storage = open_storage(make_image(16))

    async def scenario() -> None:
        with pytest.raises(error, match=message):
            storage.write_soon(lba, data)
        assert storage.pending == 0

    asyncio.run(scenario())


def test_a_read_only_image_refuses_at_once(make_image: Callable[..., Path],
                                           open_storage: Callable[..., Storage]) -> None:
    storage = open_storage(make_image(16), read_only=True)

    async def scenario() -> None:
        with pytest.raises(StorageError) as refused:
            storage.write_soon(0, bytes(BLOCK))
        assert refused.value.kind is StorageErrorKind.READ_ONLY

    asyncio.run(scenario())


def test_an_injected_error_fails_the_future(make_image: Callable[..., Path],
                                            open_storage: Callable[..., Storage]) -> None:
    path = make_image(16)
    before = file_block(path, 5)
    storage = open_storage(path)
    storage.faults.eio(5, 5, ops=["write"])

    async def scenario() -> None:
        with pytest.raises(StorageError, match="LBA 5") as failed:
            await storage.write_soon(5, b"\x01" * BLOCK)
        assert failed.value.kind is StorageErrorKind.EIO

    asyncio.run(scenario())
    assert file_block(path, 5) == before
