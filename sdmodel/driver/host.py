"""``HostDriver``: the asynchronous, interrupt-driven host driver (a Linux-like mmc stack
on an SDHCI controller).

    driver = HostDriver(controller, bus_width=4)
    info = await driver.init()
    data = await driver.read(0, 8)
    await driver.write(100, data[:2048])
    await driver.erase(200, 16)

Requests run one at a time. Each is announced on ``events.request`` before it starts and
again when it ends (``done``; ``error`` set if it failed). Errors (reference B.4 "Error
Interrupt Recovery", Linux mmc_blk): a CMD-line error resets CMD and retries the command;
a data error resets CMD and DAT, stops the card with CMD12 if it is still sending or
receiving, waits until it is in tran and retries the request, up to ``retries`` times,
then raises DriverError. After the card is removed every request fails with
CardRemovedError ("card removed") until ``init`` finds a card again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver.card_info import CardInfo
from sdmodel.driver.errors import CardRemovedError, CardStatusError, DriverError
from sdmodel.driver.init import IDENT_HZ, InitOptions, initialise
from sdmodel.driver.issue import Issuer
from sdmodel.driver.requests import MAX_REQUEST_BLOCKS, BlockIO
from sdmodel.driver.slot import BusError, Slot
from sdmodel.events import EmitterGroup
from sdmodel.sdhci.registers import SoftwareReset

if TYPE_CHECKING:
    from sdmodel.sdhci.controller import SdhciController

__all__ = ["HostDriver", "Request"]

log = logging.getLogger("sdmodel.driver")
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One driver request as announced on ``events.request``."""

    id: int
    op: str  # "init", "read", "write" or "erase"
    lba: int = 0
    count: int = 0
    done: bool = False
    error: str = ""  # why it failed ("" while running or after success)
    retries: int = 0  # command and request retries it needed
    start_ps: int = 0  # simulated time
    end_ps: int = 0

    @property
    def ok(self) -> bool:
        return self.done and not self.error


class HostDriver:
    def __init__(
        self,
        controller: SdhciController,
        *,
        bus_width: int = 4,
        high_speed: bool = True,
        use_dma: bool = True,
        retries: int = 3,
        max_clock_hz: float | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if bus_width not in (1, 4):
            raise ValueError(f"bus width must be 1 or 4, not {bus_width}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, not {retries}")
        if max_clock_hz is not None and max_clock_hz < IDENT_HZ:
            raise ValueError(f"max clock must be at least {IDENT_HZ} Hz, not {max_clock_hz}")
        self.controller = controller
        self.retries = retries
        self.events = EmitterGroup("request", "log")
        self._log_to = log
        self.slot = Slot(controller, use_dma=use_dma)
        self.issuer = Issuer(self.slot, retries=retries, log=self._log)
        self.options = InitOptions(bus_width=bus_width, high_speed=high_speed,
                                   max_clock_hz=max_clock_hz)
        self.card: CardInfo | None = None
        self._io: BlockIO | None = None
        self._removed = False
        self._lock = asyncio.Lock()
        self._requests = 0
        self._retried = 0

    @property
    def now(self) -> int:
        """Simulated time, picoseconds."""
        return self.controller.bus.clock.now

    def _log(self, line: str) -> None:
        log.debug("%s", line)
        self.events.log.emit(line)
        if self._log_to is not None:
            self._log_to(line)

    # --- public requests -------------------------------------------------------------------

    async def init(self) -> CardInfo:
        """Power up and initialise the card in the slot (reference §8)."""

        async def work() -> CardInfo:
            self.card = self._io = None
            try:
                card = await initialise(self.slot, self.issuer, self.options, self._log)
            except BusError as error:
                raise DriverError(f"init: {error}") from None
            self._removed = False
            self.card = card
            self._io = BlockIO(self.issuer, card, self._log)
            return card

        return await self._request("init", 0, 0, work)

    async def read(self, lba: int, count: int) -> bytes:
        """Blocks ``lba``..``lba + count - 1``."""

        async def work() -> bytes:
            io = self._block_io("read", lba, count)
            data = bytearray()
            for first, n in _chunks(lba, count):
                data += await self._attempts(f"read of blocks {first}..{first + n - 1}",
                                             lambda f=first, n=n: io.read(f, n))
            return bytes(data)

        return await self._request("read", lba, count, work)

    async def write(self, lba: int, data: bytes) -> None:
        """``data`` (a whole number of 512-byte blocks) to blocks ``lba`` on."""
        count = len(data) // BLOCK_SIZE
        if not data or len(data) % BLOCK_SIZE:
            raise DriverError(f"write: {len(data)} bytes is not a whole number of "
                              f"{BLOCK_SIZE}-byte blocks")

        async def work() -> None:
            io = self._block_io("write", lba, count)
            for first, n in _chunks(lba, count):
                chunk = data[(first - lba) * BLOCK_SIZE:(first - lba + n) * BLOCK_SIZE]
                await self._attempts(f"write of blocks {first}..{first + n - 1}",
                                     lambda f=first, c=chunk: io.write(f, c))

        await self._request("write", lba, count, work)

    async def erase(self, lba: int, count: int) -> None:
        """Erase blocks ``lba``..``lba + count - 1`` (CMD32, CMD33, CMD38)."""

        async def work() -> None:
            io = self._block_io("erase", lba, count)
            await self._attempts(f"erase of blocks {lba}..{lba + count - 1}",
                                 lambda: io.erase(lba, count))

        await self._request("erase", lba, count, work)

    async def wait(self, ms: float) -> None:
        """The host idles ``ms`` milliseconds of simulated time."""
        async with self._lock:
            await self.issuer.idle(ms / 1000)

    # --- machinery -------------------------------------------------------------------------

    def _block_io(self, op: str, lba: int, count: int) -> BlockIO:
        if self._removed:
            raise CardRemovedError()
        if self._io is None or self.card is None:
            raise DriverError(f"{op}: no card initialised; run init first")
        if lba < 0 or count < 1:
            raise DriverError(f"{op}: needs LBA >= 0 and at least one block, got {lba}+{count}")
        if lba + count > self.card.blocks:
            raise DriverError(f"{op} of blocks {lba}..{lba + count - 1}: beyond the end of "
                              f"the card ({self.card.blocks} blocks)")
        return self._io

    async def _attempts(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``; after a bus or card-status error recover the card and retry."""
        io = self._io
        assert io is not None
        tried = 0
        while True:
            try:
                return await work()
            except (BusError, CardStatusError) as error:
                self._log(f"{what}: {error}")
                await io.recover(error)
                if isinstance(error, CardStatusError):
                    raise CardStatusError(f"{what}: {error.what}", error.status,
                                          error.errors) from None
                if tried == self.retries:
                    after = f" after {tried} retries" if tried else ""
                    raise DriverError(f"{what}: {error}{after}") from None
                tried += 1
                self._retried += 1
                self._log(f"{what}: recovered, retry {tried} of {self.retries}")

    async def _request(self, op: str, lba: int, count: int,
                       work: Callable[[], Awaitable[T]]) -> T:
        async with self._lock:
            self._requests += 1
            self._retried = self.issuer.retried = 0
            request = Request(self._requests, op, lba, count, start_ps=self.now)
            self.events.request.emit(request)
            try:
                result = await work()
            except CardRemovedError as error:
                await self._card_removed()
                self._finish(request, error)
                raise
            except DriverError as error:
                self._finish(request, error)
                raise
            except asyncio.CancelledError:
                await self._abandon()
                self._finish(request, DriverError(f"{op}: cancelled"))
                raise
            self._finish(request, None)
            return result

    def _finish(self, request: Request, error: DriverError | None) -> None:
        if error is not None:
            self._log(str(error))
        self.events.request.emit(replace(
            request, done=True, error="" if error is None else str(error),
            retries=self._retried + self.issuer.retried, end_ps=self.now,
        ))

    async def _card_removed(self) -> None:
        """Fail this and every later request; leave the controller idle (Linux
        ``sdhci_card_event``: reset CMD and DAT when a request was in flight)."""
        if not self._removed:
            self._log("card removed")
        self._removed = True
        await self._abandon()

    async def _abandon(self) -> None:
        """Stop what the controller still does for an abandoned request. A card left in
        data or rcv is brought back by the next request's recovery."""
        await self.slot.reset(SoftwareReset.CMD)
        await self.slot.reset(SoftwareReset.DATA)


def _chunks(lba: int, count: int) -> list[tuple[int, int]]:
    """(first LBA, blocks) of each request of at most MAX_REQUEST_BLOCKS."""
    return [(first, min(MAX_REQUEST_BLOCKS, lba + count - first))
            for first in range(lba, lba + count, MAX_REQUEST_BLOCKS)]

