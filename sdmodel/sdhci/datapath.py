"""The controller's data circuit: blocks between the DAT lines and the host, by PIO through
the buffer data port or by SDMA into host memory (HCS 1.x "data transfer", 2.2.2, 2.2.8,
2.2.9; reference B.3 rules 8-12, Part C).

One :class:`Transfer` is latched from Block Size, Block Count, Transfer Mode and Host
Control when the data command is issued. :meth:`DataPath.run` then moves its blocks:

- read: wait for the block's start bit (data timeout), check its CRC16, then either hand
  it to the host through the buffer (Buffer Read Ready, wait until drained) or write it
  to host memory (SDMA);
- write: take a block from the host (Buffer Write Ready, wait until filled; or read host
  memory), send it, check the CRC status, wait for the busy to end (data timeout);
- after each block: Block Count counts down (with Block Count Enable); SDMA pauses with
  DMA Interrupt at each buffer boundary until the driver writes the next address; Stop
  At Block Gap pauses with Block Gap Event + Transfer Complete until Continue;
- after the last block: Auto CMD12 if enabled, then Transfer Complete.

A data error (timeout, CRC) stops the transfer and leaves DAT inhibit set: the driver
recovers with CMD12 and a DAT-line software reset (B.4 "error interrupt recovery").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from sdmodel.sdbus import SdBus
from sdmodel.sdhci.flags import AutoCmdError, ErrorInt, NormalInt, PresentState, TransferMode
from sdmodel.sdhci.memory import HostMemory
from sdmodel.tokens import CrcStatus, DataToken

__all__ = ["DataHost", "DataPath", "Transfer"]


class DataHost(Protocol):
    """What the data circuit needs from the rest of the controller."""

    bus: SdBus
    memory: HostMemory

    def peek(self, name: str) -> int: ...

    def hw_store(self, name: str, value: int) -> None: ...

    def signal(self, normal: int = 0, error: int = 0) -> None: ...

    def data_timeout_ps(self) -> int: ...

    def hold_dat(self, held: bool) -> None: ...

    async def auto_cmd12(self) -> bool: ...


@dataclass(frozen=True)
class Transfer:
    read: bool
    block_size: int
    blocks: int | None  # None: open-ended (multi-block without Block Count Enable)
    count_enable: bool
    dma: bool
    boundary: int  # SDMA buffer boundary in bytes (4 KiB << Block Size [14:12])
    auto_cmd12: bool
    auto_cmd23: bool

    @classmethod
    def latch(cls, mode: int, block_size: int, block_count: int) -> Transfer:
        """The transfer that Transfer Mode, Block Size and Block Count describe (HCS 2.2.2,
        2.2.3, 2.2.5): single block = 1; multiple = Block Count with Block Count Enable, else
        open-ended; a count or block size of 0 moves nothing. Auto CMD applies to multiple
        block transfers only; the reserved code 11 counts as off."""
        multi = bool(mode & TransferMode.MULTI)
        count_enable = bool(mode & TransferMode.BLOCK_COUNT_ENABLE)
        blocks: int | None = 1
        if multi:
            blocks = block_count if count_enable else None
        size = block_size & 0xFFF
        auto = mode & (TransferMode.AUTO_CMD12 | TransferMode.AUTO_CMD23) if multi else 0
        return cls(read=bool(mode & TransferMode.READ), block_size=size,
                   blocks=blocks if size else 0, count_enable=count_enable,
                   dma=bool(mode & TransferMode.DMA), boundary=4096 << (block_size >> 12 & 7),
                   auto_cmd12=auto == TransferMode.AUTO_CMD12,
                   auto_cmd23=auto == TransferMode.AUTO_CMD23)


class DataPath:
    def __init__(self, host: DataHost) -> None:
        self.host = host
        self.dat_active = False
        self.read_active = False
        self.write_active = False
        self.buf_rd_enable = False
        self.buf_wr_enable = False
        self.at_gap = False
        self.dma_paused = False
        self.running = False
        self._buffer = bytearray()
        self._pos = 0
        self._expect = 0  # bytes the host still has to write into the buffer
        self._buffer_done = asyncio.Event()  # drained (read) or filled (write)
        self._resume = asyncio.Event()  # SDMA address written / Continue at a block gap

    # --- state seen by the driver -----------------------------------------------------------

    def present_bits(self) -> int:
        bits = (
            (PresentState.DAT_ACTIVE, self.dat_active),
            (PresentState.READ_ACTIVE, self.read_active),
            (PresentState.WRITE_ACTIVE, self.write_active),
            (PresentState.BUF_RD_ENABLE, self.buf_rd_enable),
            (PresentState.BUF_WR_ENABLE, self.buf_wr_enable),
        )
        return sum(int(flag) for flag, on in bits if on)

    def reset(self) -> None:
        """DAT line software reset: buffer, counters and transfer state (HCS 2.2.16)."""
        self.dat_active = self.read_active = self.write_active = False
        self.buf_rd_enable = self.buf_wr_enable = False
        self.at_gap = self.dma_paused = self.running = False
        self._buffer = bytearray()
        self._pos = self._expect = 0
        self._buffer_done.clear()
        self._resume.clear()

    # --- the buffer data port (HCS 2.2.8) ---------------------------------------------------

    def _sequential(self, offset: int) -> bool:
        # QEMU: the byte lane must follow on from the previous access.
        return (offset & 3) == (self._pos & 3)

    def buffer_read(self, offset: int, width: int) -> tuple[int, str]:
        """The next ``width`` bytes of the block (little-endian), and a problem if the
        access was not allowed (it then reads 0 and moves nothing)."""
        if not self.buf_rd_enable:
            return 0, "BUFFER read while Buffer Read Enable is 0"
        if not self._sequential(offset):
            return 0, f"non-sequential BUFFER read at byte lane {offset & 3}"
        chunk = bytes(self._buffer[self._pos : self._pos + width])
        self._pos += width
        if self._pos >= len(self._buffer):
            self.buf_rd_enable = False
            self._buffer_done.set()
        return int.from_bytes(chunk.ljust(width, b"\0"), "little"), ""

    def buffer_write(self, offset: int, width: int, value: int) -> str:
        if not self.buf_wr_enable:
            return "BUFFER write while Buffer Write Enable is 0"
        if not self._sequential(offset):
            return f"non-sequential BUFFER write at byte lane {offset & 3}"
        take = min(width, self._expect - self._pos)
        self._buffer += value.to_bytes(width, "little")[:take]
        self._pos += width
        if self._pos >= self._expect:
            self.buf_wr_enable = False
            self._buffer_done.set()
        return ""

    async def _to_buffer(self, data: bytes) -> None:
        self._buffer, self._pos = bytearray(data), 0
        self._buffer_done.clear()
        self.buf_rd_enable = True
        self.host.signal(NormalInt.BUF_RD_READY)
        await self._buffer_done.wait()

    async def _from_buffer(self, size: int) -> bytes:
        self._buffer, self._pos, self._expect = bytearray(), 0, size
        self._buffer_done.clear()
        self.buf_wr_enable = True
        self.host.signal(NormalInt.BUF_WR_READY)
        await self._buffer_done.wait()
        return bytes(self._buffer)

    # --- resuming a paused transfer ---------------------------------------------------------

    def resume_dma(self) -> None:
        """The driver wrote DMA_ADDRESS byte 3: an SDMA transfer paused at a boundary goes on."""
        if self.dma_paused:
            self._resume.set()

    def continue_at_gap(self) -> None:
        """Continue Request (Block Gap Control bit 1)."""
        if self.at_gap:
            self._resume.set()

    async def _pause(self, normal: int) -> None:
        """Raise ``normal`` and wait for the matching resume (armed before the interrupt, so
        a handler that resumes at once is not lost)."""
        self._resume.clear()
        self.host.signal(normal)
        await self._resume.wait()

    # --- the bus side -----------------------------------------------------------------------

    def _deadline(self) -> int:
        return self.host.bus.clock.now + self.host.data_timeout_ps()

    def _fail(self, error: ErrorInt, transfer: Transfer | None) -> None:
        """Stop on a data error; DAT inhibit stays until the driver resets the DAT line."""
        self.dat_active = False
        self.running = False
        if transfer is not None and transfer.auto_cmd12:
            # HCS 2.2.23: Auto CMD12 could not be issued to stop the transfer.
            self.host.hw_store("AUTO_CMD_STATUS", AutoCmdError.NOT_EXECUTED)
            error |= ErrorInt.AUTO_CMD
        self.host.signal(error=error)

    async def _receive(self, size: int) -> bytes | ErrorInt:
        bus = self.host.bus
        data = await bus.read_block(deadline=self._deadline())
        if data is None:
            return ErrorInt.DATA_TIMEOUT  # no start bit before the timeout (rule 10)
        token = next((t for t in reversed(bus.trace.tokens)
                      if isinstance(t, DataToken) and not t.to_card), None)
        if len(data) != size or (token is not None and not token.crc_ok):
            return ErrorInt.DATA_CRC  # CRC16 wrong, or the block was not block_size long
        return data

    async def _send(self, data: bytes) -> ErrorInt | None:
        bus = self.host.bus
        status = await bus.write_block(data)
        if status is None:  # no CRC status token at all
            bus.clock.now = max(bus.clock.now, self._deadline())
            return ErrorInt.DATA_TIMEOUT
        if status is not CrcStatus.ACCEPTED:
            return ErrorInt.DATA_CRC
        return None

    async def _wait_busy(self) -> bool:
        return await self.host.bus.wait_busy(deadline=self._deadline())

    # --- transfers ----------------------------------------------------------------------------

    async def run(self, t: Transfer) -> None:
        """Move every block of ``t``; Transfer Complete at the end (rules 8, 9, 11, 12)."""
        host = self.host
        self.running = True
        if t.blocks == 0:  # Block Count Enable with a count of 0: nothing to move
            self._complete()
            return
        self.dat_active, self.read_active, self.write_active = True, t.read, not t.read
        address = host.peek("DMA_ADDRESS")
        done = 0
        while True:
            last = t.blocks is not None and done + 1 >= t.blocks
            move = self._read_block if t.read else self._write_block
            if not await move(t, address, last):
                return
            done += 1
            address += t.block_size
            if t.count_enable:
                host.hw_store("BLOCK_COUNT", (host.peek("BLOCK_COUNT") - 1) & 0xFFFF)
            if t.dma:
                host.hw_store("DMA_ADDRESS", address & 0xFFFFFFFF)
            if last:
                break
            if t.dma and address % t.boundary == 0:
                self.dma_paused = True  # rule 11: pause at the boundary, DMA Interrupt
                await self._pause(NormalInt.DMA_INT)
                self.dma_paused = False
                address = host.peek("DMA_ADDRESS")
            if host.peek("BLOCK_GAP_CONTROL") & 1:
                await self._stop_at_gap(t)
        if not t.read:
            self.dat_active = False  # busy of the last block is over
            if t.auto_cmd12 and not await self._auto_cmd12():
                return
        self._complete()

    async def _read_block(self, t: Transfer, address: int, last: bool) -> bool:
        """One block from the card to the buffer or host memory; Auto CMD12 goes out as
        soon as the last block is in (before the driver drains it)."""
        data = await self._receive(t.block_size)
        if isinstance(data, ErrorInt):
            self._fail(data, t)
            return False
        if last:
            self.dat_active = False  # end bit of the last block
            if t.auto_cmd12 and not await self._auto_cmd12():
                return False
        if t.dma:
            self.host.memory.write(address, data)
        else:
            await self._to_buffer(data)
        return True

    async def _write_block(self, t: Transfer, address: int, last: bool) -> bool:
        """One block from the buffer or host memory to the card, through its busy."""
        if t.dma:
            data = self.host.memory.read(address, t.block_size)
        else:
            data = await self._from_buffer(t.block_size)
        error = await self._send(data)
        if last:
            self.write_active = False  # CRC status of the last block
        if error is None and not await self._wait_busy():
            error = ErrorInt.DATA_TIMEOUT
        if error is not None:
            self._fail(error, t)
            return False
        return True

    async def _auto_cmd12(self) -> bool:
        self.dat_active = True  # the CMD12 busy holds DAT0
        ok = await self.host.auto_cmd12() and await self._wait_busy()
        self.dat_active = False
        if not ok:
            self.running = False
            if not self.host.peek("AUTO_CMD_STATUS"):
                self.host.signal(error=ErrorInt.DATA_TIMEOUT)  # the CMD12 busy outlasted it
        return ok

    async def _stop_at_gap(self, t: Transfer) -> None:
        """HCS 2.2.12: stopped at the gap the transfer looks finished (Block Gap Event and
        Transfer Complete, DAT inhibit released) until Continue Request."""
        self.dat_active = self.read_active = self.write_active = False
        self.at_gap = True
        self.host.hold_dat(False)
        await self._pause(NormalInt.BLOCK_GAP | NormalInt.XFER_COMPLETE)
        self.at_gap = False
        self.host.hold_dat(True)
        self.dat_active, self.read_active, self.write_active = True, t.read, not t.read

    def _complete(self) -> None:
        self.dat_active = self.read_active = self.write_active = False
        self.running = False
        self.host.hold_dat(False)
        self.host.signal(NormalInt.XFER_COMPLETE)

    async def busy(self) -> None:
        """R1b without data: DAT inhibit until the busy ends, then Transfer Complete
        (rule 6); a busy longer than the data timeout -> Data Timeout (rule 10)."""
        self.dat_active = True
        released = await self._wait_busy()
        self.dat_active = False
        if not released:
            self.host.signal(error=ErrorInt.DATA_TIMEOUT)
            return
        self.host.hold_dat(False)
        self.host.signal(NormalInt.XFER_COMPLETE)
