"""Fixtures for the SDHCI tests: a controller on an SdBus with a card on a real image file,
and a test-local host that drives it with the register sequences of reference B.4 (the
real driver is another module). ``async def`` tests run on their own event loop (see
tests/sdmodel/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from sdmodel.clock import SimClock
from sdmodel.sdbus import SdBus
from sdmodel.sdhci.controller import SdhciController
from sdmodel.sdhci.registers import (
    ClockControl,
    NormalInt,
    Offset,
    PowerControl,
    RespSelect,
    clock_divider,
    make_block_size,
    make_command,
)
from sdmodel.trace import Trace

if TYPE_CHECKING:
    from conftest import CardHarness


ALL_NORMAL = 0x01FF  # status/signal enable: every normal event bit (8:0)
ALL_ERRORS = 0x03FF  # every error bit (9:0)
ACMD41_HCS = 0x40300000
WAIT_S = 5.0

# Command register flags by response kind, as Linux sets them (reference B.2 "Command").
KIND: dict[str, dict[str, Any]] = {
    "none": {"resp": RespSelect.NONE},
    "R1": {"resp": RespSelect.R48, "crc_check": True, "index_check": True},
    "R1b": {"resp": RespSelect.R48_BUSY, "crc_check": True, "index_check": True},
    "R2": {"resp": RespSelect.R136, "crc_check": True},
    "R3": {"resp": RespSelect.R48},
}
# Response kind of each (command, is ACMD) the tests send (reference §4).
RESPONSE_KIND = {(0, False): "none", (2, False): "R2", (3, False): "R1", (6, False): "R1",
                 (7, False): "R1b", (8, False): "R1", (9, False): "R2", (12, False): "R1b",
                 (13, False): "R1", (16, False): "R1", (17, False): "R1", (18, False): "R1",
                 (23, False): "R1", (24, False): "R1", (25, False): "R1", (55, False): "R1",
                 (6, True): "R1", (41, True): "R3", (51, True): "R1"}


class Host:
    """Register-level host for tests: issues commands per B.4 and waits for interrupts."""

    def __init__(self, ctrl: SdhciController, card: CardHarness) -> None:
        self.ctrl = ctrl
        self.card = card
        self.rca = 0

    # --- register access ---------------------------------------------------------------------

    def rd(self, offset: int, width: int = 4) -> int:
        return self.ctrl.read(offset, width)

    def wr(self, offset: int, width: int, value: int) -> None:
        self.ctrl.write(offset, width, value)

    def status(self) -> int:
        return self.rd(Offset.INT_STATUS, 4)

    def clear(self, bits: int) -> None:
        self.wr(Offset.INT_STATUS, 4, bits)

    async def wait_for(self, bits: int) -> int:
        """The 32-bit 0x30 status once any of ``bits`` is set (errors always end it)."""

        async def poll() -> int:
            while True:
                status = self.status()
                if status & (bits | NormalInt.ERROR):
                    return status
                if self.ctrl.irq:
                    await asyncio.sleep(0.0005)  # the line is up for other bits
                else:
                    await self.ctrl.wait_irq()

        return await asyncio.wait_for(poll(), WAIT_S)

    # --- bring-up (B.4 "clock on", "power") ----------------------------------------------------

    def enable_interrupts(self, normal: int = ALL_NORMAL, errors: int = ALL_ERRORS) -> None:
        self.wr(Offset.INT_ENABLE, 4, errors << 16 | normal)
        self.wr(Offset.SIGNAL_ENABLE, 4, errors << 16 | normal)

    def clock(self, divider: int) -> None:
        clock = self.rd(Offset.CLOCK_CONTROL, 2)
        self.wr(Offset.CLOCK_CONTROL, 2, clock & ~ClockControl.CARD_EN)
        self.wr(Offset.CLOCK_CONTROL, 2, clock_divider(divider) | ClockControl.INT_EN)
        assert self.rd(Offset.CLOCK_CONTROL, 2) & ClockControl.INT_STABLE
        self.wr(Offset.CLOCK_CONTROL, 2, clock_divider(divider) | ClockControl.INT_EN
                | ClockControl.CARD_EN)

    def power_on(self) -> None:
        self.enable_interrupts()
        self.wr(Offset.POWER_CONTROL, 1, 0)
        self.wr(Offset.POWER_CONTROL, 1, PowerControl.VDD_33 | PowerControl.ON)
        self.clock(63)  # 50 MHz / 126 = 396.8 kHz for identification

    # --- commands (B.4 "issue a command") ----------------------------------------------------

    def issue(self, index: int, arg: int = 0, *, app: bool = False, mode: int = 0,
              **flags: Any) -> None:
        kind = KIND[RESPONSE_KIND[index, app]]
        self.wr(Offset.ARGUMENT, 4, arg)
        self.wr(Offset.TRANSFER_MODE, 2, mode)
        self.wr(Offset.COMMAND, 2, make_command(index, **{**kind, **flags}))

    async def command(self, index: int, arg: int = 0, *, app: bool = False, mode: int = 0,
                      **flags: Any) -> int:
        """Issue, wait for Command Complete or an error, clear those bits; the status."""
        self.issue(index, arg, app=app, mode=mode, **flags)
        status = await self.wait_for(NormalInt.CMD_COMPLETE)
        self.clear(status & (NormalInt.CMD_COMPLETE | 0xFFFF0000))
        return status

    async def r1b(self, index: int, arg: int = 0) -> int:
        """An R1b command: Command Complete, then Transfer Complete at the busy end."""
        status = await self.command(index, arg)
        assert status & NormalInt.CMD_COMPLETE and not status & NormalInt.ERROR, hex(status)
        status = await self.wait_for(NormalInt.XFER_COMPLETE)
        self.clear(status)
        return status

    def response(self, n: int = 0) -> int:
        return self.rd(Offset.RESPONSE + 4 * n, 4)

    async def identify(self) -> None:
        """Power, CMD0, CMD8 and ACMD41 until the card is ready (reference §8)."""
        self.power_on()
        await self.command(0)
        await self.command(8, 0x1AA)
        for _ in range(10):
            await self.command(55)
            await self.command(41, ACMD41_HCS, app=True)
            if self.response() >> 31:
                return
        raise AssertionError("card not ready after 10 ACMD41")

    async def init_card(self, *, divider: int = 1) -> None:
        """Identification and selection; ends in tran at 25 MHz, data timeout 0xE."""
        await self.identify()
        await self.command(2)
        await self.command(3)
        self.rca = self.response() >> 16
        await self.r1b(7, self.rca << 16)
        self.clock(divider)
        self.wr(Offset.TIMEOUT_CONTROL, 1, 0xE)

    async def set_bus_width_4(self) -> None:
        await self.command(55, self.rca << 16)
        await self.command(6, 2, app=True)
        self.wr(Offset.HOST_CONTROL, 1, self.rd(Offset.HOST_CONTROL, 1) | 0x02)

    def prepare(self, count: int, *, boundary: int = 7, address: int | None = None,
                size: int = 512) -> None:
        """B.4 step 3: SDMA address (if any), Block Size, Block Count."""
        if address is not None:
            self.wr(Offset.DMA_ADDRESS, 4, address)
        self.wr(Offset.BLOCK_SIZE, 2, make_block_size(size, boundary))
        self.wr(Offset.BLOCK_COUNT, 2, count)

    # --- PIO (B.4 "PIO read", "PIO write") ----------------------------------------------------

    async def read_buffer(self, size: int = 512, width: int = 4) -> bytes:
        status = await self.wait_for(NormalInt.BUF_RD_READY)
        assert status & NormalInt.BUF_RD_READY, hex(status)
        self.clear(NormalInt.BUF_RD_READY)
        port = [Offset.BUFFER + lane for lane in range(0, 4, width)]
        return b"".join(self.rd(port[i % len(port)], width).to_bytes(width, "little")
                        for i in range(size // width))

    async def write_buffer(self, data: bytes, width: int = 4) -> None:
        status = await self.wait_for(NormalInt.BUF_WR_READY)
        assert status & NormalInt.BUF_WR_READY, hex(status)
        self.clear(NormalInt.BUF_WR_READY)
        port = [Offset.BUFFER + lane for lane in range(0, 4, width)]
        for i in range(len(data) // width):
            chunk = data[i * width : (i + 1) * width]
            self.wr(port[i % len(port)], width, int.from_bytes(chunk, "little"))

    async def reset(self, bits: int) -> None:
        """Software reset, polled until the bits clear (Linux: up to 100 ms)."""
        self.wr(Offset.SOFTWARE_RESET, 1, bits)
        for _ in range(1000):
            if not self.rd(Offset.SOFTWARE_RESET, 1) & bits:
                return
            await asyncio.sleep(0.0001)
        raise AssertionError(f"software reset {bits:#x} did not clear")


@pytest.fixture
def make_host(make_card: Callable[..., CardHarness]) -> Callable[..., Host]:
    """``make_host(kind="SDHC", timeout_clock_hz=1_000_000, **CardOptions)``: a controller
    on a fresh bus and card (storage closed after the test)."""

    def make(kind: str = "SDHC", *, timeout_clock_hz: int = 1_000_000,
             **options: Any) -> Host:
        card = make_card(kind, **options)
        bus = SdBus(card.card, SimClock(400_000), Trace())
        return Host(SdhciController(bus, timeout_clock_hz=timeout_clock_hz), card)

    return make
