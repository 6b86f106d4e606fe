"""SD-mode decoder: CMD and DAT0-3 levels at CLK rising edges -> bus tokens.

CMD line (§4.7.2, §4.9): a token starts with a 1 -> 0 transition (the line idles high,
N_CR/N_RC gaps are ones). The transmission bit tells a host command (1) from a card
response (0). A command must have its end bit and a correct CRC7, otherwise the card
ignores it and the decoder reports a ``framing`` finding instead of a command. A
response is typed by the command it answers (the command table's ``resp``; ACMDs after
CMD55): R2 is 136 bits with the register's own CRC7 over bits 127:8, R3 has no CRC.

DAT lines (§3.6.1, §4.3.3, §4.3.4): a block starts with a start bit on DAT0 (all four
lines in 4-bit mode), carries ``data_len`` bytes of the command (else the block length),
one CRC16 per line and an end bit. A written block is followed by the CRC status token
``0 sss 1`` on DAT0 and busy (DAT0 low); an R1b response may be followed by busy. The
bus width comes from ACMD6, or, before any ACMD6, from whether DAT1-3 start together
with DAT0.

All bit work happens on the edge-sampled arrays with numpy slicing; Python runs once
per token, not per bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sdmodel.commands import Command, DataDir, Resp, lookup
from sdmodel.crc import crc7, crc16, crc16_bits
from sdmodel.decode.edges import EdgeBatch
from sdmodel.decode.findings import CardTracker, allowed_while_busy, make_finding
from sdmodel.decode.stream import EdgeBuffer, TokenQueue
from sdmodel.registers import ERROR_BITS, OCR_BUSY, OCR_CCS, CardStatus, error_names
from sdmodel.registers import card_status_from_r6_status as r6_to_status
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    Line,
    ResponseToken,
    Token,
)

__all__ = ["SdDecoder", "NCR_MIN", "NCR_MAX"]

CMD_BITS = 48
R2_BITS = 136
NCR_MIN, NCR_MAX = 2, 64  # clocks between command end bit and response start bit (§4.12.1)
_NCRC_MAX = 16  # CRC status start after a written block: 2 (2-8 in SDR50/104); lenient
_BUSY_GAP = 4  # clocks between the CRC status end bit and busy
_R1B_WINDOW = 8  # busy must start this soon after an R1b end bit (§4.12.3: 2 clocks)
_STOP_TAIL = 8  # a card stops sending read data within this many clocks after CMD12
_MAX_BLOCK = 4096  # CMD16 beyond this is refused by every card (READ_BL_LEN <= 11)
_IDLE_RUN = 32  # DAT0 high this long ends a run of unexplained DAT activity
_CMD12 = 0b0100_1100  # first byte of CMD12 on the wire
_CMD, _DAT0 = 0, 1  # rows in the edge levels
_STATUS_ERRORS = int(ERROR_BITS)
# Errors in the response of a data command that mean the card sends no data (type R/X).
_NO_DATA = _STATUS_ERRORS & ~int(CardStatus.COM_CRC_ERROR | CardStatus.ILLEGAL_COMMAND)


def _to_int(bits: np.ndarray) -> int:
    n = int(bits.size)
    if n == 0:
        return 0
    return int.from_bytes(np.packbits(bits).tobytes(), "big") >> ((-n) % 8)


def _crc16_bits(bits: np.ndarray) -> int:
    """CRC16 of one line's bit stream (§4.5); bit-serial only for odd lengths."""
    if bits.size % 8 == 0:
        return crc16(np.packbits(bits).tobytes())
    return crc16_bits(bits.tolist())


def _names(status: int) -> str:
    return ", ".join(error_names(status))


@dataclass
class _Pending:
    """A command waiting for its response."""

    token: CommandToken
    cmd: Command | None
    end: int  # edge of the command's end bit
    resp: Resp
    deadline_time: int | None = None  # time of the 65th clock after the end bit
    reported: bool = False  # no_response already emitted

    @property
    def deadline(self) -> int:
        return self.end + NCR_MAX + 1


@dataclass
class _Phase:
    """Data the last data command announced."""

    index: int
    app: bool
    to_card: bool
    nbytes: int
    blocks: int | None  # None: until CMD12
    after: int  # blocks start after this edge


@dataclass
class _Busy:
    start: int  # edge
    time: int
    reason: str
    more: bool  # inside a CMD25: back to rcv afterwards


@dataclass
class _Garbage:
    start: int
    time: int
    end: int  # last edge covered
    end_time: int
    why: str
    attempts: int = 1


class SdDecoder:
    """Streaming SD-mode decoder: ``feed`` edge batches, then ``finish``.

    ``dat_lines`` is how many DAT lines the batches carry after CMD: 0, 1 (DAT0) or 4.
    """

    def __init__(self, dat_lines: int = 0) -> None:
        if dat_lines not in (0, 1, 4):
            raise ValueError("dat_lines must be 0, 1 or 4")
        self.ndat = dat_lines
        self.buf = EdgeBuffer(1 + dat_lines)
        self.queue = TokenQueue()
        self.cmd_pos = 0
        self.dat_pos = 0
        self.pending: _Pending | None = None
        self.app_next = False
        self.phase: _Phase | None = None
        self.block_len = 512
        self.block_count: int | None = None  # CMD23
        self.high_capacity = False  # CCS from ACMD41: block length fixed at 512
        self.width: int | None = None  # from ACMD6
        self.r1b_end: int | None = None
        self.busy: _Busy | None = None
        self.garbage: _Garbage | None = None
        self.abort_until: int | None = None  # read data cut by CMD12 ends before this edge
        self.tracker = CardTracker(sees_data=dat_lines > 0)

    # --- streaming ------------------------------------------------------------------------

    def feed(self, batch: EdgeBatch) -> list[Token]:
        self.buf.append(batch)
        self._run(final=False)
        return self._flush()

    def finish(self) -> list[Token]:
        self._run(final=True)
        buf = self.buf
        p = self.pending
        if p is not None and not p.reported and p.deadline < buf.end:
            self._no_response(p)
        if self.busy is not None:
            b = self.busy
            end = buf.time(buf.end - 1)
            self.queue.push(BusyToken(b.time, end, buf.period(b.start, buf.end - 1),
                                      reason=f"{b.reason} (capture ends)"))
            self.busy = None
        self._close_garbage()
        return self.queue.pop_before(None)

    def _flush(self) -> list[Token]:
        buf = self.buf
        p = self.pending
        if p is not None and p.deadline_time is None and p.deadline < buf.end:
            p.deadline_time = buf.time(p.deadline)
        edge = min(self.cmd_pos, self.dat_pos if self.ndat else self.cmd_pos)
        frontier = buf.time(edge) if edge < buf.end else buf.time(buf.end - 1) + 1
        if self.garbage is not None:
            frontier = min(frontier, self.garbage.time)
        if self.busy is not None:
            frontier = min(frontier, self.busy.time)
        if p is not None and not p.reported:  # a no_response finding may still come
            frontier = min(frontier, p.token.end)
        buf.trim(edge)
        return self.queue.pop_before(frontier)

    def _run(self, final: bool) -> None:
        buf = self.buf
        while True:
            c = self._next_cmd(final)
            d = self._next_dat()
            if c is None and d is None:
                return
            if d is None or (c is not None and c <= d):
                assert c is not None
                if not final and c + R2_BITS + 2 > buf.end:
                    return
                self._on_cmd(c)
            else:
                if not final and self.busy is None and d + self._dat_need() > buf.end:
                    return
                self._on_dat(d)

    def _next_cmd(self, final: bool) -> int | None:
        buf = self.buf
        c = buf.next_fall(_CMD, self.cmd_pos)
        if self.garbage is not None and (c is None or c > self.garbage.end + 1):
            if c is not None or final or buf.end > self.garbage.end + 1:
                self._close_garbage()
        p = self.pending
        if p is not None and not p.reported and c is None:
            if buf.end > p.deadline + R2_BITS:
                self._no_response(p)
        if c is None:
            self.cmd_pos = max(self.cmd_pos, buf.end)
        return c

    def _next_dat(self) -> int | None:
        if not self.ndat:
            return None
        buf = self.buf
        if self.busy is not None:
            d = buf.next_rise(_DAT0, max(self.dat_pos, self.busy.start + 1))
        else:
            d = buf.next_fall(_DAT0, self.dat_pos)
        if d is None:
            self.dat_pos = max(self.dat_pos, buf.end)
        return d

    def _dat_need(self) -> int:
        nbytes = self.phase.nbytes if self.phase is not None else self.block_len
        return 2 + nbytes * 8 + 17 + _NCRC_MAX + 5 + _BUSY_GAP

    # --- CMD line -------------------------------------------------------------------------

    def _on_cmd(self, c: int) -> None:
        buf = self.buf
        self.cmd_pos = c + 1
        avail = buf.end - c
        if avail < 2:
            self._truncated(c, "CMD")
            return
        host = buf.level(_CMD, c + 1) == 1
        p = self.pending
        if host:
            nbits = CMD_BITS
        elif p is not None:
            nbits = R2_BITS if p.resp is Resp.R2 else CMD_BITS
        else:
            nbits = CMD_BITS
        if avail < nbits:
            self._truncated(c, "CMD")
            self.cmd_pos = buf.end
            return
        bits = buf.bits(_CMD, c, nbits)
        if host:
            self._command(c, bits)
        elif p is not None:
            self._response(c, bits, p)
        else:
            self._unexpected_response(c)

    def _command(self, c: int, bits: np.ndarray) -> None:
        buf = self.buf
        raw = np.packbits(bits).tobytes()
        index, arg = raw[0] & 0x3F, int.from_bytes(raw[1:5], "big")
        start, end, period = buf.span(c, CMD_BITS)
        if not bits[-1]:
            self._garbage(c, start, end, "end bit 0")
            return
        if crc7(raw[:5]) != raw[5] >> 1:
            self._garbage(c, start, end, f"CRC7 0x{raw[5] >> 1:02X}, expected "
                          f"0x{crc7(raw[:5]):02X} (CMD{index} arg 0x{arg:08X}?)")
            return
        self._close_garbage(before=start)
        if self.pending is not None and not self.pending.reported:
            self._no_response(self.pending)
        app = self.app_next
        cmd = lookup(index, app)
        token = CommandToken(start, end, period, index=index, arg=arg, app=app, crc_ok=True)
        self.queue.push(token)
        self.app_next = cmd is not None and cmd.index == 55 and not cmd.app
        if self.busy is not None and self.busy.start <= c and (cmd is None
                                                               or not allowed_while_busy(cmd)):
            self._finding("cmd_while_busy", start, end, period,
                          f"{token.name} while DAT0 signals busy ({self.busy.reason})")
        problem = self.tracker.check(cmd, index, app)
        if problem is not None:
            self._finding(problem[0], start, end, period, problem[1])
        self.tracker.command(cmd, arg)
        resp = cmd.resp if cmd is not None else Resp.NONE
        if cmd is not None and cmd.other_rca and not self._selects_card(arg):
            resp = Resp.NONE  # CMD7 deselect: no card answers (§4.3.1)
        has_rsp = resp is not Resp.NONE
        self.pending = _Pending(token, cmd, c + CMD_BITS - 1, resp) if has_rsp else None
        self.r1b_end = None
        self._data_command(cmd, arg, c + CMD_BITS - 1)
        self.cmd_pos = c + CMD_BITS

    def _selects_card(self, arg: int) -> bool:
        rca = arg >> 16
        return rca != 0 and (self.tracker.rca is None or rca == self.tracker.rca)

    def _data_command(self, cmd: Command | None, arg: int, end: int) -> None:
        if cmd is None:
            return
        if cmd.index == 12 and not cmd.app:
            if self.phase is not None and not self.phase.to_card:
                self.abort_until = end + _STOP_TAIL
            self.phase = None
        count, self.block_count = self.block_count, None
        if cmd.index == 23 and not cmd.app:
            self.block_count = arg
        if cmd.data is DataDir.NONE:
            return
        to_card = cmd.data is DataDir.WRITE
        rd_wr = next((a for a in cmd.args if a.name == "RD_WR"), None)
        if rd_wr is not None:  # CMD56: the argument picks the direction
            to_card = rd_wr.get(arg) == 0
        multi = cmd.index in (18, 25) and not cmd.app
        nbytes = cmd.data_len or (512 if self.high_capacity else self.block_len)
        self.phase = _Phase(cmd.index, cmd.app, to_card, nbytes,
                            (count or None) if multi else 1, end)

    def _response(self, c: int, bits: np.ndarray, p: _Pending) -> None:
        buf = self.buf
        nbits = int(bits.size)
        start, end, period = buf.span(c, nbits)
        ncr = c - p.end - 1
        crc_ok, end_ok, index, value = self._check_response(bits, p.resp)
        late = ncr > NCR_MAX
        if late and not (crc_ok and end_ok):
            self._garbage(c, start, end, "not a valid response")
            return
        self._close_garbage(before=start)
        cmd_token = p.token
        token = ResponseToken(start, end, period, type=p.resp.value, index=index, value=value,
                              crc_ok=crc_ok, for_index=cmd_token.index)
        self.queue.push(token)
        self.pending = None
        self.cmd_pos = c + nbits
        name = cmd_token.name
        if late:
            self._finding("late_response", start, end, period,
                          f"{p.resp.value} to {name} after {ncr} clocks (N_CR max {NCR_MAX})")
        elif ncr < NCR_MIN:
            self._finding("early_response", start, end, period,
                          f"{p.resp.value} to {name} after {ncr} clocks (N_CR min {NCR_MIN})")
        if not end_ok:
            self._finding("rsp_end_bit", start, end, period, f"{p.resp.value} to {name}: end bit 0")
        if p.resp is Resp.R3:
            if index != 0x3F or _to_int(bits[40:47]) != 0x7F:
                self._finding("r3_framing", start, end, period,
                              f"R3 to {name}: check bits 0x{index:02X}, CRC field "
                              f"0x{_to_int(bits[40:47]):02X} (both should be all ones)")
        elif not crc_ok:
            self._finding("rsp_crc", start, end, period, f"{p.resp.value} to {name}: CRC7 wrong")
        if p.resp is not Resp.R2 and p.resp is not Resp.R3 and index != cmd_token.index:
            self._finding("rsp_index", start, end, period,
                          f"{p.resp.value} index {index} answers {name}")
        if crc_ok and end_ok:
            self._learn(p, value, start, end, period, c + nbits - 1)

    def _check_response(self, bits: np.ndarray, resp: Resp) -> tuple[bool, bool, int, int]:
        """(crc_ok, end_ok, index field, value) of a response frame."""
        end_ok = bool(bits[-1])
        index = _to_int(bits[2:8])
        if resp is Resp.R2:  # CRC7 of the register, bits 127:8 (§4.9.3)
            value = _to_int(bits[8:136])
            body = np.packbits(bits[8:128]).tobytes()
            return crc7(body) == _to_int(bits[128:135]), end_ok, index, value
        value = _to_int(bits[8:40])
        if resp is Resp.R3:  # no CRC (§4.9.4)
            return True, end_ok, index, value
        head = np.packbits(bits[0:40]).tobytes()
        return crc7(head) == _to_int(bits[40:47]), end_ok, index, value

    def _learn(self, p: _Pending, value: int, start: int, end: int, period: int,
               last: int) -> None:
        """What a good response tells about the card (state, RCA, width, lengths)."""
        cmd, arg = p.cmd, p.token.arg
        status: int | None = None
        if p.resp in (Resp.R1, Resp.R1B):
            status = value
        elif p.resp is Resp.R6:
            status = r6_to_status(value & 0xFFFF)
            self.tracker.rca_assigned(value >> 16)
        elif p.resp is Resp.R3:
            self.tracker.ocr(value)
            if value & OCR_BUSY:
                self.high_capacity = bool(value & OCR_CCS)
        if status is not None:
            self.tracker.status(cmd, arg, status)
            errors = status & _STATUS_ERRORS
            if errors:
                self._finding("card_error", start, end, period,
                              f"{p.resp.value} to {p.token.name} reports {_names(errors)}")
            if status & _NO_DATA and self.phase is not None and self.phase.index == p.token.index:
                self.phase = None
        if cmd is None or (status is not None and status & _STATUS_ERRORS):
            return
        if cmd.app and cmd.index == 6:  # ACMD6 SET_BUS_WIDTH
            self.width = 4 if cmd.args[0].get(arg) == 2 else 1
        elif not cmd.app and cmd.index == 16 and 0 < arg <= _MAX_BLOCK:
            self.block_len = arg
        if p.resp is Resp.R1B and self.ndat:
            self.r1b_end = last

    def _unexpected_response(self, c: int) -> None:
        """A response with no command before it: type it from its own bits."""
        buf = self.buf
        avail = buf.end - c
        bits48 = buf.bits(_CMD, c, CMD_BITS)
        index = _to_int(bits48[2:8])
        guesses = [Resp.R3, Resp.R2] if index == 0x3F else [
            {3: Resp.R6, 8: Resp.R7}.get(index, Resp.R1)]
        for resp in guesses:
            nbits = R2_BITS if resp is Resp.R2 else CMD_BITS
            if avail < nbits:
                continue
            bits = buf.bits(_CMD, c, nbits)
            crc_ok, end_ok, idx, value = self._check_response(bits, resp)
            if resp is Resp.R3 and _to_int(bits[40:47]) != 0x7F:
                continue
            if crc_ok and end_ok:
                start, end, period = buf.span(c, nbits)
                self._close_garbage(before=start)
                self.queue.push(ResponseToken(start, end, period, type=resp.value, index=idx,
                                              value=value, crc_ok=True))
                self._finding("unexpected_response", start, end, period,
                              f"{resp.value} (index {idx}) without a command asking for it")
                self.tracker.forget()
                self.cmd_pos = c + nbits
                return
        start, end, _ = buf.span(c, CMD_BITS)
        self._garbage(c, start, end, "transmission bit 0 but not a valid response")

    def _no_response(self, p: _Pending) -> None:
        p.reported = True
        t = p.deadline_time if p.deadline_time is not None else self.buf.time(p.deadline)
        tok = p.token
        self._finding("no_response", tok.end, max(t, tok.end), tok.period,
                      f"no {p.resp.value} to {tok.name} within {NCR_MAX} clocks")
        if self.phase is not None and self.phase.index == tok.index and self.phase.after == p.end:
            self.phase = None  # the card ignored the command: no data either

    def _garbage(self, c: int, start: int, end: int, why: str) -> None:
        g = self.garbage
        last = c + CMD_BITS - 1
        if g is not None and c <= g.end + 1:
            g.end, g.end_time, g.attempts = max(g.end, last), max(g.end_time, end), g.attempts + 1
        else:
            self._close_garbage()
            self.garbage = _Garbage(c, start, last, end, why)
        self.cmd_pos = c + 1

    def _close_garbage(self, before: int | None = None) -> None:
        g = self.garbage
        if g is None:
            return
        self.garbage = None
        end = g.end_time if before is None else min(g.end_time, before)
        extra = f" ({g.attempts} start bits tried)" if g.attempts > 1 else ""
        self._finding("framing", g.time, end, self.buf.period(g.start, g.end),
                      f"not a valid command or response: {g.why}{extra}")

    # --- DAT lines ------------------------------------------------------------------------

    def _on_dat(self, d: int) -> None:
        if self.busy is not None:  # d is the rising edge that ends the busy period
            self._close_busy(d)
            return
        if self.abort_until is not None:
            if d <= self.abort_until:
                self.dat_pos = self.abort_until + 1
                return
            self.abort_until = None
        ph = self.phase
        if ph is not None and d > ph.after:
            self._block(d, ph)
            return
        if self.r1b_end is not None and self.r1b_end < d <= self.r1b_end + _R1B_WINDOW:
            self.r1b_end = None
            self._open_busy(d, "R1b", more=False)
            return
        self._unexplained(d)

    def _width(self, d: int) -> int:
        if self.width is not None:
            return self.width
        if self.ndat == 4 and not self.buf.levels[_DAT0:, d - self.buf.base].any():
            return 4  # all four lines start together (§3.6.1)
        return 1

    def _decode_block(self, d: int, nbytes: int, width: int) -> dict[str, Any] | None:
        """The block starting at edge ``d`` (None if the capture ends first)."""
        buf = self.buf
        per_line = nbytes * 8 // width
        length = 1 + per_line + 16 + 1
        if buf.end - d < length:
            return None
        a = d - buf.base
        lines = buf.levels[_DAT0:_DAT0 + width, a:a + length]
        payload = lines[:, 1:1 + per_line]
        if width == 1:
            data = np.packbits(payload[0]).tobytes()
        else:  # §3.6.1: each byte takes two clocks, high nibble first, DAT3 = MSB
            nib = (payload[3] << 3) | (payload[2] << 2) | (payload[1] << 1) | payload[0]
            data = ((nib[0::2] << 4) | nib[1::2]).astype(np.uint8).tobytes()
        sent = tuple(_to_int(lines[n, 1 + per_line:17 + per_line]) for n in range(width))
        good = tuple(_crc16_bits(payload[n]) for n in range(width))
        bad_lines = [n for n in range(width) if sent[n] != good[n]]
        end_ok = bool(lines[:, -1].all())
        return {"data": data, "sent": sent, "bad": bad_lines, "end_ok": end_ok,
                "length": length, "start_ok": not lines[:, 0].any()}

    def _block(self, d: int, ph: _Phase) -> None:
        buf = self.buf
        width = self._width(d)
        if width > self.ndat:
            start, end, period = buf.span(d, 1 + ph.nbytes * 2 + 17)
            self._finding("missing_lines", start, end, period,
                          "4-bit data block, but DAT1-DAT3 are not mapped", on=Line.DAT)
            self.dat_pos = d + 1 + ph.nbytes * 2 + 17
            return
        block = self._decode_block(d, ph.nbytes, width)
        if block is None:
            self._truncated(d, "DAT")
            self.dat_pos = buf.end
            return
        length = block["length"]
        if not ph.to_card and (stop := self._cmd12_within(d, d + length)) is not None:
            start, end, period = buf.span(d, stop + CMD_BITS + _STOP_TAIL - d)
            self._finding("block_aborted", start, end, period,
                          f"read block cut short by CMD12 after {stop - d} clocks", on=Line.DAT)
            self.dat_pos = stop + CMD_BITS + _STOP_TAIL
            return
        start, end, period = buf.span(d, length)
        crc_ok = not block["bad"]
        token = DataToken(start, end, period, data=block["data"], nbytes=ph.nbytes,
                          width=width, crc_ok=crc_ok, crcs=block["sent"],
                          to_card=ph.to_card, for_index=ph.index, app=ph.app)
        self.queue.push(token)
        what = f"{'write' if ph.to_card else 'read'} block for {token.label()}"
        if not crc_ok:
            lines = ", ".join(f"DAT{n}" for n in block["bad"])
            self._finding("data_crc", start, end, period, f"CRC16 wrong on {lines}: {what}",
                          on=Line.DAT)
        if not block["end_ok"]:
            self._finding("data_end_bit", start, end, period, f"end bit 0: {what}", on=Line.DAT)
        if ph.blocks is not None:
            ph.blocks -= 1
        more = ph.blocks is None or ph.blocks > 0
        ph.after = d + length - 1
        if not more:
            self.phase = None
            if not ph.to_card:
                self.tracker.data_done()
        self.dat_pos = d + length
        if ph.to_card:
            self._crc_status(d + length - 1, more)

    def _crc_status(self, last: int, more: bool) -> None:
        """CRC status token and busy after a written block (§4.3.4, reference §9)."""
        buf = self.buf
        z = buf.next_fall(_DAT0, last + 1, last + 2 + _NCRC_MAX)
        if z is None or buf.end - z < 5:
            t = buf.time(last)
            self._finding("crc_status_missing", t, t, buf.period(last - 1, last),
                          "no CRC status token after the written block", on=Line.DAT)
            return
        bits = buf.bits(_DAT0, z, 5)
        status = _to_int(bits[1:4])
        start, end, period = buf.span(z, 5)
        self.queue.push(CrcStatusToken(start, end, period, status=status))
        if status != CrcStatus.ACCEPTED or not bits[4]:
            meaning = {s.value: s.name.lower() for s in CrcStatus}.get(status, "invalid")
            self._finding("crc_status", start, end, period,
                          f"CRC status {status:03b} ({meaning.replace('_', ' ')})", on=Line.DAT)
        self.dat_pos = z + 5
        b = buf.next_fall(_DAT0, z + 5, z + 6 + _BUSY_GAP)
        if b is not None:
            self._open_busy(b, "program", more)
        else:
            self.tracker.busy_done(more)

    def _open_busy(self, d: int, reason: str, more: bool) -> None:
        self.busy = _Busy(d, self.buf.time(d), reason, more)
        self.dat_pos = d + 1

    def _close_busy(self, r: int) -> None:
        b = self.busy
        assert b is not None
        self.busy = None
        self.queue.push(BusyToken(b.time, self.buf.time(r), self.buf.period(b.start, r),
                                  reason=b.reason))
        self.tracker.busy_done(b.more)
        self.dat_pos = r

    def _unexplained(self, d: int) -> None:
        """DAT0 falls with no data or busy expected: a stray block, or a low period."""
        buf = self.buf
        width = self._width(d)
        if width <= self.ndat:
            block = self._decode_block(d, self.block_len, width)
            if block is not None and block["start_ok"] and not block["bad"] and block["end_ok"]:
                start, end, period = buf.span(d, block["length"])
                self.queue.push(DataToken(start, end, period, data=block["data"],
                                          nbytes=self.block_len, width=width,
                                          crcs=block["sent"]))
                self._finding("unexpected_data", start, end, period,
                              f"{self.block_len}-byte block without a data command", on=Line.DAT)
                self.dat_pos = d + block["length"]
                return
        rise = buf.next_rise(_DAT0, d + 1)
        if rise is None or rise - d >= 8:  # held low: a busy period nobody announced
            t = buf.time(d)
            self._finding("unexpected_busy", t, t, buf.period(d - 1, d),
                          "DAT0 went low without a data transfer or an R1b/write before it",
                          on=Line.DAT)
            self._open_busy(d, "", more=False)
            return
        end = self._activity_end(rise)
        start, stop, period = buf.span(d, end - d)
        self._finding("unexpected_data", start, stop, period,
                      "DAT activity that is no valid data block", on=Line.DAT)
        self.dat_pos = end

    def _activity_end(self, rise: int) -> int:
        """The rising edge after which DAT0 stays high for ``_IDLE_RUN`` clocks."""
        buf = self.buf
        while True:
            fall = buf.next_fall(_DAT0, rise + 1)
            if fall is None or fall - rise >= _IDLE_RUN:
                return rise
            nxt = buf.next_rise(_DAT0, fall + 1)
            if nxt is None:
                return buf.end
            rise = nxt

    def _cmd12_within(self, a: int, b: int) -> int | None:
        """Start edge of a valid CMD12 on CMD inside [a, b), if any."""
        buf = self.buf
        f = buf.next_fall(_CMD, a, b)
        tries = 0
        while f is not None and tries < 64 and f + CMD_BITS <= buf.end:
            raw = np.packbits(buf.bits(_CMD, f, CMD_BITS)).tobytes()
            if raw[0] == _CMD12 and crc7(raw[:5]) == raw[5] >> 1 and raw[5] & 1:
                return f
            f = buf.next_fall(_CMD, f + 1, b)
            tries += 1
        return None

    # --- helpers --------------------------------------------------------------------------

    def _finding(self, code: str, start: int, end: int, period: int, message: str,
                 on: Line = Line.CMD) -> None:
        self.queue.push(make_finding(code, start, end, message, period=period, on=on))

    def _truncated(self, at: int, line: str) -> None:
        t = self.buf.time(at)
        self._finding("truncated", t, self.buf.time(self.buf.end - 1), 0,
                      f"the capture ends inside a {line} token",
                      on=Line.CMD if line == "CMD" else Line.DAT)
