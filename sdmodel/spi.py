"""SPI-mode framing of the SD card: bytes on MOSI/MISO over the same card core.

Physical Layer spec chapter 7 (reference Part 2 A). SPI mode 0, MSB first, one MISO byte
per MOSI byte while CS# is low. :class:`~sdmodel.card.Card` decides what a command does;
this module turns it into bytes: N_CR fill, R1/R1b/R2/R3/R7, N_AC fill while storage reads,
start token + block + CRC16, data response and busy after a written block (A.3, A.5, A.7).

Storage never blocks the framing (Part C): ``exchange_byte`` only checks whether the card's
storage work is done (the task reading the next block, the busy of a programming block)
and answers 0xFF (read pending) or 0x00 (busy) until it is. Use the framing on the event
loop that owns the card; ``transfer`` also lets that loop run while the card waits.
``BlockingSpiCard`` (in :mod:`sdmodel.spi_blocking`) wraps it for blocking SPI drivers.

    spi = SpiCard(card)
    spi.select(True)
    miso = await spi.transfer(command_frame(0, 0) + b"\\xff\\xff")   # ... 0xFF, R1 0x01
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

from sdmodel.card import Card, Reply
from sdmodel.clock import SimClock
from sdmodel.commands import DataDir, command_name
from sdmodel.crc import crc7_ok, crc16
from sdmodel.dataphase import ReadPhase, ReadResult
from sdmodel.registers import CardStatus, spi_data_error_token_from_card_status
from sdmodel.states import CardState
from sdmodel.tokens import CrcStatus, SpiToken
from sdmodel.trace import StateEvent, Trace

if TYPE_CHECKING:
    from sdmodel.spi_blocking import BlockingSpiCard

__all__ = [
    "SpiCard",
    "BlockingSpiCard",
    "ControlToken",
    "DATA_RESPONSE",
    "FILL",
    "BUSY",
    "CMD_BYTES",
    "POLL_S",
]

FILL = 0xFF  # DO idles high; the host sends 0xFF when it only reads (A.1, A.6 item 1)
BUSY = 0x00  # DO held low while programming (A.3 R1b, A.5)
CMD_BYTES = 6  # 0x40|index, argument, CRC7 + end bit (A.2)
CLOCKS_PER_BYTE = 8
POLL_S = 0.001  # longest ``transfer`` lets the loop run per byte the card spends waiting


class ControlToken(IntEnum):
    """Control tokens before a data block, §7.3.3.2 (reference A.5)."""

    START_BLOCK = 0xFE  # every read block; a CMD24/27/42/56 write block
    START_BLOCK_MULTI = 0xFC  # each block of CMD25
    STOP_TRAN = 0xFD  # ends CMD25; no data follows


# Data response token xxx0sss1 after a written block, §7.3.3.1 (A.5): sss is the SD-mode CRC
# status; the upper bits are 000 (A.6 item 6: Adafruit tests bit 7).
DATA_RESPONSE: dict[CrcStatus, int] = {
    CrcStatus.ACCEPTED: 0x05,
    CrcStatus.CRC_ERROR: 0x0B,
    CrcStatus.WRITE_ERROR: 0x0D,
}


def __getattr__(name: str) -> Any:
    # The blocking facade lives in its own module; ``from sdmodel.spi import BlockingSpiCard``
    # imports it lazily (PEP 562) so neither module imports the other at load time.
    if name == "BlockingSpiCard":
        from sdmodel.spi_blocking import BlockingSpiCard

        return BlockingSpiCard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _bytes_for(clocks: int) -> int:
    """At least one whole byte covering ``clocks`` SPI clocks."""
    return max(1, -(-clocks // CLOCKS_PER_BYTE))


class _Rx(Enum):
    """What the card does with the next MOSI byte."""

    LISTEN = "listen"  # look for a command start (01xxxxxx) or, in a write, a token
    COMMAND = "command"  # collecting the 6 command bytes
    BLOCK = "block"  # collecting a written block and its CRC16


@dataclass
class _Read:
    """The card side of a read data phase: N_AC fill, then token + block + CRC16."""

    index: int  # the command that started it (18: open-ended until CMD12)
    phase: ReadPhase
    task: asyncio.Task[ReadResult] | None
    gap: int  # 0xFF bytes still owed before the next token (N_AC >= 1)
    block: bytes = b""  # token + data + CRC16 being sent
    pos: int = 0

    @property
    def sending(self) -> bool:
        return self.pos < len(self.block)


@dataclass
class _Write:
    """A write data phase waiting for start tokens from the host (A.5)."""

    multi: bool  # CMD25: 0xFC blocks and 0xFD; otherwise one 0xFE block
    length: int  # bytes per block (512; 16 for CMD27; the block length for CMD42/56)
    block: bytearray = field(default_factory=bytearray)

    def starts_block(self, byte: int) -> bool:
        wanted = ControlToken.START_BLOCK_MULTI if self.multi else ControlToken.START_BLOCK
        return byte == wanted


class SpiCard:
    """SPI-mode framing of ``card``: ``select`` CS#, then ``exchange_byte`` per SPI byte.

    With a ``trace``, each run of bytes with one meaning becomes an :class:`SpiToken`
    (``what``: cmd, rsp, data, data_error, stop_tran, data_response, busy, fill,
    deselected), 8 clocks per byte on ``clock``.
    """

    def __init__(self, card: Card, trace: Trace | None = None,
                 clock: SimClock | None = None) -> None:
        self.card = card
        self.trace = trace
        self.clock = clock if clock is not None else SimClock()
        self.selected = False  # CS# low
        self._rx = _Rx.LISTEN
        self._cmd = bytearray()
        self._out: deque[tuple[int, str]] = deque()  # fixed MISO bytes due next, with meaning
        self._busy = False  # after the queued bytes: 0x00 while programming, then 0xFF
        self._busy_owed = 0  # nominal busy bytes still owed when storage answered at once
        self._read: _Read | None = None
        self._write: _Write | None = None
        self._ready_task: asyncio.Task[None] | None = None
        # trace: the run being collected and what the current byte adds to it
        self._run: SpiToken | None = None
        self._run_mosi = bytearray()  # bytes of the run in progress (joined at flush)
        self._run_miso = bytearray()
        self._byte_info: dict[str, Any] = {}
        self._byte_starts_run = False
        if trace is not None:
            card.events.state.connect(self._on_state)

    # --- timing options (CardTiming, reference A.2 / A.5 table) ----------------------------

    @property
    def n_cr(self) -> int:
        return max(1, self.card.options.timing.spi_n_cr)

    @property
    def n_ac(self) -> int:
        return max(1, self.card.options.timing.spi_n_ac)

    # --- host side -------------------------------------------------------------------------

    def select(self, asserted: bool) -> None:
        """Drive CS# (``asserted`` = low). A CS# edge ends the trace run in progress."""
        if asserted != self.selected:
            self.flush_trace()
        self.selected = asserted

    def exchange_byte(self, mosi: int) -> int:
        """One SPI byte: the card samples ``mosi`` while it shifts out the returned byte.

        Never blocks. Bytes clocked with CS# high are not seen by the card (A.6 item 5) and
        read 0xFF (DO released)."""
        mosi &= 0xFF
        if not self.selected:
            self._record("deselected", mosi, FILL)
            return FILL
        miso, meaning = self._produce()
        # A byte is one unit: the host's (a command, a written block) when MOSI carries
        # one, else what the card drives. What the other side began (a read block that
        # starts under CMD12) neither splits the host's run nor adds its info to it.
        driven = self._byte_info, self._byte_starts_run
        self._byte_info, self._byte_starts_run = {}, False
        received = self._consume(mosi, meaning)
        if received is None:
            self._byte_info, self._byte_starts_run = driven
        self._record(received or meaning, mosi, miso)
        return miso

    def exchange(self, mosi: bytes | bytearray | memoryview) -> bytes:
        """Full duplex without yielding: storage work cannot progress during the call."""
        return bytes(self.exchange_byte(b) for b in bytes(mosi))

    async def transfer(self, mosi: bytes | bytearray | memoryview, *,
                       poll_s: float = POLL_S) -> bytes:
        """Full duplex, letting the event loop run (at most ``poll_s`` per byte) after each
        byte the card spends waiting for storage, so a read or a write can complete."""
        out = bytearray()
        for byte in bytes(mosi):
            out.append(self.exchange_byte(byte))
            waiting = self.waiting_on()
            if waiting is not None:
                await asyncio.wait((waiting,), timeout=poll_s)
        return bytes(out)

    def waiting_on(self) -> asyncio.Future[Any] | None:
        """What the card is waiting for now (a storage read, or programming), if anything."""
        read = self._read
        if read is not None and not read.sending and read.task is not None \
                and not read.task.done():
            return read.task
        if self._busy and self._programming():
            if self._ready_task is None or self._ready_task.done():
                self._ready_task = asyncio.ensure_future(self.card.wait_ready())
                self._ready_task.add_done_callback(_swallow)
            return self._ready_task
        return None

    def close(self) -> None:
        """Stop waiting for storage (the card and its storage stay open)."""
        self._end_read()
        if self._ready_task is not None:
            self._ready_task.cancel()
        self.flush_trace()

    def _programming(self) -> bool:
        """Busy until the card has left prg: ``card.busy`` ends with the storage task, and
        prg -> tran follows in that task's done callback."""
        return self.card.busy or self.card.state is CardState.PRG

    # --- MISO: what the card drives --------------------------------------------------------

    def _produce(self) -> tuple[int, str]:
        if self._out:
            return self._out.popleft()
        if self._busy:
            if self._busy_owed or self._programming():
                self._busy_owed = max(0, self._busy_owed - 1)
                return BUSY, "busy"
            self._busy = False
            self._start_run({"reason": "ready"})
        if self._read is not None:
            return self._read_byte(self._read)
        return FILL, "fill"

    def _read_byte(self, read: _Read) -> tuple[int, str]:
        if read.sending:
            byte = read.block[read.pos]
            read.pos += 1
            if not read.sending:
                self._block_sent(read)
            return byte, "data"
        if read.gap:
            read.gap -= 1  # N_AC: at least this many 0xFF before every token (A.6 item 4)
            return FILL, "fill"
        task = read.task
        if task is None or not task.done():
            return FILL, "fill"  # storage still reading: a longer N_AC (Part C)
        read.task = None
        result = None if task.cancelled() else task.result()
        if result is not None and result.data is not None:
            data = result.data
            read.block = (bytes([ControlToken.START_BLOCK]) + data
                          + crc16(data).to_bytes(2, "big"))
            read.pos = 1
            self._start_run({"dir": "read", "nbytes": len(data),
                             "crc": f"0x{crc16(data):04X}"})
            return ControlToken.START_BLOCK, "data"
        self._read = None
        if result is None or result.error not in ("storage", "out_of_range"):
            return FILL, "fill"  # stopped meanwhile: nothing to send
        return self._data_error(read, result), "data_error"

    def _data_error(self, read: _Read, result: ReadResult) -> int:
        """Data error token instead of 0xFE (§7.3.3.3, A.5). CMD17 and register reads end
        with it; CMD18 stops sending and waits for CMD12."""
        status = self.card.status
        if result.error == "out_of_range":
            status |= CardStatus.OUT_OF_RANGE
        token = spi_data_error_token_from_card_status(status & 0xFFFFFFFF)
        token = token or spi_data_error_token_from_card_status(CardStatus.ERROR)
        if read.index != 18:
            self.card.end_transfer("data error token")
        self._start_run({"value": f"0x{token:02X}", "reason": result.error})
        return token

    def _block_sent(self, read: _Read) -> None:
        """The CRC16 went out: the next CMD18 block follows after N_AC again."""
        self.card.block_sent()
        if self.card.state is CardState.DATA and self.card.read_phase is read.phase \
                and not read.phase.finished:
            read.block, read.pos, read.gap = b"", 0, self.n_ac
            read.task = asyncio.ensure_future(self.card.read_block())
        else:
            self._read = None

    def _end_read(self) -> None:
        if self._read is not None and self._read.task is not None:
            self._read.task.cancel()
        self._read = None

    # --- MOSI: what the card does with the host's byte -------------------------------------

    def _consume(self, mosi: int, sent: str) -> str | None:
        """Take one MOSI byte; returns its meaning when it belongs to the host's framing."""
        if self._rx is _Rx.COMMAND:
            self._cmd.append(mosi)
            if len(self._cmd) == CMD_BYTES:
                self._rx = _Rx.LISTEN
                self._command(bytes(self._cmd))
            return "cmd"
        if self._rx is _Rx.BLOCK:
            assert self._write is not None
            self._write.block.append(mosi)
            if len(self._write.block) == self._write.length + 2:
                self._rx = _Rx.LISTEN
                self._block_received(self._write)
            return "data"
        if mosi & 0xC0 == 0x40:  # only 01xxxxxx starts a command (A.2); 0xFF/0x00 are fill
            self._rx = _Rx.COMMAND
            self._cmd = bytearray([mosi])
            self._start_run({})
            return "cmd"
        write = self._write
        # A token counts only while the card drives plain 0xFF: N_WR = 0 is fine, a token
        # during R1 or busy is not seen (A.5).
        if write is not None and sent == "fill":
            if write.starts_block(mosi):
                self._rx = _Rx.BLOCK
                write.block = bytearray()
                self._start_run({"dir": "write", "token": f"0x{mosi:02X}"})
                return "data"
            if write.multi and mosi == ControlToken.STOP_TRAN:
                self._stop_tran()
                return "stop_tran"
        return None

    def _command(self, frame: bytes) -> None:
        index, arg = frame[0] & 0x3F, int.from_bytes(frame[1:5], "big")
        crc_good = crc7_ok(frame)
        self._byte_info = {"index": index, "arg": f"0x{arg:08X}", "crc_ok": crc_good}
        card = self.card
        if not card.spi:
            # SD mode until CMD0 with CS# low and a correct CRC (A.1); nothing else is answered.
            if index != 0 or not crc_good:
                self._byte_info["name"] = command_name(index)
                return
            card.spi = True
        # CRC checking: CMD0 and CMD8 always, the rest after CMD59(1) (A.2, §7.2.2).
        checked = card.spi_crc_on or index in (0, 8)
        reply = card.execute(index, arg, crc_ok=crc_good or not checked)
        self._byte_info["name"] = command_name(index, reply.app)
        self._respond(reply)

    def _respond(self, reply: Reply) -> None:
        card = self.card
        if self._read is not None and (card.state is not CardState.DATA
                                       or card.read_phase is not self._read.phase):
            self._end_read()  # CMD12 (or CMD0) ends the read: data stops here (A.5)
        if card.state is not CardState.RCV:
            self._write = None
        self._out.clear()
        if reply.rejected == "no_response":
            return
        # One stuff byte after a command that arrived during a read, then N_CR (A.5).
        fill = self.n_cr + (1 if reply.state_before is CardState.DATA else 0)
        self._out.extend((FILL, "fill") for _ in range(fill))
        self._out.extend((b, "rsp") for b in card.spi_response(reply))
        self._busy = reply.busy or self._programming()
        self._busy_owed = _bytes_for(card.options.timing.r1b_clocks) if reply.busy else 0
        if reply.data is DataDir.READ and card.state is CardState.DATA \
                and card.read_phase is not None:
            self._read = _Read(reply.index, card.read_phase,
                               asyncio.ensure_future(card.read_block()), self.n_ac)
        elif reply.data is DataDir.WRITE and card.state is CardState.RCV \
                and card.write_phase is not None:
            self._write = _Write(multi=reply.index == 25, length=card.write_phase.length)

    def _block_received(self, write: _Write) -> None:
        """Data response in the very next byte, then busy while programming (A.5, A.6 item 6)."""
        card = self.card
        data, crc = bytes(write.block[:-2]), int.from_bytes(write.block[-2:], "big")
        crc_ok = not card.spi_crc_on or crc16(data) == crc
        self._byte_info = {"nbytes": len(data), "crc_ok": crc_ok}
        status = card.accept_block(data, crc_ok=crc_ok)
        if status is None:
            self._write = None  # the card was not receiving: no data response
            return
        self._out.append((DATA_RESPONSE[status], "data_response"))
        if status is CrcStatus.ACCEPTED:
            self._busy = True
            self._busy_owed = _bytes_for(card.options.timing.program_clocks)
        if not write.multi:
            self._write = None
            if status is not CrcStatus.ACCEPTED:
                card.end_transfer("write block rejected")

    def _stop_tran(self) -> None:
        """0xFD ends CMD25: N_BR one 0xFF, then busy until the blocks are programmed (A.5)."""
        self._write = None
        self.card.end_transfer("stop tran token")
        self._out.append((FILL, "fill"))
        self._busy = True
        self._busy_owed = _bytes_for(self.card.options.timing.program_clocks)

    # --- trace ---------------------------------------------------------------------------

    def _start_run(self, info: dict[str, Any]) -> None:
        """The current byte begins a new unit (a command, a block, a response...)."""
        self._byte_starts_run = True
        self._byte_info = info

    def _record(self, what: str, mosi: int, miso: int, count: int = 1) -> None:
        if self.trace is None:
            self._byte_info, self._byte_starts_run = {}, False
            self.clock.advance_clocks(CLOCKS_PER_BYTE * count)
            return
        clock = self.clock
        run = self._run
        if run is None or run.what != what or self._byte_starts_run:
            self.flush_trace()
            run = self._run = SpiToken(clock.now, clock.now, clock.period, what=what)
        run.info.update(self._byte_info)
        self._byte_info = {}
        self._byte_starts_run = False
        self._run_mosi += bytes([mosi]) * count
        self._run_miso += bytes([miso]) * count
        run.end = clock.advance_clocks(CLOCKS_PER_BYTE * count)

    def flush_trace(self) -> None:
        """Append the run of bytes in progress to the trace."""
        run, self._run = self._run, None
        if run is not None and self.trace is not None:
            run.mosi, run.miso = bytes(self._run_mosi), bytes(self._run_miso)
            self.trace.append(run)
        self._run_mosi.clear()
        self._run_miso.clear()

    async def idle_while_waiting(self, *, deadline: int | None = None) -> bool:
        """While the card waits for storage (a read's access time, programming), let
        simulated time follow wall time (design.md) and record the 0xFF bytes a polling
        host clocks meanwhile as one run: 0xFF during a read's N_AC, 0x00 while busy.
        Returns False if ``deadline`` (simulated ps) passed first (the card goes on)."""
        waiting = self.waiting_on()
        if waiting is None or not self.selected:
            return True
        clock = self.clock
        start = clock.now
        waited = await clock.wait(waiting, deadline=deadline,
                                  finished_at=lambda: self.card.storage.last_done_at)
        clocks = (clock.now - start) // clock.period
        clock.now = start
        count = -(-clocks // CLOCKS_PER_BYTE)
        if count:
            busy = self._busy and not self._out
            self._busy_owed = max(0, self._busy_owed - count) if busy else self._busy_owed
            self._record("busy" if busy else "fill", FILL, BUSY if busy else FILL, count)
        return waited.done

    def _on_state(self, old: CardState, new: CardState, reason: str) -> None:
        if self.trace is not None:
            now = self.clock.now
            self.trace.append(StateEvent(now, now, self.clock.period, old=old.label,
                                         new=new.label, reason=reason))


def _swallow(task: asyncio.Future[Any]) -> None:
    """Mark a waiter's outcome as seen (the card reports storage errors itself)."""
    if not task.cancelled():
        task.exception()
