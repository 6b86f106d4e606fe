"""The SD-mode bus between a host and one card: transactions become timed tokens.

The host side (a controller model, a test, the replay) calls ``command``,
``read_block``, ``write_block`` and ``wait_busy``; the bus asks the card, advances the
simulated clock by the right number of clocks and appends the tokens to the trace.
Timing follows the Physical Layer spec §4.12 (reference §10): N_CR / N_ID before a
response, N_AC before a read block, N_WR before a write block, N_CRC before the CRC
status, N_RC / N_CC between commands; storage latency lengthens N_AC and busy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sdmodel.card import Card, Reply
from sdmodel.clock import SimClock
from sdmodel.commands import DataDir, Resp
from sdmodel.crc import crc16_lanes
from sdmodel.states import CardState
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    IdleToken,
    ResponseToken,
)
from sdmodel.trace import StateEvent, Trace

__all__ = ["SdBus", "BusResponse", "Gate", "N_RC", "N_CC", "N_WR", "CMD_BITS", "NCR_MAX"]

# Awaited before every bus operation ("command", "read", "write", "busy"): the
# simulator's hook for pausing and stepping (design.md "Stepping").
Gate = Callable[[str], Awaitable[None]]

CMD_BITS = 48
N_RC = 8  # response end -> next command (min)
N_CC = 8  # command end -> next command when there is no response (min)
N_WR = 2  # write command R1 end -> write data start (min)
NCR_MAX = 64  # a host gives up on a response after this many clocks


@dataclass(frozen=True)
class BusResponse:
    reply: Reply
    command: CommandToken
    response: ResponseToken | None


class SdBus:
    def __init__(self, card: Card, clock: SimClock, trace: Trace | None = None) -> None:
        self.card = card
        self.clock = clock
        self.trace = trace if trace is not None else Trace()
        self.host_width = 1  # DAT lines the host samples (Host Control 1 bit 1)
        self._cmd_free_at = 0  # earliest start of the next command
        self._data_ref = 0  # N_AC reference: read command end, then previous block end
        self._busy_start: int | None = None
        self._busy_reason = ""
        self._nominal_busy_until = 0  # R1b busy that needs no storage work
        self.gate: Gate | None = None
        card.events.state.connect(self._on_state)

    # --- trace helpers ----------------------------------------------------------------

    def _on_state(self, old: CardState, new: CardState, reason: str) -> None:
        now = self.clock.now
        self.trace.append(StateEvent(now, now, self.clock.period, old=old.label, new=new.label,
                                     reason=reason))

    def _clocks(self, n: int) -> int:
        return n * self.clock.period

    # --- power and clock ------------------------------------------------------------------

    def power_up(self, clocks: int = 74) -> None:
        """Supply on and at least 74 clocks with CMD high before the first command (§6.4)."""
        self.card.power_on()
        start = self.clock.now
        self.clock.advance_clocks(clocks)
        self.trace.append(IdleToken(start, self.clock.now, self.clock.period, reason="power-up"))
        self._cmd_free_at = self.clock.now

    def idle_clocks(self, clocks: int, reason: str = "") -> None:
        start = self.clock.now
        self.clock.advance_clocks(clocks)
        self.trace.append(IdleToken(start, self.clock.now, self.clock.period, reason=reason))

    # --- CMD line -----------------------------------------------------------------------

    async def command(self, index: int, arg: int, *, crc_ok: bool = True) -> BusResponse:
        """Send a command and collect the card's response (None if it stays silent)."""
        if self.gate is not None:
            await self.gate("command")
        clock = self.clock
        self._close_finished_busy()
        start = max(clock.now, self._cmd_free_at)
        end = start + self._clocks(CMD_BITS)
        clock.now = end
        reply = self.card.execute(index, arg, crc_ok=crc_ok)
        cmd_token = CommandToken(start, end, clock.period, index=index, arg=arg,
                                 app=reply.app, crc_ok=crc_ok)
        self.trace.append(cmd_token)
        if reply.data is not DataDir.NONE:
            self._data_ref = end
        if reply.resp is Resp.NONE:
            self._cmd_free_at = end + self._clocks(N_CC)
            return BusResponse(reply, cmd_token, None)
        rsp_start = end + self._clocks(reply.n_cr)
        rsp_end = rsp_start + self._clocks(reply.resp.bits)
        index_field = 0x3F if reply.resp in (Resp.R2, Resp.R3) else index
        rsp = ResponseToken(rsp_start, rsp_end, clock.period, type=reply.resp.value,
                            index=index_field, value=reply.value, crc_ok=True, for_index=index)
        self.trace.append(rsp)
        clock.now = rsp_end
        self._cmd_free_at = rsp_end + self._clocks(N_RC)
        if reply.busy:
            self._begin_busy(rsp_end + self._clocks(2), "R1b")
            r1b_clocks = 2 + self.card.options.timing.r1b_clocks
            self._nominal_busy_until = rsp_end + self._clocks(r1b_clocks)
        return BusResponse(reply, cmd_token, rsp)

    # --- DAT lines ----------------------------------------------------------------------

    def _data_clocks(self, nbytes: int, width: int) -> int:
        return 1 + nbytes * 8 // width + 16 + 1  # start, data, CRC16, end (§3.6.1)

    async def read_block(self, *, deadline: int | None = None) -> bytes | None:
        """The next block the card sends, or None if nothing starts before ``deadline``
        (storage too slow, a read error, or no read in progress)."""
        if self.gate is not None:
            await self.gate("read")
        clock = self.clock
        earliest = self._data_ref + self._clocks(self.card.options.timing.n_ac)
        result = self.card.read_block_now()  # read-ahead: usually no wait at all
        if result is None:
            waited = await clock.wait(self.card.read_block(), deadline=deadline,
                                      finished_at=self._storage_done_at)
            result = waited.value if waited.done else None
        if result is None or result.data is None:
            if deadline is not None:
                clock.now = max(clock.now, deadline)
                # the host kept clocking while it waited for a start bit (N_AC)
                self.trace.append(IdleToken(earliest, max(earliest, clock.now), clock.period,
                                            reason="no read data before the host's deadline"))
            return None
        data = result.data
        width = self.card.bus_width
        start = max(earliest, clock.now)
        end = start + self._clocks(self._data_clocks(len(data), width))
        self.trace.append(DataToken(start, end, clock.period, data=data, nbytes=len(data),
                                    width=width, crc_ok=width == self.host_width,
                                    crcs=tuple(crc16_lanes(data, width)), to_card=False))
        clock.now = end
        self._data_ref = end
        self.card.block_sent()
        return data

    async def write_block(self, data: bytes, *, crc_ok: bool = True) -> CrcStatus | None:
        """Send one block to the card; returns its CRC status (None: the card did not
        answer, e.g. it was not in rcv). Busy follows; see ``wait_busy``."""
        if self.gate is not None:
            await self.gate("write")
        clock = self.clock
        width = self.host_width
        start = max(clock.now + self._clocks(N_WR), self._nominal_busy_until)
        end = start + self._clocks(self._data_clocks(len(data), width))
        lanes = crc16_lanes(data, width)
        if not crc_ok:
            lanes[0] ^= 0x0001
        self.trace.append(DataToken(start, end, clock.period, data=bytes(data),
                                    nbytes=len(data), width=width, crc_ok=crc_ok,
                                    crcs=tuple(lanes), to_card=True))
        clock.now = end
        self._close_finished_busy()
        status = self.card.accept_block(data, crc_ok=crc_ok and width == self.card.bus_width)
        if status is None:
            return None
        timing = self.card.options.timing
        crc_start = end + self._clocks(timing.n_crc)
        crc_end = crc_start + self._clocks(5)
        self.trace.append(CrcStatusToken(crc_start, crc_end, clock.period, status=int(status)))
        clock.now = crc_end
        self._begin_busy(crc_end, "program")
        self._nominal_busy_until = crc_end + self._clocks(timing.program_clocks)
        return status

    def _close_finished_busy(self) -> None:
        """A busy period that ended while the host was not waiting for it (no wait_busy
        after an R1b) is closed at its nominal end, so a later busy does not swallow it."""
        if self._busy_start is not None and not self.card.busy:
            end = max(self._busy_start, self._nominal_busy_until)
            self.trace.append(BusyToken(self._busy_start, end, self.clock.period,
                                        reason=self._busy_reason))
            self._busy_start = None

    def _begin_busy(self, start: int, reason: str) -> None:
        if self._busy_start is None:
            self._busy_start = start
            self._busy_reason = reason

    @property
    def dat0_busy(self) -> bool:
        return self.card.busy or self.clock.now < self._nominal_busy_until

    async def wait_busy(self, *, deadline: int | None = None) -> bool:
        """Wait until DAT0 is released; False if ``deadline`` passes first (the card
        keeps programming: a later call picks the busy period up again)."""
        if self.gate is not None:
            await self.gate("busy")
        clock = self.clock
        done = True
        while done and (work := self.card.busy_future) is not None:
            done = (await clock.wait(work, deadline=deadline,
                                     finished_at=self._storage_done_at)).done
        if done:
            clock.now = max(clock.now, self._nominal_busy_until)
        self._end_busy(done)
        return done

    def _storage_done_at(self) -> float:
        """When storage last finished a job: a read or a programming step ended then, not
        when the loop got round to noticing."""
        return self.card.storage.last_done_at

    def _end_busy(self, released: bool) -> None:
        if self._busy_start is None:
            return
        reason = self.card.busy_reason or self._busy_reason
        end = max(self.clock.now, self._busy_start)
        self.trace.append(BusyToken(self._busy_start, end, self.clock.period,
                                    reason=reason if released else f"{reason} (host gave up)"))
        self._busy_start = end if not released else None
