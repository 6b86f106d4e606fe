"""The SD Host Controller: register file, IRQ line and trace, around the command circuit
(:mod:`.engine`), the data circuit (:mod:`.datapath`) and the slot (:mod:`.slot`)
(HCS v3.00 chapters 2-3; reference Part B).

The driver talks to it only through ``read``/``write`` of the register window and the IRQ
line. Writing the Command register's upper byte starts the command as an asyncio task on
the :class:`SdBus`; the caller never blocks. Every register access is a
:class:`RegisterEvent` (IRQ edges and findings it causes follow it) and every IRQ level
change an :class:`IrqEvent` in the trace.

Register semantics come from the field table: RW/RWAC fields take writes, RO/ROC/HWInit
ignore them, reserved bits read 0, WO registers read 0 (their access events show the
written value as "new"). Choices where the reference is silent (QEMU ``hw/sd/sdhci.c``):
Transfer Mode writes are ignored while DAT inhibit is set, Block Size/Count writes while
a transfer runs; a Software Reset bit reads 1 until the work it cancelled has ended.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from sdmodel.events import EmitterGroup
from sdmodel.sdbus import SdBus
from sdmodel.sdhci.engine import CommandEngine
from sdmodel.sdhci.flags import SPEC_VERSION_300, AutoCmdError, ErrorInt, NormalInt, SoftwareReset
from sdmodel.sdhci.interrupts import Interrupts, pending_names
from sdmodel.sdhci.memory import HostMemory, HostMemoryError
from sdmodel.sdhci.regfile import Piece, check_access, merge_write, pieces
from sdmodel.sdhci.registers import REG, REGISTERS, Access, Offset, capabilities_value
from sdmodel.sdhci.slot import Slot
from sdmodel.sdhci.tasks import TaskSet
from sdmodel.tokens import FindingToken, Line, Token
from sdmodel.trace import IrqEvent, RegisterEvent, Trace

__all__ = ["SdhciController", "HostMemory", "HostMemoryError"]

# HCS 2.2.16: status bits of the data circuit that a DAT-line reset clears.
_DATA_STATUS = (NormalInt.XFER_COMPLETE | NormalInt.BLOCK_GAP | NormalInt.DMA_INT
                | NormalInt.BUF_WR_READY | NormalInt.BUF_RD_READY)
_AUTO_CMD_ERRORS = (AutoCmdError.NOT_EXECUTED | AutoCmdError.TIMEOUT | AutoCmdError.CRC
                    | AutoCmdError.END_BIT | AutoCmdError.INDEX)
_ENABLES = ("INT_ENABLE", "ERR_INT_ENABLE", "SIGNAL_ENABLE", "ERR_SIGNAL_ENABLE")
_BUFFER = range(Offset.BUFFER, Offset.BUFFER + 4)


class SdhciController:
    def __init__(self, bus: SdBus, *, memory: HostMemory | None = None,
                 base_clock_hz: int = 50_000_000, timeout_clock_hz: int = 1_000_000,
                 trace: Trace | None = None) -> None:
        self.bus = bus
        self.memory = memory if memory is not None else HostMemory()
        self.trace = trace if trace is not None else bus.trace
        self.base_clock_hz = base_clock_hz
        self.timeout_clock_hz = timeout_clock_hz
        self.events = EmitterGroup("irq", "register")
        self._hwinit = {"CAPABILITIES": capabilities_value(base_clock_hz, timeout_clock_hz),
                        "HOST_VERSION": SPEC_VERSION_300}
        self._regs: dict[str, int] = {}
        self._ints = Interrupts()
        self._resetting = 0  # Software Reset bits still in progress
        self._work = TaskSet()
        self._irq_level = False
        self._irq_high = asyncio.Event()
        self._deferred = 0  # > 0 while a register access is applied
        self._after_access: list[Token] = []
        self._reset_registers()
        self._slot = Slot(bus, self._regs, self.signal, base_clock_hz)
        self._engine = CommandEngine(self, self._regs)
        self._data = self._engine.data
        self._writers: dict[str, Callable[[int, int], None]] = {
            "DMA_ADDRESS": self._w_dma_address,
            "BLOCK_SIZE": functools.partial(self._w_block, "BLOCK_SIZE"),
            "BLOCK_COUNT": functools.partial(self._w_block, "BLOCK_COUNT"),
            "TRANSFER_MODE": self._w_transfer_mode,
            "COMMAND": self._w_command,
            "HOST_CONTROL": self._w_host_control,
            "POWER_CONTROL": self._w_power_control,
            "BLOCK_GAP_CONTROL": self._w_block_gap,
            "CLOCK_CONTROL": self._w_clock_control,
            "SOFTWARE_RESET": self._w_software_reset,
            "INT_STATUS": self._w_int_status,
            "ERR_INT_STATUS": self._w_err_int_status,
            **{name: functools.partial(self._w_enable, name) for name in _ENABLES},
            "SET_ACMD12_ERROR": self._w_force_auto_cmd,
            "SET_INT_ERROR": self._w_force_error,
        }
        self._readers: dict[str, Callable[[], int]] = {
            "PRESENT_STATE": lambda: self._engine.present_bits() | self._slot.present_bits(),
            "INT_STATUS": lambda: self._ints.normal_status,
            "ERR_INT_STATUS": lambda: self._ints.error,
            "CLOCK_CONTROL": lambda: self._slot.clock_control(),
            "SOFTWARE_RESET": lambda: self._resetting,
            "SLOT_INT_STATUS": lambda: int(self._ints.line),
            "BUFFER": lambda: 0,  # the port has no value of its own; reads consume data
        }

    # --- register access --------------------------------------------------------------------

    def read(self, offset: int, width: int) -> int:
        """A driver read of ``width`` bytes (1, 2 or 4) at ``offset``."""
        check_access(offset, width)
        problem = ""
        if offset in _BUFFER:
            value, problem = self._data.buffer_read(offset, width)
        else:
            value = self._peek_access(offset, width)
        self._record(offset, width, value, value, "read", problem)
        return value

    def write(self, offset: int, width: int, value: int) -> None:
        """A driver write of ``width`` bytes (1, 2 or 4) at ``offset``."""
        check_access(offset, width)
        value &= (1 << (8 * width)) - 1
        old = self._peek_access(offset, width)
        self._deferred += 1
        try:
            problem = ""
            if offset in _BUFFER:
                problem = self._data.buffer_write(offset, width, value)
                new = value
            else:
                parts = list(pieces(offset, width))
                for piece in parts:
                    self._write_piece(piece, value)
                write_only = parts and all(p.reg.access is Access.WO for p in parts)
                new = value if write_only else self._peek_access(offset, width)
        finally:
            self._deferred -= 1
        self._record(offset, width, old, new, "write", problem)

    def peek(self, name: str) -> int:
        """A register's current value by name, without an access event or side effect
        (for views; the buffer port reads 0)."""
        reg = REG[name]
        reader = self._readers.get(reg.name)
        return reader() if reader is not None else self._regs[reg.name]

    def _peek_access(self, offset: int, width: int) -> int:
        return sum(p.to_access(self.peek(p.reg.name)) for p in pieces(offset, width))

    def _write_piece(self, piece: Piece, value: int) -> None:
        reg_value, mask = piece.from_access(value), piece.reg_mask
        writer = self._writers.get(piece.reg.name)
        if writer is not None:
            writer(reg_value, mask)
        else:
            self._store(piece.reg.name, reg_value, mask)

    def _store(self, name: str, value: int, mask: int) -> None:
        self._regs[name] = merge_write(REG[name], self._regs[name], value, mask)

    # --- trace ----------------------------------------------------------------------------------

    def _record(self, offset: int, width: int, old: int, new: int, access: str,
                problem: str) -> None:
        names = "+".join(p.reg.name for p in pieces(offset, width)) or f"0x{offset:02X}"
        now, period = self.bus.clock.now, self.bus.clock.period
        event = RegisterEvent(now, now, period, reg=names, offset=offset, width=width, old=old,
                              new=new, access=access)
        self.trace.append(event)
        self.events.register.emit(event)
        if problem:
            self.finding("sdhci_buffer_access", problem)
        for token in self._after_access:
            self.trace.append(token)
        self._after_access.clear()
        self._update_irq()

    def finding(self, code: str, message: str) -> None:
        now = self.bus.clock.now
        token = FindingToken(now, now, self.bus.clock.period, code=code, message=message,
                             severity="warning", finding_line=Line.HOST)
        if self._deferred:
            self._after_access.append(token)
        else:
            self.trace.append(token)

    # --- interrupts (B.3 rules 1-4) -----------------------------------------------------------

    def signal(self, normal: int = 0, error: int = 0) -> None:
        """Events happened: latch the enabled ones and update the IRQ line."""
        self._ints.latch(normal, error)
        self._update_irq()

    @property
    def irq(self) -> bool:
        return self._irq_level

    async def wait_irq(self) -> None:
        """Return when the IRQ line is high (at once if it is)."""
        while not self._irq_level:
            await self._irq_high.wait()

    def _update_irq(self) -> None:
        if self._deferred:
            return  # after the access event, in _record
        level = self._ints.line
        if level == self._irq_level:
            return
        self._irq_level = level
        now = self.bus.clock.now
        status = self._ints.status32
        self.trace.append(IrqEvent(now, now, self.bus.clock.period, level=int(level),
                                   status=status, bits=pending_names(self._ints.pending)))
        if level:
            self._irq_high.set()
        else:
            self._irq_high.clear()
        self.events.irq.emit(level, status)

    def _w_int_status(self, value: int, mask: int) -> None:
        self._ints.clear(normal=value & mask & REG["INT_STATUS"].mask_of(Access.RW1C))

    def _w_err_int_status(self, value: int, mask: int) -> None:
        self._ints.clear(error=value & mask & REG["ERR_INT_STATUS"].mask_of(Access.RW1C))

    def _w_enable(self, name: str, value: int, mask: int) -> None:
        self._store(name, value, mask)
        regs = self._regs
        self._ints.set_enables(regs["INT_ENABLE"], regs["ERR_INT_ENABLE"])
        self._ints.set_signals(regs["SIGNAL_ENABLE"], regs["ERR_SIGNAL_ENABLE"])
        self._update_irq()

    def _w_force_auto_cmd(self, value: int, mask: int) -> None:
        bits = value & mask & REG["SET_ACMD12_ERROR"].mask_of(Access.WO)
        self._regs["AUTO_CMD_STATUS"] |= bits
        if bits & _AUTO_CMD_ERRORS:
            self.signal(error=ErrorInt.AUTO_CMD)  # HCS 2.2.23: bits 4:0 raise Auto CMD Error

    def _w_force_error(self, value: int, mask: int) -> None:
        self.signal(error=value & mask & REG["SET_INT_ERROR"].mask_of(Access.WO))

    # --- slot (sdmodel.sdhci.slot) ---------------------------------------------------------

    @property
    def card_present(self) -> bool:
        """A card sits in the slot (the card-detect pin)."""
        return self._slot.card_in

    def insert_card(self) -> None:
        self._slot.insert()

    def remove_card(self) -> None:
        self._slot.remove()

    def _w_power_control(self, value: int, mask: int) -> None:
        self._store("POWER_CONTROL", value, mask)
        self._slot.power_written()

    def _w_clock_control(self, value: int, mask: int) -> None:
        self._store("CLOCK_CONTROL", value, mask)
        self._slot.clock_written()

    def _w_host_control(self, value: int, mask: int) -> None:
        self._store("HOST_CONTROL", value, mask)
        self._slot.host_control_written()

    @property
    def clock_running(self) -> bool:
        """Internal clock and SD clock enabled: commands can go out."""
        return self._slot.clock_running

    def data_timeout_ps(self) -> int:
        """The data timeout now in force, TMCLK x 2^(13 + Timeout Control [3:0])."""
        return self._engine.data_timeout_ps()

    def _w_command(self, value: int, mask: int) -> None:
        self._store("COMMAND", value, mask)
        if mask & 0xFF00:  # the write of byte 0x0F issues the command
            self._engine.issue()

    # --- data-related registers ---------------------------------------------------------------

    def _w_dma_address(self, value: int, mask: int) -> None:
        self._store("DMA_ADDRESS", value, mask)
        if mask & 0xFF000000:
            self._data.resume_dma()  # rule 11: the top byte restarts a paused SDMA

    def _w_block(self, name: str, value: int, mask: int) -> None:
        if not self._data.running:  # QEMU: fixed while a transfer runs
            self._store(name, value, mask)

    def _w_transfer_mode(self, value: int, mask: int) -> None:
        if not self._engine.dat_inhibit:
            self._store("TRANSFER_MODE", value, mask)

    def _w_block_gap(self, value: int, mask: int) -> None:
        self._store("BLOCK_GAP_CONTROL", value, mask)
        if self._regs["BLOCK_GAP_CONTROL"] & 0b10:
            self._regs["BLOCK_GAP_CONTROL"] &= ~0b10  # Continue Request clears itself
            self._data.continue_at_gap()

    # --- software reset (HCS 2.2.16; B.3 rule 14) ----------------------------------------------

    def _w_software_reset(self, value: int, mask: int) -> None:
        bits = SoftwareReset(value & mask & 0b111)
        stopped: list[asyncio.Task[None]] = []
        if bits & (SoftwareReset.ALL | SoftwareReset.CMD):
            stopped += self._engine.reset_cmd()
            self._ints.clear(normal=NormalInt.CMD_COMPLETE)
        if bits & (SoftwareReset.ALL | SoftwareReset.DATA):
            stopped += self._engine.reset_data()
            self._ints.clear(normal=_DATA_STATUS)
        if bits & SoftwareReset.ALL:
            self._reset_registers()
            self._slot.reset_all()
        self._update_irq()
        if stopped:
            self._resetting |= bits  # reads back 1 until the cancelled work has ended
            self.spawn(self._finish_reset(bits, stopped))

    async def _finish_reset(self, bits: int, stopped: list[asyncio.Task[None]]) -> None:
        await asyncio.wait(stopped)
        self._resetting &= ~bits

    def _reset_registers(self) -> None:
        """Every register to its reset value; HWInit registers keep theirs."""
        self._regs.update({r.name: self._hwinit.get(r.name, 0) for r in REGISTERS})
        self._ints.reset()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run controller work in the background (for the command and data circuits)."""
        return self._work.spawn(work)

    async def idle(self) -> None:
        """Until no command, data or reset work is in flight; re-raises a failure of that
        work (e.g. SDMA outside host memory). A PIO transfer waits for the driver."""
        await self._work.idle()
