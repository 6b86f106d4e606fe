"""An asynchronous SPI-mode host: the card's SPI framing driven the way real SPI drivers
drive it (reference A.6 "What real SPI drivers rely on"; elm-chan and Linux mmc_spi).

It offers the same requests as the SDHCI driver (``init``, ``read``, ``write``,
``erase``, ``wait``) so the workload runner and the simulator use either. Each command
is framed CS# low, one 0xFF, the 6 command bytes, the R1 search (at most N_CR = 8
bytes), the rest of the response, CS# high and one 0xFF (A.6). While the card waits
for storage the host keeps clocking: ``SpiCard.idle_while_waiting`` records the 0xFF
(read access) or 0x00 (busy) bytes and lets simulated time follow wall time; the host
gives up after its data timeout (A.6: >= 100 ms reads, 250 ms writes, erase longer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.commands import SpiResp, command_name, lookup
from sdmodel.crc import command_frame, crc16
from sdmodel.driver.card_info import CardInfo
from sdmodel.driver.errors import DriverError
from sdmodel.driver.host import Request
from sdmodel.events import EmitterGroup
from sdmodel.registers import OCR_BUSY, OCR_CCS, SCR, csd_capacity
from sdmodel.spi import BUSY, DATA_RESPONSE, FILL, ControlToken, SpiCard
from sdmodel.tokens import PS_PER_S, CrcStatus

__all__ = ["SpiHost", "SPI_ID_CLOCK_HZ", "SPI_CLOCK_HZ"]

SPI_ID_CLOCK_HZ = 400_000  # A.1: 100-400 kHz until the card left idle
SPI_CLOCK_HZ = 25_000_000  # default-speed clock afterwards (§7.2)
POWER_UP_BYTES = 10  # 80 clocks with CS# high (A.6, elm-chan)
NCR_BYTES = 8  # the R1 comes within N_CR = 1..8 bytes (A.5 table)
ACMD41_TRIES = 1000  # elm-chan: 1000 x 1 ms
READ_TIMEOUT_S = 0.1  # A.6: data timeout >= 100 ms for SPI hosts
WRITE_TIMEOUT_S = 0.25
ERASE_TIMEOUT_S = 30.0
HCS = 1 << 30
_ACCEPTED = DATA_RESPONSE[CrcStatus.ACCEPTED] & 0x1F
_R1_IDLE = 0x01

Gate = Callable[[str], Awaitable[None]]


class SpiHost:
    """Events: ``request(Request)`` before and after each request (as the SDHCI
    driver's), ``log(str)``."""

    def __init__(self, spi: SpiCard, *, gate: Gate | None = None, clock_hz: int | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.spi = spi
        self.clock = spi.clock
        self.gate = gate
        self.clock_hz = clock_hz or SPI_CLOCK_HZ
        self.card: CardInfo | None = None
        self._requests = 0
        self.events = EmitterGroup("request", "log")
        if log is not None:
            self.events.log.connect(log)

    @property
    def now(self) -> int:
        return self.clock.now

    def _log(self, message: str) -> None:
        self.events.log.emit(message)

    @asynccontextmanager
    async def _request(self, op: str, lba: int = 0, count: int = 0) -> AsyncIterator[None]:
        self._requests += 1
        request = Request(self._requests, op, lba, count, start_ps=self.now)
        self.events.request.emit(request)
        error = ""
        try:
            yield
        except DriverError as failure:
            error = str(failure)
            self._log(error)
            raise
        finally:
            self.events.request.emit(replace(request, done=True, error=error,
                                             end_ps=self.now))

    async def _gate(self, op: str) -> None:
        if self.gate is not None:
            await self.gate(op)

    def _deadline(self, seconds: float) -> int:
        return self.clock.now + int(seconds * PS_PER_S)

    # --- framing ----------------------------------------------------------------------------

    async def command(self, index: int, arg: int = 0, *, app: bool = False,
                      keep_selected: bool = False) -> bytes:
        """Send one command; returns its response bytes (R1 first). CS# stays low with
        ``keep_selected`` for the data phase that follows."""
        if app:
            r1 = (await self.command(55, 0))[0]
            if r1 & ~_R1_IDLE:
                raise DriverError(f"CMD55: R1 0x{r1:02X}")
        await self._gate("command")
        spi = self.spi
        spi.select(True)
        spi.exchange(bytes([FILL]) + command_frame(index, arg))
        for _ in range(NCR_BYTES):
            r1 = spi.exchange_byte(FILL)
            if not r1 & 0x80:
                break
        else:
            self._deselect()
            raise DriverError(f"{command_name(index, app)}: no response (R1 not found within "
                              f"{NCR_BYTES} bytes)")
        kind = _spi_response(index, app)
        response = bytes([r1]) + spi.exchange(bytes([FILL]) * (kind.nbytes - 1))
        if kind is SpiResp.R1B:
            await self._wait_not_busy(ERASE_TIMEOUT_S if index == 38 else WRITE_TIMEOUT_S,
                                      command_name(index, app))
        if not keep_selected:
            self._deselect()
        return response

    def _deselect(self) -> None:
        self.spi.select(False)
        self.spi.exchange_byte(FILL)  # one more byte so the card releases DO (A.6)

    async def _wait_not_busy(self, timeout_s: float, what: str) -> None:
        """Clock 0xFF until DO goes high again (busy ends; A.5)."""
        await self._gate("busy")
        deadline = self._deadline(timeout_s)
        while self.spi.exchange_byte(FILL) == BUSY:
            if not await self.spi.idle_while_waiting(deadline=deadline):
                self._deselect()
                raise DriverError(f"{what}: card still busy after {timeout_s * 1e3:.0f} ms")

    async def _read_data(self, nbytes: int, what: str) -> bytes:
        """Wait for the start-block token, then the block and its CRC16 (A.5)."""
        await self._gate("read")
        spi = self.spi
        deadline = self._deadline(READ_TIMEOUT_S)
        while True:
            token = spi.exchange_byte(FILL)
            if token == ControlToken.START_BLOCK:
                break
            if token != FILL:
                raise DriverError(f"{what}: data error token 0x{token:02X}")
            if not await spi.idle_while_waiting(deadline=deadline) or self.clock.now > deadline:
                raise DriverError(f"{what}: no data token within {READ_TIMEOUT_S * 1e3:.0f} ms")
        raw = spi.exchange(bytes([FILL]) * (nbytes + 2))
        data, crc = raw[:nbytes], int.from_bytes(raw[nbytes:], "big")
        if crc16(data) != crc:
            raise DriverError(f"{what}: data CRC16 0x{crc:04X}, expected 0x{crc16(data):04X}")
        return data

    async def _write_data(self, data: bytes, token: int, what: str) -> None:
        """Token, block, CRC16, data response, busy (A.5, A.6 item 6)."""
        await self._gate("write")
        spi = self.spi
        spi.exchange(bytes([FILL, token]) + data + crc16(data).to_bytes(2, "big"))
        response = spi.exchange_byte(FILL)
        if response & 0x1F != _ACCEPTED:
            raise DriverError(f"{what}: data response 0x{response:02X} (block not accepted)")
        await self._wait_not_busy(WRITE_TIMEOUT_S, what)

    async def _register(self, index: int, nbytes: int, *, app: bool = False) -> bytes:
        name = command_name(index, app)
        r1 = (await self.command(index, 0, app=app, keep_selected=True))[0]
        try:
            if r1:
                raise DriverError(f"{name}: R1 0x{r1:02X}")
            return await self._read_data(nbytes, name)
        finally:
            self._deselect()

    # --- requests -----------------------------------------------------------------------

    async def init(self) -> CardInfo:
        async with self._request("init"):
            return await self._init()

    async def read(self, lba: int, count: int) -> bytes:
        async with self._request("read", lba, count):
            return await self._read(lba, count)

    async def write(self, lba: int, data: bytes) -> None:
        async with self._request("write", lba, len(data) // BLOCK_SIZE):
            await self._write(lba, data)

    async def erase(self, lba: int, count: int) -> None:
        async with self._request("erase", lba, count):
            await self._erase(lba, count)

    async def _init(self) -> CardInfo:
        """Power-up and identification as elm-chan / Linux mmc_spi do it (A.6)."""
        spi, clock = self.spi, self.clock
        clock.set_frequency(SPI_ID_CLOCK_HZ)
        spi.card.power_on()
        spi.select(False)
        spi.exchange(bytes([FILL]) * POWER_UP_BYTES)
        r1 = (await self.command(0, 0))[0]
        if r1 != _R1_IDLE:
            raise DriverError(f"CMD0: R1 0x{r1:02X}, expected 0x01 (no card, or not SPI)")
        r7 = await self.command(8, 0x1AA)
        v2 = r7[0] == _R1_IDLE and r7[-1] == 0xAA
        for _ in range(ACMD41_TRIES):
            r1 = (await self.command(41, HCS if v2 else 0, app=True))[0]
            if r1 == 0:
                break
            if r1 != _R1_IDLE:
                raise DriverError(f"ACMD41: R1 0x{r1:02X}")
        else:
            raise DriverError(f"card still idle after {ACMD41_TRIES} ACMD41")
        ocr = int.from_bytes((await self.command(58, 0))[1:5], "big")
        if not ocr & OCR_BUSY:
            raise DriverError(f"CMD58: OCR 0x{ocr:08X} without the power-up status bit")
        high_capacity = v2 and bool(ocr & OCR_CCS)
        csd = int.from_bytes(await self._register(9, 16), "big")
        cid = int.from_bytes(await self._register(10, 16), "big")
        scr = int.from_bytes(await self._register(51, 8, app=True), "big")
        sd_status = await self._register(13, 64, app=True)
        if not high_capacity:
            r1 = (await self.command(16, BLOCK_SIZE))[0]
            if r1:
                raise DriverError(f"CMD16: R1 0x{r1:02X}")
        clock.set_frequency(self.clock_hz)
        cmd23 = bool(SCR.field("CMD_SUPPORT").get(scr) & 0b10)
        self.card = CardInfo(rca=0, ocr=ocr, cid=cid, csd=csd, capacity=csd_capacity(csd),
                             scr=scr, sd_status=sd_status, high_capacity=high_capacity,
                             high_speed=False, bus_width=1, cmd23=cmd23, clock_hz=clock.hz)
        self._log(f"SPI card ready: {self.card.card_type.value}, {self.card.blocks} blocks, "
                  f"{clock.hz / 1e6:g} MHz")
        return self.card

    def _ready_card(self) -> CardInfo:
        if self.card is None:
            raise DriverError("the card is not initialised (run init first)")
        return self.card

    async def _read(self, lba: int, count: int) -> bytes:
        card = self._ready_card()
        index = 17 if count == 1 else 18
        name = command_name(index)
        r1 = (await self.command(index, card.address(lba), keep_selected=True))[0]
        if r1:
            self._deselect()
            raise DriverError(f"{name} at LBA {lba}: R1 0x{r1:02X}")
        blocks = []
        try:
            for _ in range(count):
                blocks.append(await self._read_data(BLOCK_SIZE, name))
        finally:
            if index == 18:
                await self._stop_read()
            else:
                self._deselect()
        return b"".join(blocks)

    async def _stop_read(self) -> None:
        """CMD12 inside the read: a stuff byte, then the R1 and a short busy (A.6 item 7)."""
        await self._gate("command")
        spi = self.spi
        spi.exchange(command_frame(12, 0) + bytes([FILL]))  # the stuff byte
        for _ in range(NCR_BYTES):
            if not spi.exchange_byte(FILL) & 0x80:
                break
        await self._wait_not_busy(WRITE_TIMEOUT_S, "CMD12")
        self._deselect()

    async def _write(self, lba: int, data: bytes) -> None:
        card = self._ready_card()
        count = len(data) // BLOCK_SIZE
        if count * BLOCK_SIZE != len(data) or not count:
            raise DriverError(f"write of {len(data)} bytes: not a whole number of blocks")
        index = 24 if count == 1 else 25
        name = command_name(index)
        r1 = (await self.command(index, card.address(lba), keep_selected=True))[0]
        if r1:
            self._deselect()
            raise DriverError(f"{name} at LBA {lba}: R1 0x{r1:02X}")
        token = ControlToken.START_BLOCK if count == 1 else ControlToken.START_BLOCK_MULTI
        try:
            for i in range(count):
                await self._write_data(data[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE], token, name)
        except DriverError:
            if index == 25:  # a refused block leaves the card in rcv until 0xFD
                await self._stop_tran()
            self._deselect()
            await self.command(13, 0)  # reading the status clears the latched error bits
            raise
        if index == 25:
            await self._stop_tran()
        self._deselect()
        await self._check_status(name)

    async def _stop_tran(self) -> None:
        """0xFD ends CMD25, then N_BR and busy while the last blocks program (A.5)."""
        self.spi.exchange_byte(ControlToken.STOP_TRAN)
        self.spi.exchange_byte(FILL)
        await self._wait_not_busy(WRITE_TIMEOUT_S, "stop tran")

    async def _check_status(self, what: str) -> None:
        """CMD13 after a write, as Linux does: both status bytes must be clear."""
        r2 = await self.command(13, 0)
        if any(r2):
            raise DriverError(f"{what}: CMD13 status 0x{r2.hex().upper()} after the write")

    async def _erase(self, lba: int, count: int) -> None:
        card = self._ready_card()
        for index, arg in ((32, card.address(lba)), (33, card.address(lba + count - 1)),
                           (38, 0)):
            r1 = (await self.command(index, arg))[0]
            if r1:
                raise DriverError(f"{command_name(index)}: R1 0x{r1:02X}")
        await self._check_status("erase")

    async def wait(self, ms: float) -> None:
        """The host idles with CS# high (no clock)."""
        self.clock.advance_ps(int(ms * PS_PER_S / 1000))


def _spi_response(index: int, app: bool) -> SpiResp:
    cmd = lookup(index, app)
    return cmd.spi if cmd is not None and cmd.spi is not None else SpiResp.R1
