"""The command circuit: issue, inhibit bits, responses, Auto CMD12/CMD23, and the hand-off
to the data circuit (HCS 2.2.6, 2.2.7, 2.2.9, 2.2.16, 3.7; reference B.3 rules 5-7, 12).

- Writing the Command register's byte 0x0F issues the command, unless the SD clock is off,
  Command Inhibit (CMD) is set, or Command Inhibit (DAT) is set and the command has data
  or R1b busy and is not an abort: then the write is ignored and the trace gets a
  warning finding (rule 5; QEMU ``sdhci_can_issue_command`` for the clock).
- CMD inhibit is set from the issue to the response end; DAT inhibit from the issue of a
  data or R1b command until Transfer Complete.
- The response goes to the Response register before Command Complete; a timeout raises no
  Command Complete, other command errors come with it (rule 6). A failed command starts
  no data phase and frees DAT inhibit.
- An abort command (type 11) stops a running transfer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from sdmodel.sdbus import SdBus
from sdmodel.sdhci.command import auto_cmd_errors, exchange
from sdmodel.sdhci.datapath import DataPath, Transfer
from sdmodel.sdhci.flags import (
    CmdType,
    ErrorInt,
    HostControl,
    NormalInt,
    PresentState,
    RespSelect,
    data_timeout_ps,
)
from sdmodel.sdhci.memory import HostMemory

__all__ = ["CommandEngine", "EngineHost"]

_R48_MASK = 0xFFFFFFFF
_AUTO_SHIFT = 96  # Auto CMD12/CMD23 response in RESPONSE[127:96]


class EngineHost(Protocol):
    """What the command circuit needs from the controller."""

    bus: SdBus
    memory: HostMemory
    timeout_clock_hz: int

    def signal(self, normal: int = 0, error: int = 0) -> None: ...

    def finding(self, code: str, message: str) -> None: ...

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    @property
    def clock_running(self) -> bool: ...


@dataclass(frozen=True)
class _Request:
    """A command as latched from the registers when it was issued."""

    index: int
    arg: int
    resp: RespSelect
    crc_check: bool
    index_check: bool
    transfer: Transfer | None  # the data phase, if Data Present
    dat_generation: int  # DAT-line resets so far: a later reset cancels the data phase

    @property
    def uses_dat(self) -> bool:
        return self.transfer is not None or self.resp is RespSelect.R48_BUSY


class CommandEngine:
    def __init__(self, host: EngineHost, regs: MutableMapping[str, int]) -> None:
        self.host = host
        self.bus = host.bus
        self.memory = host.memory
        self.regs = regs  # the controller's register values (shared)
        self.data = DataPath(self)
        self.cmd_inhibit = False
        self.dat_inhibit = False
        self._dat_generation = 0
        self._cmd_task: asyncio.Task[None] | None = None
        self._data_task: asyncio.Task[None] | None = None

    def present_bits(self) -> int:
        flags = ((PresentState.CMD_INHIBIT, self.cmd_inhibit),
                 (PresentState.DAT_INHIBIT, self.dat_inhibit))
        return self.data.present_bits() | sum(int(flag) for flag, on in flags if on)

    # --- issue --------------------------------------------------------------------------------

    def _issue_problem(self, uses_dat: bool, abort: bool) -> str:
        if not self.host.clock_running:
            return "the SD clock is off"
        if self.cmd_inhibit:
            return "Command Inhibit (CMD) is set"
        if uses_dat and self.dat_inhibit and not abort:
            return "Command Inhibit (DAT) is set"
        return ""

    def issue(self) -> None:
        """Byte 0x0F of the Command register was written."""
        regs = self.regs
        command = regs["COMMAND"]
        index, resp = command >> 8 & 0x3F, RespSelect(command & 0b11)
        data = bool(command & 0x20)
        abort = command >> 6 & 0b11 == CmdType.ABORT
        uses_dat = data or resp is RespSelect.R48_BUSY
        problem = self._issue_problem(uses_dat, abort)
        if problem:
            self.host.finding("sdhci_command_ignored", f"CMD{index} not issued: {problem}")
            return
        if abort or (data and self.data.at_gap):
            self.stop_data()  # an abort ends the running transfer (HCS 3.8)
            self.dat_inhibit = False
        transfer = Transfer.latch(regs["TRANSFER_MODE"], regs["BLOCK_SIZE"],
                                  regs["BLOCK_COUNT"]) if data else None
        request = _Request(index, regs["ARGUMENT"], resp, bool(command & 0x08),
                           bool(command & 0x10), transfer, self._dat_generation)
        self.cmd_inhibit = True
        self.dat_inhibit = self.dat_inhibit or uses_dat
        self._cmd_task = self.host.spawn(self._run(request))

    async def _run(self, req: _Request) -> None:
        if req.transfer is not None and req.transfer.auto_cmd23:
            # v3.00: Argument 2 shares 0x00 with the SDMA address.
            if not await self._auto_command(23, self.regs["DMA_ADDRESS"]):
                self._end(req, ErrorInt(0), complete=False)
                return
        result = await exchange(self.bus, req.index, req.arg, req.resp,
                                crc_check=req.crc_check, index_check=req.index_check)
        if result.response is not None:  # rule 7: before Command Complete
            if req.resp is RespSelect.R136:
                self.regs["RESPONSE"] = result.response  # R2 127:8 in 119:0; 127:120 = 0
            else:
                self.regs["RESPONSE"] = self.regs["RESPONSE"] & ~_R48_MASK | result.response
        self._end(req, result.errors, complete=not result.errors & ErrorInt.CMD_TIMEOUT)
        if result.errors or req.dat_generation != self._dat_generation:
            return
        if req.transfer is not None:
            if req.transfer.dma and self.regs["HOST_CONTROL"] & HostControl.DMA_SELECT:
                self.regs["ADMA_ERROR"] = 0b01  # ST_FDS: no ADMA, no descriptor fetched
                self.host.signal(error=ErrorInt.ADMA)
                return
            self._data_task = self.host.spawn(self.data.run(req.transfer))
        elif req.resp is RespSelect.R48_BUSY:
            self._data_task = self.host.spawn(self.data.busy())

    def _end(self, req: _Request, errors: ErrorInt, *, complete: bool) -> None:
        """CMD inhibit off at the response end; a failed command frees the DAT line too."""
        self.cmd_inhibit = False
        failed = bool(errors) or not complete
        if failed and req.uses_dat and req.dat_generation == self._dat_generation:
            self.dat_inhibit = False
        self.host.signal(NormalInt.CMD_COMPLETE if complete else 0, errors)

    async def _auto_command(self, index: int, arg: int) -> bool:
        """Auto CMD12 / Auto CMD23 with CRC and index checks: response in RESPONSE[127:96],
        errors in Auto CMD Error Status + Auto CMD Error (rule 12)."""
        self.regs["AUTO_CMD_STATUS"] = 0
        resp = RespSelect.R48_BUSY if index == 12 else RespSelect.R48
        result = await exchange(self.bus, index, arg, resp, crc_check=True, index_check=True)
        if result.response is not None:
            self.regs["RESPONSE"] = (self.regs["RESPONSE"] & ~(_R48_MASK << _AUTO_SHIFT)
                                     | result.response << _AUTO_SHIFT)
        bits = auto_cmd_errors(result.errors)
        if bits:
            self.regs["AUTO_CMD_STATUS"] = bits
            self.host.signal(error=ErrorInt.AUTO_CMD)
        return not bits

    # --- the data circuit's host (datapath.DataHost) -----------------------------------------

    def peek(self, name: str) -> int:
        return self.regs[name]

    def hw_store(self, name: str, value: int) -> None:
        self.regs[name] = value

    def signal(self, normal: int = 0, error: int = 0) -> None:
        self.host.signal(normal, error)

    def data_timeout_ps(self) -> int:
        """TMCLK x 2^(13 + Timeout Control [3:0]) in picoseconds (HCS 2.2.15)."""
        return data_timeout_ps(self.regs["TIMEOUT_CONTROL"], self.host.timeout_clock_hz)

    def hold_dat(self, held: bool) -> None:
        self.dat_inhibit = held

    async def auto_cmd12(self) -> bool:
        return await self._auto_command(12, 0)

    # --- software reset (HCS 2.2.16) ----------------------------------------------------------

    def reset_cmd(self) -> list[asyncio.Task[None]]:
        """CMD line reset: the command in flight is dropped, CMD inhibit cleared."""
        stopped = _cancel(self._cmd_task)
        self._cmd_task = None
        self.cmd_inhibit = False
        return stopped

    def reset_data(self) -> list[asyncio.Task[None]]:
        """DAT line reset: the transfer in flight is dropped, DAT inhibit cleared."""
        stopped = self.stop_data()
        self.dat_inhibit = False
        return stopped

    def stop_data(self) -> list[asyncio.Task[None]]:
        """Stop the data circuit: cancel its task, empty the buffer, clear its state; a
        command still waiting for its response will not start its data phase."""
        stopped = _cancel(self._data_task)
        self._data_task = None
        self.data.reset()
        self._dat_generation += 1
        return stopped


def _cancel(task: asyncio.Task[None] | None) -> list[asyncio.Task[None]]:
    if task is None or task.done():
        return []
    task.cancel()
    return [task]
