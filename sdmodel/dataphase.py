"""Data phases of the card: what a read delivers and what a write expects.

A read phase fetches its blocks from storage ahead of the bus (read-ahead grows from
one block to a 64 KiB batch), so a slow backing store shows up as a long N_AC before
a block and never as a stall of the event loop. A block the read-ahead already holds is
had without awaiting anything (``next_block_now``): a long read costs one storage job
per batch, not a task and a turn of the event loop per block. Register reads (SCR, SD
Status, CMD6 status...) are phases whose data is ready at once.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.registers import CardStatus
from sdmodel.storage import Storage, StorageError

__all__ = ["ReadResult", "ReadPhase", "WritePhase", "MAX_READ_AHEAD"]

MAX_READ_AHEAD = 128  # blocks per storage job (64 KiB)


@dataclass(frozen=True)
class ReadResult:
    data: bytes | None
    error: str = ""  # "", "storage", "out_of_range", "no_transfer", "stopped"
    detail: StorageError | None = None

    @property
    def ok(self) -> bool:
        return self.data is not None


def _seen(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()


class _Batch:
    """Consecutive 512-byte sectors being fetched by one storage job."""

    def __init__(self, storage: Storage, lba: int, count: int) -> None:
        self.lba = lba
        self.count = count
        self.future: asyncio.Future[bytes] = asyncio.ensure_future(storage.read(lba, count))
        # A read-ahead the host abandoned is never awaited: its error (e.g. the storage
        # closing) is seen here so asyncio does not log it; an awaiter still gets it.
        self.future.add_done_callback(_seen)

    def covers(self, lba: int) -> bool:
        return self.lba <= lba < self.lba + self.count


class ReadPhase(ABC):
    def __init__(self, blocks: int | None, length: int) -> None:
        self.count = blocks  # None: until CMD12 (or the end of the card)
        self.length = length
        self.delivered = 0
        self.cancelled = False
        self.stop_errors = 0  # card-status bits for the CMD12 response (ran past the end)

    @property
    def finished(self) -> bool:
        return self.count is not None and self.delivered >= self.count

    @staticmethod
    def from_bytes(data: bytes) -> ReadPhase:
        return _FixedRead(data)

    @staticmethod
    def from_storage(
        storage: Storage,
        offset: int,
        length: int,
        count: int | None,
        capacity: int,
        on_error: Callable[[StorageError], None],
    ) -> ReadPhase:
        return _StorageRead(storage, offset, length, count, capacity, on_error)

    @abstractmethod
    async def next_block(self) -> ReadResult:
        """The next block, or why there is none."""

    @abstractmethod
    def next_block_now(self) -> ReadResult | None:
        """What ``next_block`` would return when that needs no wait for storage (the
        read-ahead holds the block), else None; it then starts the same fetches."""

    def cancel(self) -> None:
        self.cancelled = True


class _FixedRead(ReadPhase):
    def __init__(self, data: bytes) -> None:
        super().__init__(1, len(data))
        self.data = data

    async def next_block(self) -> ReadResult:
        return self.next_block_now()

    def next_block_now(self) -> ReadResult:
        if self.cancelled or self.finished:
            return ReadResult(None, "stopped")
        self.delivered += 1
        return ReadResult(self.data)


class _StorageRead(ReadPhase):
    def __init__(
        self,
        storage: Storage,
        offset: int,
        length: int,
        count: int | None,
        capacity: int,
        on_error: Callable[[StorageError], None],
    ) -> None:
        super().__init__(count, length)
        self.storage = storage
        self.offset = offset
        self.capacity = capacity
        self.on_error = on_error
        self.ahead = 1
        self.batches: deque[_Batch] = deque()
        self._fetch_from(self.offset // BLOCK_SIZE)

    def _block_offset(self, n: int) -> int:
        return self.offset + n * self.length

    def _fetch_from(self, lba: int) -> None:
        """Start the next storage job: up to ``ahead`` sectors, within the transfer."""
        last_sector = (self.capacity - 1) // BLOCK_SIZE
        if self.count is not None:
            end = self._block_offset(self.count) - 1
            last_sector = min(last_sector, end // BLOCK_SIZE)
        if lba > last_sector:
            return
        n = min(self.ahead, MAX_READ_AHEAD, last_sector - lba + 1)
        self.batches.append(_Batch(self.storage, lba, n))
        self.ahead = min(self.ahead * 2, MAX_READ_AHEAD) if self.count != 1 else 1

    def _batch_for(self, sector: int) -> _Batch:
        """The job fetching ``sector`` (started if need be), with one job ahead of it."""
        while self.batches and not self.batches[0].covers(sector):
            self.batches.popleft()
        if not self.batches:
            self._fetch_from(sector)
        batch = self.batches[0]
        if len(self.batches) == 1 and (self.count is None or not self.finished):
            # keep one job ahead of the bus
            self._fetch_from(batch.lba + batch.count)
        return batch

    def _sectors_now(self, lba: int, count: int) -> bytes | None:
        """The sectors if their jobs have delivered them, else None."""
        parts = []
        for sector in range(lba, lba + count):
            batch = self._batch_for(sector)
            future = batch.future
            if not future.done() or future.cancelled() or future.exception() is not None:
                return None  # the waiting path handles it, a failed batch included
            start = (sector - batch.lba) * BLOCK_SIZE
            parts.append(future.result()[start : start + BLOCK_SIZE])
        return parts[0] if count == 1 else b"".join(parts)

    async def _sectors(self, lba: int, count: int) -> bytes:
        out = bytearray()
        for sector in range(lba, lba + count):
            batch = self._batch_for(sector)
            try:
                data = await asyncio.shield(batch.future)
            except StorageError:
                if batch.count == 1:
                    raise
                # A batch failed: find the exact sector by reading this one alone.
                data = await self.storage.read(sector, 1)
                start = 0
            else:
                start = (sector - batch.lba) * BLOCK_SIZE
            out += data[start : start + BLOCK_SIZE]
        return bytes(out)

    def _span(self) -> tuple[int, int, int] | ReadResult:
        """(first sector, sectors, bytes to skip) of the next block, or why there is none."""
        if self.cancelled or self.finished:
            return ReadResult(None, "stopped")
        begin = self._block_offset(self.delivered)
        end = begin + self.length
        if end > self.capacity:
            self.stop_errors |= CardStatus.OUT_OF_RANGE  # §4.3.3: shows in CMD12's response
            return ReadResult(None, "out_of_range")
        first = begin // BLOCK_SIZE
        return first, (end - 1) // BLOCK_SIZE - first + 1, begin - first * BLOCK_SIZE

    def _deliver(self, sectors: bytes, skip: int) -> ReadResult:
        self.delivered += 1
        return ReadResult(sectors[skip : skip + self.length])

    def next_block_now(self) -> ReadResult | None:
        span = self._span()
        if isinstance(span, ReadResult):
            return span
        first, count, skip = span
        sectors = self._sectors_now(first, count)
        return None if sectors is None else self._deliver(sectors, skip)

    async def next_block(self) -> ReadResult:
        span = self._span()
        if isinstance(span, ReadResult):
            return span
        first, count, skip = span
        try:
            sectors = await self._sectors(first, count)
        except StorageError as error:
            self.on_error(error)
            return ReadResult(None, "storage", error)
        if self.cancelled:
            return ReadResult(None, "stopped")
        return self._deliver(sectors, skip)

    def cancel(self) -> None:
        super().cancel()
        while self.batches:
            batch = self.batches.popleft()
            if batch.future.done():
                if not batch.future.cancelled():
                    batch.future.exception()  # mark a late error as seen
            else:
                batch.future.cancel()


@dataclass
class WritePhase:
    kind: str  # "blocks" (CMD24/25), "csd" (CMD27), "lock" (CMD42), "gen" (CMD56)
    lba: int
    length: int
    count: int | None  # None: until CMD12
    reject: int = 0  # status bits that make every block fail (write protection in SPI mode)
    done: int = 0
    failed: bool = False
    stopped: bool = False
