"""SPI-mode decoder: MOSI/MISO bits at SCLK rising edges, framed by CS#, -> tokens.

Bytes (§7.2, SPI mode 0, MSB first) are assembled only while CS# is low, restarting
at every CS# session. On the bytes a small state machine, like sigrok's ``sdcard_spi``
but with every CRC checked:

* HUNT: a MOSI byte ``01xxxxxx`` starts a 6-byte command (§7.3.1). Its R1 is the
  first MISO byte with bit 7 = 0 within N_CR (0-8 bytes), followed by the rest of the
  response kind the command table gives (``Command.spi``; ACMDs after CMD55).
* WAIT_READ / read block: 0xFE, the block, CRC16 on MISO; or a data error token.
* WAIT_WRITE / write block: 0xFE (CMD24) or 0xFC/0xFD (CMD25) on MOSI, the block,
  CRC16, then the data response ``xxx0sss1`` on MISO in the very next byte (§7.3.3.1).
* BUSY: MISO bytes 0x00 after R1b or a data response.

CRC in SPI mode is off unless CMD59 turned it on (§7.2.2), except for CMD0 and CMD8,
which a card always checks. ``crc_ok`` always reports the check; a finding is raised
only where the card itself would reject the CRC.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import numpy as np

from sdmodel.commands import Command, DataDir, SpiResp, lookup
from sdmodel.crc import crc7, crc16
from sdmodel.decode.edges import EdgeBatch
from sdmodel.decode.findings import make_finding
from sdmodel.decode.stream import TokenQueue
from sdmodel.registers import OCR_BUSY, OCR_CCS, SPI_R1, SPI_R2_STATUS
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    Line,
    ResponseToken,
    SpiToken,
    Token,
)

__all__ = [
    "SpiDecoder",
    "SpiCommandToken",
    "SpiResponseToken",
    "SpiDataToken",
    "SpiDataResponseToken",
    "SpiBusyToken",
    "SpiFindingToken",
]

NCR_MAX_BYTES = 8  # §7.5.4 / SanDisk table 5-5: N_CR 1..8 bytes (0 accepted)
_DATA_RESPONSE_SLACK = 8  # bytes searched for a misplaced data response
_START_BLOCK, _START_MULTI, _STOP_TRAN = 0xFE, 0xFC, 0xFD  # §7.3.3.2
_R1_ERRORS = 0x7E  # every R1 bit except "in idle state"
# The card did not execute the command (illegal, or CRC7 wrong with checking on): R1 only.
_R1_REJECTED = SPI_R1.field("ILLEGAL_COMMAND").mask | SPI_R1.field("COM_CRC_ERROR").mask
_FILL = (0xFF, 0x00)  # idle bytes a host clocks out


# --- SPI tokens: the shared token types with line = SPI ------------------------------------


@dataclass(slots=True)
class SpiCommandToken(CommandToken):
    line: ClassVar[Line] = Line.SPI


@dataclass(slots=True)
class SpiResponseToken(ResponseToken):
    """R1, R1b, R2 (R1 + status byte), R3/R7 (R1 + 32 bits). ``value`` holds every byte,
    R1 first; SPI responses carry no CRC."""

    nbytes: int = 1
    line: ClassVar[Line] = Line.SPI

    @property
    def raw(self) -> bytes:
        return self.value.to_bytes(self.nbytes, "big")

    @property
    def r1(self) -> int:
        return self.raw[0]

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "value": f"0x{self.value:0{2 * self.nbytes}X}",
                               "r1": f"0x{self.r1:02X}"}
        if self.for_index is not None:
            out["for_index"] = self.for_index
        return out

    def label(self) -> str:
        return f"{self.type} {self.raw.hex(' ').upper()}"


@dataclass(slots=True)
class SpiDataToken(DataToken):
    token_byte: int = _START_BLOCK  # 0xFE, or 0xFC inside CMD25
    crc_on: bool = False  # CMD59 had turned CRC checking on
    line: ClassVar[Line] = Line.SPI

    def fields(self) -> dict[str, Any]:
        out = DataToken.fields(self)
        out["crc_on"] = self.crc_on
        return out


@dataclass(slots=True)
class SpiDataResponseToken(CrcStatusToken):
    """The data response ``xxx0sss1`` after a written block (§7.3.3.1)."""

    value: int = 0x05
    line: ClassVar[Line] = Line.SPI

    def fields(self) -> dict[str, Any]:
        return {**CrcStatusToken.fields(self), "value": f"0x{self.value:02X}"}


@dataclass(slots=True)
class SpiBusyToken(BusyToken):
    line: ClassVar[Line] = Line.SPI


@dataclass(slots=True)
class SpiFindingToken(FindingToken):
    line: ClassVar[Line] = Line.SPI


# --- bytes from edges ----------------------------------------------------------------------


class _Bytes:
    """MOSI/MISO bytes with their times, assembled per CS# session, in a sliding window."""

    def __init__(self) -> None:
        self.base = 0
        self.mosi = np.zeros(0, np.uint8)
        self.miso = np.zeros(0, np.uint8)
        self.t0 = np.zeros(0, np.int64)  # first bit edge
        self.t1 = np.zeros(0, np.int64)  # last bit edge
        self.frame = np.zeros(0, np.int64)
        self._carry: tuple[np.ndarray, ...] | None = None  # bits of an unfinished byte
        self._starts: np.ndarray | None = None

    @property
    def end(self) -> int:
        return self.base + int(self.mosi.size)

    def append(self, batch: EdgeBatch) -> None:
        assert batch.frames is not None
        mosi, miso, cs = batch.levels
        sel = cs == 0
        cols = (batch.times[sel], mosi[sel], miso[sel], batch.frames[sel])
        if self._carry is not None:
            cols = tuple(np.concatenate((a, b)) for a, b in zip(self._carry, cols, strict=True))
            self._carry = None
        t, m, s, f = cols
        if t.size == 0:
            return
        bounds = np.flatnonzero(np.diff(f)) + 1
        starts = np.concatenate(([0], bounds))
        stops = np.concatenate((bounds, [t.size]))
        keep = np.zeros(t.size, dtype=bool)
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            whole = (b - a) // 8 * 8
            keep[a:a + whole] = True
        last = int(starts[-1])
        tail = last + (t.size - last) // 8 * 8
        if tail < t.size:  # the session may go on in the next batch
            self._carry = tuple(c[tail:] for c in cols)
        t, m, s, f = (c[keep] for c in cols)
        self.mosi = np.concatenate((self.mosi, np.packbits(m.reshape(-1, 8), axis=1).ravel()))
        self.miso = np.concatenate((self.miso, np.packbits(s.reshape(-1, 8), axis=1).ravel()))
        self.t0 = np.concatenate((self.t0, t[0::8]))
        self.t1 = np.concatenate((self.t1, t[7::8]))
        self.frame = np.concatenate((self.frame, f[0::8]))
        self._starts = None

    def trim(self, keep_from: int) -> None:
        cut = min(max(0, keep_from - self.base), int(self.mosi.size))
        if cut:
            self.mosi, self.miso = self.mosi[cut:], self.miso[cut:]
            self.t0, self.t1, self.frame = self.t0[cut:], self.t1[cut:], self.frame[cut:]
            self.base += cut
            self._starts = None

    def span(self, first: int, last: int) -> tuple[int, int, int]:
        """(start, end, bit period) of bytes ``first..last`` (absolute, inclusive)."""
        a, b = first - self.base, last - self.base
        period = int(self.t1[b] - self.t0[b]) // 7
        return int(self.t0[a]), int(self.t1[b]) + period, period

    def next_command(self, start: int, stop: int | None = None) -> int | None:
        """First MOSI byte ``01xxxxxx`` at or after ``start`` (and before ``stop``)."""
        if self._starts is None:
            self._starts = np.flatnonzero((self.mosi & 0xC0) == 0x40) + self.base
        i = int(np.searchsorted(self._starts, start))
        if i >= self._starts.size:
            return None
        found = int(self._starts[i])
        return found if stop is None or found < stop else None

    def next_other(self, line: np.ndarray, start: int, values: tuple[int, ...]) -> int | None:
        """First byte at or after ``start`` on ``line`` whose value is not in ``values``."""
        a = max(start - self.base, 0)
        window = line[a:]
        hit = np.flatnonzero(~np.isin(window, values))
        return int(hit[0]) + a + self.base if hit.size else None

    def get(self, line: np.ndarray, first: int, count: int) -> bytes:
        a = first - self.base
        return line[a:a + count].tobytes()


# --- the decoder ---------------------------------------------------------------------------


class _St(Enum):
    HUNT = "hunt"
    WAIT_READ = "wait read token"
    WAIT_WRITE = "wait write token"
    BUSY = "busy"


@dataclass
class _Phase:
    index: int
    app: bool
    to_card: bool
    nbytes: int
    multi: bool
    blocks: int = 0  # blocks seen so far


def _data_dir(cmd: Command, arg: int) -> DataDir:
    """SPI data phase of a command: CMD9/CMD10 send their register as a data block."""
    rd_wr = next((a for a in cmd.args if a.name == "RD_WR"), None)
    if rd_wr is not None:
        return DataDir.READ if rd_wr.get(arg) else DataDir.WRITE
    if cmd.data is DataDir.NONE and cmd.data_len is not None:
        return DataDir.READ
    return cmd.data


def _error_names(r1: int, status: int | None) -> str:
    names = [f.name for f in SPI_R1.fields if f.width == 1 and f.name != "IN_IDLE_STATE"
             and r1 & f.mask]
    if status:
        names += [f.name for f in SPI_R2_STATUS.fields if status & f.mask]
    return ", ".join(names)


class SpiDecoder:
    """Streaming SPI-mode decoder: ``feed`` edge batches (MOSI, MISO, CS#), ``finish``."""

    def __init__(self) -> None:
        self.bytes = _Bytes()
        self.queue = TokenQueue()
        self.pos = 0
        self.state = _St.HUNT
        self.phase: _Phase | None = None
        self.app_next = False
        self.crc_on = False
        self.block_len = 512
        self.high_capacity = False
        self.busy_start: int | None = None
        self.busy_time = 0
        self.busy_reason = ""
        self.after_busy = _St.HUNT
        self.warned = False  # one unexpected-byte finding per wait

    def feed(self, batch: EdgeBatch) -> list[Token]:
        self.bytes.append(batch)
        while self._step(final=False):
            pass
        return self._flush()

    def finish(self) -> list[Token]:
        while self._step(final=True):
            pass
        b = self.bytes
        if self.state is _St.BUSY and self.busy_start is not None and b.end:
            end = b.span(b.end - 1, b.end - 1)[1]
            self.queue.push(SpiBusyToken(self.busy_time, end, 0,
                                         reason=f"{self.busy_reason} (capture ends)"))
        elif self.state in (_St.WAIT_READ, _St.WAIT_WRITE) and self.phase is not None:
            if self.phase.blocks == 0 and b.end:
                t = b.span(b.end - 1, b.end - 1)[1]
                self._finding("truncated", t, t, 0, f"the capture ends in state {self.state.value}")
        return self.queue.pop_before(None)

    def _flush(self) -> list[Token]:
        b = self.bytes
        frontier = int(b.t0[self.pos - b.base]) if self.pos < b.end else (
            int(b.t1[-1]) + 1 if b.end > b.base else None)
        if self.state is _St.BUSY and frontier is not None:
            frontier = min(frontier, self.busy_time)
        b.trim(self.pos)
        if frontier is None:
            return []
        return self.queue.pop_before(frontier)

    def _step(self, final: bool) -> bool:
        if self.pos >= self.bytes.end:
            return False
        if self.state is _St.HUNT:
            return self._hunt(final)
        if self.state is _St.WAIT_READ:
            return self._wait_read(final)
        if self.state is _St.WAIT_WRITE:
            return self._wait_write(final)
        return self._busy(final)

    # --- commands and responses ------------------------------------------------------------

    def _hunt(self, final: bool) -> bool:
        b = self.bytes
        i = b.next_command(self.pos)
        if i is None:
            self.pos = b.end
            return False
        if not final and i + 6 + NCR_MAX_BYTES + 6 > b.end:
            self.pos = i
            return False
        if i + 6 > b.end:
            start, end, period = b.span(i, b.end - 1)
            self._finding("truncated", start, end, period, "the capture ends inside a command")
            self.pos = b.end
            return False
        if b.frame[i - b.base] != b.frame[i + 5 - b.base]:
            start, end, period = b.span(i, i)
            self._finding("spi_cmd_cut", start, end, period,
                          f"CS# went high inside a command starting 0x{b.mosi[i - b.base]:02X}")
            self.pos = i + 1
            return True
        self._command(i)
        return True

    def _command(self, i: int) -> None:
        b = self.bytes
        raw = b.get(b.mosi, i, 6)
        index, arg = raw[0] & 0x3F, int.from_bytes(raw[1:5], "big")
        crc_ok = raw[5] == (crc7(raw[:5]) << 1) | 1
        app = self.app_next
        cmd = lookup(index, app)
        self.app_next = cmd is not None and cmd.index == 55 and not cmd.app
        start, end, period = b.span(i, i + 5)
        token = SpiCommandToken(start, end, period, index=index, arg=arg, app=app, crc_ok=crc_ok)
        self.queue.push(token)
        always_checked = index in (0, 8) and not app  # §7.2.2: CMD0 (SD mode) and CMD8
        if not crc_ok and (self.crc_on or always_checked):
            self._finding("cmd_crc", start, end, period,
                          f"{token.name}: CRC byte 0x{raw[5]:02X}, expected "
                          f"0x{(crc7(raw[:5]) << 1) | 1:02X}")
        if index == 0 and not app:
            self.crc_on = False
        self.pos = i + 6
        self.state = _St.HUNT
        window = b.get(b.miso, i + 6, NCR_MAX_BYTES + 1)
        at = next((k for k, v in enumerate(window) if not v & 0x80), None)
        if at is None:
            if len(window) <= NCR_MAX_BYTES:
                self._finding("truncated", start, end, period,
                              f"the capture ends before the R1 to {token.name}")
            else:
                self._finding("no_response", start, end, period,
                              f"no R1 to {token.name} within {NCR_MAX_BYTES} bytes (N_CR)")
            return
        r = i + 6 + at
        kind = cmd.spi if cmd is not None and cmd.spi is not None else SpiResp.R1
        r1 = b.miso[r - b.base]
        if r1 & _R1_REJECTED:
            kind = SpiResp.R1  # a rejected command gets R1 only (v1 card: CMD8 -> 0x05; A.2)
        nbytes = min(kind.nbytes, b.end - r)
        resp = b.get(b.miso, r, nbytes)
        rs, re_, rp = b.span(r, r + nbytes - 1)
        self.queue.push(SpiResponseToken(rs, re_, rp, type=kind.value, index=index,
                                         value=int.from_bytes(resp, "big"), crc_ok=True,
                                         for_index=index, nbytes=nbytes))
        status = resp[1] if kind is SpiResp.R2 and nbytes > 1 else None
        if r1 & _R1_ERRORS or status:
            self._finding("card_error", rs, re_, rp,
                          f"{kind.value} to {token.name} reports {_error_names(r1, status)}")
        self.pos = r + nbytes
        if r1 & _R1_ERRORS or cmd is None:
            return
        self._learn(cmd, arg, resp, kind)
        if kind is SpiResp.R1B:
            self._enter_busy(self.pos, "R1b", _St.HUNT)
            return
        direction = _data_dir(cmd, arg)
        if direction is DataDir.NONE:
            return
        nbytes_data = cmd.data_len or (512 if self.high_capacity else self.block_len)
        multi = cmd.index in (18, 25) and not cmd.app
        self.phase = _Phase(cmd.index, cmd.app, direction is DataDir.WRITE, nbytes_data, multi)
        self.state = _St.WAIT_WRITE if direction is DataDir.WRITE else _St.WAIT_READ
        self.warned = False

    def _learn(self, cmd: Command, arg: int, resp: bytes, kind: SpiResp) -> None:
        if cmd.app:
            return
        if cmd.index == 59:
            self.crc_on = bool(arg & 1)
        elif cmd.index == 16 and 0 < arg <= 4096:
            self.block_len = arg
        elif cmd.index == 58 and kind is SpiResp.R3 and len(resp) == 5:
            ocr = int.from_bytes(resp[1:], "big")
            if ocr & OCR_BUSY:
                self.high_capacity = bool(ocr & OCR_CCS)

    # --- data ------------------------------------------------------------------------------

    def _wait_read(self, final: bool) -> bool:
        b = self.bytes
        ph = self.phase
        assert ph is not None
        k = b.next_other(b.miso, self.pos, (0xFF,))
        c = b.next_command(self.pos)
        if c is not None and (k is None or c < k):
            if ph.blocks == 0:
                self._no_token(c, "the host sent a command before the card's start-block token")
            self.state, self.phase, self.pos = _St.HUNT, None, c
            return True
        if k is None:
            self.pos = b.end
            return False
        token = int(b.miso[k - b.base])
        if token == _START_BLOCK:
            if k + 3 + ph.nbytes > b.end:
                if not final:
                    self.pos = k
                    return False
                start, end, period = b.span(k, b.end - 1)
                self._finding("truncated", start, end, period,
                              "the capture ends inside a read block")
                self.state, self.phase, self.pos = _St.HUNT, None, b.end
                return False
            self._read_block(k, ph)
            return True
        start, end, period = b.span(k, k)
        if token & 0xE0 == 0:  # data error token 000xxxxx (§7.3.3.3)
            self.queue.push(SpiToken(start, end, period, what="data_error",
                                          miso=bytes([token]), info={"value": f"0x{token:02X}"}))
            self._finding("spi_data_error_token", start, end, period,
                          f"data error token 0x{token:02X} instead of the block")
            self.state, self.phase = _St.HUNT, None
        elif not self.warned:
            self.warned = True
            self._finding("spi_unexpected_byte", start, end, period,
                          f"MISO 0x{token:02X} while waiting for the start-block token")
        self.pos = k + 1
        return True

    def _read_block(self, k: int, ph: _Phase) -> None:
        b = self.bytes
        n = ph.nbytes
        stop = b.next_command(k + 1, k + 3 + n)
        if stop is not None:  # CMD12 during a CMD18 block: the card stops sending
            start, end, period = b.span(k, stop - 1)
            self._finding("block_aborted", start, end, period,
                          f"read block cut short by a command after {stop - k - 1} bytes")
            self.state, self.phase, self.pos = _St.HUNT, None, stop
            return
        data = b.get(b.miso, k + 1, n)
        crc_bytes = b.get(b.miso, k + 1 + n, 2)
        self._data_token(k, ph, data, crc_bytes, _START_BLOCK)
        ph.blocks += 1
        self.pos = k + 3 + n
        if not ph.multi:
            self.state, self.phase = _St.HUNT, None

    def _wait_write(self, final: bool) -> bool:
        b = self.bytes
        ph = self.phase
        assert ph is not None
        k = b.next_other(b.mosi, self.pos, _FILL)
        if k is None:
            self.pos = b.end
            return False
        token = int(b.mosi[k - b.base])
        if token in (_START_BLOCK, _START_MULTI):
            need = k + 3 + ph.nbytes + 1 + _DATA_RESPONSE_SLACK
            if need > b.end and not final:
                self.pos = k
                return False
            if k + 3 + ph.nbytes > b.end:
                start, end, period = b.span(k, b.end - 1)
                self._finding("truncated", start, end, period,
                              "the capture ends inside a write block")
                self.state, self.phase, self.pos = _St.HUNT, None, b.end
                return False
            self._write_block(k, ph, token)
            return True
        if token == _STOP_TRAN and ph.multi:
            start, end, period = b.span(k, k)
            self.queue.push(SpiToken(start, end, period, what="stop_tran",
                                          mosi=bytes([token])))
            self.phase = None
            nxt = b.get(b.miso, k + 1, 2)  # N_BR: 0..1 byte, then busy
            zero = next((j for j, v in enumerate(nxt) if v == 0), None)
            self.pos = k + 1
            self.state = _St.HUNT
            if zero is not None:
                self._enter_busy(k + 1 + zero, "program", _St.HUNT)
            return True
        if token & 0xC0 == 0x40:
            if ph.blocks == 0:
                self._no_token(k, "the host sent a command instead of the start-block token")
            self.state, self.phase, self.pos = _St.HUNT, None, k
            return True
        if not self.warned:
            self.warned = True
            start, end, period = b.span(k, k)
            self._finding("spi_unexpected_byte", start, end, period,
                          f"MOSI 0x{token:02X} while waiting for a start-block token")
        self.pos = k + 1
        return True

    def _write_block(self, k: int, ph: _Phase, token: int) -> None:
        b = self.bytes
        n = ph.nbytes
        data = b.get(b.mosi, k + 1, n)
        crc_bytes = b.get(b.mosi, k + 1 + n, 2)
        self._data_token(k, ph, data, crc_bytes, token)
        ph.blocks += 1
        expected = k + 3 + n  # the byte right after the CRC (§7.3.3.1)
        window = b.get(b.miso, k + 1 + n, 2 + 1 + _DATA_RESPONSE_SLACK)
        found = [j for j, v in enumerate(window) if v & 0x11 == 0x01 and v != 0xFF]
        after = _St.WAIT_WRITE if ph.multi else _St.HUNT
        if not ph.multi:
            self.phase = None
        self.state = after
        if not found:
            start, end, period = b.span(expected - 1, expected - 1)
            self._finding("spi_no_data_response", start, end, period,
                          "no data response (xxx0sss1) after the written block")
            self.pos = expected
            return
        at = k + 1 + n + found[0]
        value = int(b.miso[at - b.base])
        start, end, period = b.span(at, at)
        status = (value >> 1) & 0b111
        self.queue.push(SpiDataResponseToken(start, end, period, status=status, value=value))
        if at != expected:
            where = {k + 1 + n: "in the first CRC byte", k + 2 + n: "in the second CRC byte"}
            self._finding("spi_data_response_misplaced", start, end, period,
                          f"data response 0x{value:02X} "
                          f"{where.get(at, f'{at - expected} bytes after the CRC')}, "
                          "expected in the byte right after the 2 CRC bytes")
        if status != CrcStatus.ACCEPTED:
            meaning = {s.value: s.name.lower().replace("_", " ") for s in CrcStatus}
            self._finding("crc_status", start, end, period,
                          f"data response 0x{value:02X}: {meaning.get(status, 'invalid status')}")
        self.pos = at + 1
        if at + 1 < b.end and b.miso[at + 1 - b.base] == 0:
            self._enter_busy(at + 1, "program", after)

    def _data_token(self, k: int, ph: _Phase, data: bytes, crc_bytes: bytes, token: int) -> None:
        b = self.bytes
        n = len(data)
        sent = int.from_bytes(crc_bytes, "big")
        crc_ok = len(crc_bytes) == 2 and crc16(data) == sent
        start, end, period = b.span(k, k + 2 + n)
        tok = SpiDataToken(start, end, period, data=data, nbytes=n, width=1, crc_ok=crc_ok,
                           crcs=(sent,), to_card=ph.to_card, for_index=ph.index, app=ph.app,
                           token_byte=token, crc_on=self.crc_on)
        self.queue.push(tok)
        if not crc_ok and self.crc_on:
            self._finding("data_crc", start, end, period,
                          f"CRC16 0x{sent:04X}, expected 0x{crc16(data):04X} "
                          f"({'write' if ph.to_card else 'read'} block, CRC on)")

    def _no_token(self, at: int, why: str) -> None:
        start, end, period = self.bytes.span(at, at)
        self._finding("spi_no_data_token", start, end, period, why)

    # --- busy ------------------------------------------------------------------------------

    def _enter_busy(self, at: int, reason: str, after: _St) -> None:
        b = self.bytes
        if at >= b.end or b.miso[at - b.base] != 0:
            self.state = after
            return
        self.busy_start = at
        self.busy_time = int(b.t0[at - b.base])
        self.busy_reason = reason
        self.after_busy = after
        self.state = _St.BUSY
        self.pos = at

    def _busy(self, final: bool) -> bool:
        b = self.bytes
        k = b.next_other(b.miso, self.pos, (0x00,))
        c = b.next_command(self.pos)
        if k is None and c is None:
            self.pos = b.end
            return False
        if c is not None and (k is None or c < k):
            start, end, period = b.span(c, c)
            self._finding("cmd_while_busy", start, end, period,
                          f"a command starts on MOSI while the card is busy ({self.busy_reason})")
            k = c
            self.after_busy = _St.HUNT
        assert k is not None
        self.queue.push(SpiBusyToken(self.busy_time, int(b.t0[k - b.base]),
                                     b.span(k, k)[2], reason=self.busy_reason))
        self.busy_start = None
        self.state = self.after_busy
        self.pos = k
        return True

    def _finding(self, code: str, start: int, end: int, period: int, message: str) -> None:
        self.queue.push(make_finding(code, start, end, message, period=period, on=Line.SPI,
                                     cls=SpiFindingToken))
