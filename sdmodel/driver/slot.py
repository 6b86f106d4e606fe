"""The driver's side of one SDHCI slot: power, clock, resets and one command at a time.

A command is issued with the register writes of Linux ``sdhci_send_command`` (reference
B.4) and completed by the interrupt loop of ``sdhci_irq`` (B.5): await the IRQ line, read
the 32-bit status at 0x30, acknowledge it (write 1 to clear, before handling, as Linux
does), then handle Command Complete, buffer-ready, DMA and Transfer Complete bits. The
loop never sleeps and never polls: it only runs when the line is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.commands import Resp, lookup
from sdmodel.driver.errors import CardRemovedError, CardStatusError, DriverError
from sdmodel.registers import crc7_register
from sdmodel.sdhci.registers import (
    MAX_DIVIDER,
    MAX_TIMEOUT_COUNT,
    REG,
    ClockControl,
    ErrorInt,
    HostControl,
    NormalInt,
    Offset,
    PowerControl,
    PresentState,
    RespSelect,
    SoftwareReset,
    TransferMode,
    clock_divider,
    data_timeout_ps,
    make_block_size,
    make_command,
    sd_clock_hz,
)

if TYPE_CHECKING:
    from sdmodel.sdhci.controller import SdhciController

__all__ = [
    "Slot",
    "Transfer",
    "Completion",
    "BusError",
    "CMD_ERRORS",
    "DATA_ERRORS",
    "INT_ENABLE_PIO",
    "INT_ENABLE_DMA",
]

PS_PER_S = 1_000_000_000_000
SDMA_BOUNDARY = 7  # Block Size 14:12: 4 KiB << 7 = 512 KiB, what Linux always programs
SDMA_BOUNDARY_BYTES = 4096 << SDMA_BOUNDARY

# Error Interrupt Status bits by the circuit they concern (HCS "Error Interrupt Recovery").
CMD_ERRORS = ErrorInt.CMD_TIMEOUT | ErrorInt.CMD_CRC | ErrorInt.CMD_END_BIT | ErrorInt.CMD_INDEX
DATA_ERRORS = (ErrorInt.DATA_TIMEOUT | ErrorInt.DATA_CRC | ErrorInt.DATA_END_BIT
               | ErrorInt.CURRENT_LIMIT | ErrorInt.AUTO_CMD | ErrorInt.ADMA)

# Interrupt enables as Linux sets them (B.2 "Status Enable"): ier = 0x00FF0003 (response,
# data end and the error bits), plus the PIO or DMA data bits, AUTO_CMD_ERR for auto CMD12
# and CARD_REMOVE while a card is present. The same value goes to status and signal enable.
_INT_BASE = int(NormalInt.CMD_COMPLETE | NormalInt.XFER_COMPLETE | NormalInt.CARD_REMOVE) | (
    int(CMD_ERRORS | ErrorInt.DATA_TIMEOUT | ErrorInt.DATA_CRC | ErrorInt.DATA_END_BIT
        | ErrorInt.CURRENT_LIMIT | ErrorInt.AUTO_CMD) << 16
)
INT_ENABLE_PIO = _INT_BASE | int(NormalInt.BUF_RD_READY | NormalInt.BUF_WR_READY)
INT_ENABLE_DMA = _INT_BASE | int(NormalInt.DMA_INT) | int(ErrorInt.ADMA) << 16

# Response kind (command table) -> Response Type Select, CRC check, index check (B.2
# "Flag combinations by response type": R2 0x09, R3 0x02, R1/R6/R7 0x1A, R1b 0x1B).
_RESPONSE_FORMAT: dict[Resp, tuple[RespSelect, bool, bool]] = {
    Resp.NONE: (RespSelect.NONE, False, False),
    Resp.R1: (RespSelect.R48, True, True),
    Resp.R1B: (RespSelect.R48_BUSY, True, True),
    Resp.R2: (RespSelect.R136, True, False),
    Resp.R3: (RespSelect.R48, False, False),
    Resp.R6: (RespSelect.R48, True, True),
    Resp.R7: (RespSelect.R48, True, True),
}
_AUTO_CMD12_RESPONSE = Offset.RESPONSE + 12  # RESPONSE[127:96] (B.2 "Response registers")
_CAPS = REG["CAPABILITIES"]


class BusError(Exception):
    """Error interrupt bits of a failed command (handled by the driver, not the user)."""

    def __init__(self, name: str, bits: ErrorInt, auto_cmd: int = 0) -> None:
        self.name = name
        self.bits = bits
        self.auto_cmd = auto_cmd
        names = "|".join(str(flag.name) for flag in ErrorInt if flag in bits)
        auto = f", AUTO_CMD_STATUS 0x{auto_cmd:02X}" if bits & ErrorInt.AUTO_CMD else ""
        super().__init__(f"{name}: {names} (ERR_INT_STATUS 0x{int(bits):04X}{auto})")

    @property
    def on_data(self) -> bool:
        """A data-circuit error (the command itself completed)."""
        return bool(self.bits & DATA_ERRORS) and not self.bits & CMD_ERRORS

    @property
    def timeout(self) -> bool:
        return bool(self.bits & (ErrorInt.CMD_TIMEOUT | ErrorInt.DATA_TIMEOUT))


@dataclass(frozen=True)
class Transfer:
    """The data phase of a command (B.4 "SD Transaction Generation")."""

    read: bool
    blocks: int = 1
    block_size: int = BLOCK_SIZE
    data: bytes = b""  # what a write sends
    auto_cmd12: bool = False

    @property
    def size(self) -> int:
        return self.blocks * self.block_size


@dataclass(frozen=True)
class Completion:
    response: int  # RESPONSE[31:0] (card status, OCR, R6, R7); R2: the 128-bit register
    data: bytes = b""  # what a read brought
    auto_response: int | None = None  # the Auto CMD12 response (RESPONSE[127:96])


def divider_for(base_hz: int, target_hz: float) -> int:
    """Divider N for the fastest SD clock not above ``target_hz``: the smallest even
    divisor 2N with base / 2N <= target (Linux ``sdhci_calc_clk``, v3 divided mode)."""
    if target_hz >= base_hz:
        return 0
    n = -(-base_hz // (2 * int(target_hz)))  # ceil(base / 2 target)
    while base_hz / (2 * n) > target_hz:
        n += 1
    return min(n, MAX_DIVIDER)


@dataclass
class _Exchange:
    """The progress of one command through its interrupts."""

    name: str
    resp: Resp
    transfer: Transfer | None
    busy: bool
    status_errors: int = 0  # card-status bits that fail the command at Command Complete
    response: int = 0
    dma_address: int = 0
    dma_done: int = 0  # bytes moved by SDMA as far as the driver knows
    blocks_done: int = 0
    data: bytearray | None = None
    command_done: bool = False
    transfer_done: bool = False

    @property
    def finished(self) -> bool:
        waits_for_dat = self.transfer is not None or self.busy
        return self.command_done and (self.transfer_done or not waits_for_dat)


class Slot:
    """One SDHCI slot driven through its registers (``SdhciController.read/write``)."""

    def __init__(self, controller: SdhciController, *, use_dma: bool) -> None:
        self.controller = controller
        self.use_dma = use_dma
        self.base_clock_hz = 0
        self.timeout_clock_hz = 0
        self.supports_high_speed = False

    # --- registers ------------------------------------------------------------------------

    def read(self, offset: int, width: int) -> int:
        return self.controller.read(offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self.controller.write(offset, width, value)

    def _modify(self, offset: int, clear: int, set_: int) -> None:
        """Read-modify-write of an 8-bit register, as Linux updates Host Control."""
        self.write(offset, 1, (self.read(offset, 1) & ~clear | set_) & 0xFF)

    @property
    def card_present(self) -> bool:
        return bool(self.read(Offset.PRESENT_STATE, 4) & PresentState.CARD_INSERTED)

    # --- bring-up (B.4 "SD Clock Control", Linux sdhci_init / sdhci_set_power) -------------

    async def setup(self) -> None:
        """Reset everything, learn the clocks from Capabilities, enable the interrupts."""
        await self.reset(SoftwareReset.ALL)
        caps = self.read(Offset.CAPABILITIES, 4)
        unit = 1_000_000 if _CAPS.field("TIMEOUT_UNIT").get(caps) else 1_000
        self.timeout_clock_hz = _CAPS.field("TIMEOUT_CLOCK").get(caps) * unit
        self.base_clock_hz = _CAPS.field("BASE_CLOCK").get(caps) * 1_000_000
        self.supports_high_speed = bool(_CAPS.field("HIGH_SPEED").get(caps))
        if not self.timeout_clock_hz or not self.base_clock_hz:
            raise DriverError(f"controller capabilities 0x{caps:08X} give no base or "
                              "timeout clock; this driver needs both")
        enables = INT_ENABLE_DMA if self.use_dma else INT_ENABLE_PIO
        self.write(Offset.INT_ENABLE, 4, enables)
        self.write(Offset.SIGNAL_ENABLE, 4, enables)

    def power_on(self) -> None:
        """Bus power off, then 3.3 V and on (Linux writes 0 first)."""
        self.write(Offset.POWER_CONTROL, 1, 0)
        self.write(Offset.POWER_CONTROL, 1, PowerControl.VDD_33 | PowerControl.ON)

    async def set_clock(self, target_hz: float) -> float:
        """Stop the SD clock, program the divider, wait for the internal clock, start
        the SD clock; the frequency reached (Linux ``sdhci_set_clock``)."""
        divider = clock_divider(divider_for(self.base_clock_hz, target_hz))
        self.write(Offset.CLOCK_CONTROL, 2, 0)
        self.write(Offset.CLOCK_CONTROL, 2, divider | ClockControl.INT_EN)
        if not self.read(Offset.CLOCK_CONTROL, 2) & ClockControl.INT_STABLE:
            raise DriverError("SD host controller: internal clock never became stable")
        self.write(Offset.CLOCK_CONTROL, 2, divider | ClockControl.INT_EN | ClockControl.CARD_EN)
        return sd_clock_hz(divider, self.base_clock_hz)

    def set_host_control(self, *, bus_4bit: bool | None = None,
                         high_speed: bool | None = None) -> None:
        for flag, on in ((HostControl.BUS_4BIT, bus_4bit), (HostControl.HIGH_SPEED, high_speed)):
            if on is not None:
                self._modify(Offset.HOST_CONTROL, int(flag), int(flag) if on else 0)

    async def reset(self, what: SoftwareReset) -> None:
        """Software reset of the CMD and/or DAT circuit (or ALL); the bits self-clear."""
        self.write(Offset.SOFTWARE_RESET, 1, int(what))
        if self.read(Offset.SOFTWARE_RESET, 1) & what:
            await self.controller.idle()
            if self.read(Offset.SOFTWARE_RESET, 1) & what:
                raise DriverError(f"SD host controller: software reset {what!r} never ended")

    def timeout_count(self, seconds: float) -> int:
        """Timeout Control n for a data timeout of at least ``seconds``: TMCLK x 2^(13+n)
        (Linux ``sdhci_calc_timeout``; capped at 0xE)."""
        n = 0
        while (n < MAX_TIMEOUT_COUNT
               and data_timeout_ps(n, self.timeout_clock_hz) < seconds * PS_PER_S):
            n += 1
        return n

    # --- one command (B.4 "Issue a command", B.5) ------------------------------------------

    async def command(self, index: int, arg: int, *, app: bool = False,
                      transfer: Transfer | None = None, timeout_s: float = 0.1,
                      status_errors: int = 0) -> Completion:
        """Send one command and wait for its completion; BusError on an error interrupt,
        CardStatusError when the R1 carries one of ``status_errors`` (the data phase is
        then abandoned: the caller resets DAT), CardRemovedError when the card goes away."""
        cmd = lookup(index, app)
        assert cmd is not None, f"CMD{index} is not in the command table"
        resp, crc_check, index_check = _RESPONSE_FORMAT[cmd.resp]
        busy = resp is RespSelect.R48_BUSY
        name = f"{cmd.label} {cmd.name}"
        present = self.read(Offset.PRESENT_STATE, 4)
        if not present & PresentState.CARD_INSERTED:
            raise CardRemovedError()
        inhibit = PresentState.CMD_INHIBIT
        if transfer is not None or busy:
            inhibit |= PresentState.DAT_INHIBIT
        if present & inhibit:
            raise DriverError(f"{name}: controller still busy (PRESENT_STATE 0x{present:08X})")
        exchange = _Exchange(name, cmd.resp, transfer, busy, status_errors)
        if transfer is not None or busy:
            self.write(Offset.TIMEOUT_CONTROL, 1, self.timeout_count(timeout_s))
        mode = 0
        if transfer is not None:
            mode = self._program_transfer(exchange, transfer)
        self.write(Offset.ARGUMENT, 4, arg)
        self.write(Offset.TRANSFER_MODE, 2, mode)
        self.write(Offset.COMMAND, 2, make_command(
            index, resp, data=transfer is not None, crc_check=crc_check, index_check=index_check))
        try:
            while not exchange.finished:
                await self._service(exchange)
            return self._complete(exchange)
        finally:
            if self.use_dma and transfer is not None:
                self.controller.memory.free_all()

    def _program_transfer(self, exchange: _Exchange, transfer: Transfer) -> int:
        """Registers 0x00-0x06 of a data command; the Transfer Mode value to write."""
        mode = TransferMode.BLOCK_COUNT_ENABLE
        if transfer.read:
            mode |= TransferMode.READ
            exchange.data = bytearray()
        if transfer.blocks > 1:
            mode |= TransferMode.MULTI
        if transfer.auto_cmd12:
            mode |= TransferMode.AUTO_CMD12
        if self.use_dma:
            mode |= TransferMode.DMA
            memory = self.controller.memory
            exchange.dma_address = memory.alloc(transfer.size)
            if not transfer.read:
                memory.write(exchange.dma_address, transfer.data)
            self.write(Offset.DMA_ADDRESS, 4, exchange.dma_address)
        self.write(Offset.BLOCK_SIZE, 2, make_block_size(transfer.block_size, SDMA_BOUNDARY))
        self.write(Offset.BLOCK_COUNT, 2, transfer.blocks)
        return int(mode)

    async def _service(self, exchange: _Exchange) -> None:
        """One interrupt: wait for the line, read and acknowledge 0x30, handle the bits."""
        await self.controller.wait_irq()
        status = self.read(Offset.INT_STATUS, 4)
        if not status:
            raise DriverError(f"{exchange.name}: IRQ line high with no interrupt status")
        self.write(Offset.INT_STATUS, 4, status)  # W1C, normal and error halves at once
        if status & NormalInt.CARD_REMOVE:
            raise CardRemovedError()
        if status & NormalInt.ERROR:
            errors = ErrorInt(status >> 16)
            auto_cmd = self.read(Offset.AUTO_CMD_STATUS, 2) if errors & ErrorInt.AUTO_CMD else 0
            raise BusError(exchange.name, errors, auto_cmd)
        if status & NormalInt.CMD_COMPLETE:
            self._command_complete(exchange)
        if status & NormalInt.DMA_INT:
            self._next_dma_address(exchange)
        if status & (NormalInt.BUF_RD_READY | NormalInt.BUF_WR_READY):
            self._pio(exchange)
        if status & NormalInt.XFER_COMPLETE:
            exchange.transfer_done = True

    def _next_dma_address(self, exchange: _Exchange) -> None:
        """SDMA paused at a boundary: give it the next boundary-aligned address (Linux
        computes it itself instead of reading 0x00 back, B.3 rule 11)."""
        now = exchange.dma_address + exchange.dma_done
        now = (now & ~(SDMA_BOUNDARY_BYTES - 1)) + SDMA_BOUNDARY_BYTES
        exchange.dma_done = now - exchange.dma_address
        self.write(Offset.DMA_ADDRESS, 4, now)

    def _pio(self, exchange: _Exchange) -> None:
        """Move whole blocks through the buffer data port while the controller says a
        block is ready (Linux ``sdhci_transfer_pio``)."""
        transfer = exchange.transfer
        assert transfer is not None, f"{exchange.name}: buffer interrupt without data"
        ready = PresentState.BUF_RD_ENABLE if transfer.read else PresentState.BUF_WR_ENABLE
        while (exchange.blocks_done < transfer.blocks
               and self.read(Offset.PRESENT_STATE, 4) & ready):
            if transfer.read:
                assert exchange.data is not None
                for _ in range(transfer.block_size // 4):
                    exchange.data += self.read(Offset.BUFFER, 4).to_bytes(4, "little")
            else:
                first = exchange.blocks_done * transfer.block_size
                block = transfer.data[first:first + transfer.block_size]
                for i in range(0, transfer.block_size, 4):
                    self.write(Offset.BUFFER, 4, int.from_bytes(block[i:i + 4], "little"))
            exchange.blocks_done += 1

    def _command_complete(self, exchange: _Exchange) -> None:
        """Read the response registers (B.4 "Finish"); check the card status."""
        exchange.command_done = True
        if exchange.resp is Resp.R2:
            words = [self.read(Offset.RESPONSE + 4 * i, 4) for i in range(4)]
            bits_127_8 = (words[0] | words[1] << 32 | words[2] << 64
                          | (words[3] & 0xFFFFFF) << 96)
            exchange.response = crc7_register(bits_127_8 << 8)  # CRC byte stripped by SDHCI
        elif exchange.resp is not Resp.NONE:
            exchange.response = self.read(Offset.RESPONSE, 4)
        if exchange.response & exchange.status_errors:
            raise CardStatusError(exchange.name, exchange.response, exchange.status_errors)

    def _complete(self, exchange: _Exchange) -> Completion:
        response = exchange.response
        transfer = exchange.transfer
        data = b""
        auto_response = None
        if transfer is not None:
            if transfer.read:
                data = (self.controller.memory.read(exchange.dma_address, transfer.size)
                        if self.use_dma else bytes(exchange.data or b""))
            if transfer.auto_cmd12:
                auto_response = self.read(_AUTO_CMD12_RESPONSE, 4)
        return Completion(response, data, auto_response)
