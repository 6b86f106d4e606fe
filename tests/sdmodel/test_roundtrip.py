"""Round trip: bus tokens -> waveform -> logic-analyzer samples -> the real decoder -> the
same tokens (style guide 13: encode then decode gives the input back).

SD mode: random sessions a host and one card could produce, laid out with legal gaps
(reference §10) and typed by the command table: commands with random index and argument
(ACMDs after CMD55), their responses (some with a bad CRC, some missing), read and write
blocks of the command's length in 1-bit or 4-bit mode, CRC status, busy, and commands
with a bad CRC, which the card ignores. SPI mode: the real ``SpiCard`` driven by random
host operations; its byte runs are what the decoder must find again.

Every signal is rendered over the whole session and sampled 4 times per clock, as a
logic analyzer would; times must come back within one clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sdmodel.card import Card, CardOptions
from sdmodel.clock import SimClock
from sdmodel.commands import APP_COMMANDS, COMMANDS, Command, DataDir, Resp, lookup
from sdmodel.crc import command_frame, crc7, crc16, crc16_lanes
from sdmodel.decode.edges import edges_from_samples
from sdmodel.decode.sd import SdDecoder
from sdmodel.decode.spi import (
    SpiBusyToken,
    SpiCommandToken,
    SpiDataResponseToken,
    SpiDataToken,
    SpiDecoder,
    SpiResponseToken,
)
from sdmodel.registers import ERROR_BITS, OCR_BUSY, OCR_CCS, crc7_register
from sdmodel.spi import SpiCard
from sdmodel.storage import Storage
from sdmodel.tokens import (
    PS_PER_S,
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    IdleToken,
    ResponseToken,
    SpiToken,
    Token,
)
from sdmodel.trace import Trace
from sdmodel.waveform import SD_SIGNALS, SPI_SIGNALS, UNKNOWN, render

SAMPLES_PER_CLOCK = 4
SLOW, FAST = 2_500_000, 40_000  # 400 kHz identification, 25 MHz (ps)
NO_ERRORS = ~int(ERROR_BITS) & 0xFFFFFFFF
# Findings that only a badly laid-out session would cause; none may appear.
LAYOUT_FINDINGS = {
    "framing", "no_response", "late_response", "early_response", "unexpected_response",
    "rsp_end_bit", "cmd_while_busy", "data_end_bit", "crc_status_missing", "unexpected_data",
    "unexpected_busy", "missing_lines", "block_aborted", "truncated", "spi_cmd_cut",
    "spi_no_data_token", "spi_unexpected_byte", "spi_data_response_misplaced",
    "spi_no_data_response",
}
T = TypeVar("T", bound=Token)
ROUND_TRIP = settings(max_examples=100, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- tokens -> samples -> decoder ---------------------------------------------------------


def sample(tokens: list[Token], signals: tuple[str, ...], dt: int) -> tuple[np.ndarray, int]:
    """Every signal sampled each ``dt`` ps over the session (bit n = signals[n])."""
    t0 = min(t.start for t in tokens) - 8 * dt
    t1 = max(t.end for t in tokens) + 8 * dt
    times = np.arange(t0, t1, dt, dtype=np.int64)
    out = np.zeros(times.size, dtype=np.uint8)
    for bit, signal in enumerate(signals):
        levels = render(tokens, signal, t0, t1).at(times)
        assert UNKNOWN not in levels
        out |= levels << bit
    return out, t0


def decode(tokens: list[Token], signals: tuple[str, ...], dt: int) -> list[Token]:
    """What the decoder makes of the rendered session, times back on the trace's clock."""
    samples, t0 = sample(tokens, signals, dt)
    chunks = iter(np.array_split(samples, 3))  # streamed in blocks, as from a capture
    ch = {name: bit for bit, name in enumerate(signals)}
    if signals == SD_SIGNALS:
        decoder: SdDecoder | SpiDecoder = SdDecoder(4)
        batches = edges_from_samples(chunks, PS_PER_S // dt, samples.size, ch["CLK"],
                                     [ch["CMD"], ch["DAT0"], ch["DAT1"], ch["DAT2"], ch["DAT3"]])
    else:
        decoder = SpiDecoder()
        batches = edges_from_samples(chunks, PS_PER_S // dt, samples.size, ch["SCLK"],
                                     [ch["MOSI"], ch["MISO"], ch["CS"]], framing=ch["CS"])
    out = [t for batch in batches for t in decoder.feed(batch)] + decoder.finish()
    for tok in out:
        tok.start, tok.end = tok.start + t0, tok.end + t0
    return out


def assert_same(decoded: list[Token], expected: list[tuple[tuple[object, ...], Token]],
                key: Callable[[Token], tuple[object, ...] | None]) -> None:
    """The decoded tokens in order, each within one clock of the expected one."""
    found = [(k, t) for t in decoded if (k := key(t)) is not None]
    found.sort(key=lambda kt: (kt[1].start, str(kt[0][0])))
    expected = sorted(expected, key=lambda kt: (kt[1].start, str(kt[0][0])))
    assert [k for k, _ in found] == [k for k, _ in expected]
    for (_, got), (_, want) in zip(found, expected, strict=True):
        assert abs(got.start - want.start) <= want.period, (got, want)
        if not isinstance(want, FindingToken):  # a finding ends where the decoder resyncs
            assert abs(got.end - want.end) <= want.period, (got, want)
    layout = [t for t in decoded if isinstance(t, FindingToken) and t.code in LAYOUT_FINDINGS
              and key(t) is None]
    assert not layout, layout


# --- SD mode: sessions laid out like a host and a card ------------------------------------


def sd_key(t: Token) -> tuple[object, ...] | None:
    if isinstance(t, CommandToken):
        return ("cmd", t.index, t.arg, t.app, t.crc_ok)
    if isinstance(t, ResponseToken):
        return ("rsp", t.type, t.index, t.value, t.crc_ok)
    if isinstance(t, DataToken):
        return ("data", t.nbytes, t.width, t.crc_ok, t.crcs, t.data, t.to_card, t.for_index,
                t.app)
    if isinstance(t, CrcStatusToken):
        return ("crc_status", t.status)
    if isinstance(t, BusyToken):
        return ("busy",)
    if isinstance(t, FindingToken) and t.code in ("framing", "no_response"):
        return ("finding", t.code)
    return None


def inner_token(bits: np.ndarray) -> bool:
    """Whether a decoder resynchronising on a 1 -> 0 inside ``bits`` (idle ones after
    them) could find a valid command or response there (§2: CRC7 and end bit right)."""
    line = np.concatenate((bits, np.ones(136, dtype=np.uint8)))
    for q in np.flatnonzero((line[1:bits.size] == 0) & (line[:bits.size - 1] == 1)) + 1:
        w = line[q:q + 136]
        head = np.packbits(w[:40]).tobytes()
        crc_field = int("".join(map(str, w[40:47])), 2)
        if w[1] or (head[0] & 0x3F) != 0x3F:  # a command, or an R1/R6/R7 shape
            if crc7(head) == crc_field and w[47]:
                return True
        elif (crc_field == 0x7F and w[47]) or (  # R3, or R2 with the register's CRC7
                crc7(np.packbits(w[8:128]).tobytes()) == int("".join(map(str, w[128:135])), 2)
                and w[135]):
            return True
    return False


@dataclass
class SdSession:
    """A host and one card on the SD bus, step by step, with what a decoder must return.

    It keeps what earlier tokens imply, as the bus shows it: CMD55 makes the next command
    an ACMD, CMD16 and the R3 capacity bit set the block length, ACMD6 the bus width,
    R6 the RCA that CMD7 must carry to be answered."""

    draw: Callable[..., object]
    rnd: random.Random
    width: int
    period: int
    now: int = 0
    tokens: list[Token] = field(default_factory=list)
    expected: list[tuple[tuple[object, ...], Token]] = field(default_factory=list)
    app: bool = False
    block_len: int = 512
    high_capacity: bool = False
    rca: int | None = None
    unanswered: bool = False  # a command still waits for a response that never came

    def clocks(self, n: int) -> int:
        return n * self.period

    def emit(self, token: T, expected: Token | None = None) -> T:
        self.tokens.append(token)
        expect = token if expected is None else expected
        if (k := sd_key(expect)) is not None:
            self.expected.append((k, expect))
        return token

    def gap(self, lo: int, hi: int) -> int:
        return self.clocks(self.draw(st.integers(lo, hi)))

    # --- CMD line ------------------------------------------------------------------------

    def command(self, index: int, arg: int) -> CommandToken:
        start = self.now
        tok = CommandToken(start, start + self.clocks(48), self.period, index=index, arg=arg,
                           app=self.app)
        self.emit(tok)
        self.app = index == 55  # CMD55 (also after CMD55) makes the next one an ACMD
        self.unanswered = False
        if index == 0:
            self.rca = None
        self.now = tok.end + self.clocks(8)  # N_CC
        return tok

    def bad_command(self) -> None:
        """A command with a wrong CRC7: the card ignores it (no response, §4.5)."""
        index, arg = self.draw(st.integers(0, 63)), self.draw(st.integers(0, 0xFFFFFFFF))
        tok = CommandToken(self.now, self.now + self.clocks(48), self.period, index=index,
                           arg=arg, crc_ok=False)
        frame = bytearray(command_frame(index, arg))
        frame[5] ^= 0x02
        assume(not inner_token(np.unpackbits(np.frombuffer(bytes(frame), dtype=np.uint8))))
        self.emit(tok, FindingToken(tok.start, tok.end, self.period, code="framing"))
        self.now = tok.end + self.gap(136, 150)

    def response(self, cmd: CommandToken, resp: Resp, value: int, *, crc_ok: bool = True,
                 ) -> ResponseToken:
        start = cmd.end + self.gap(2, 20)  # N_CR
        index = 0x3F if resp in (Resp.R2, Resp.R3) else cmd.index
        tok = ResponseToken(start, start + self.clocks(resp.bits), self.period, type=resp.value,
                            index=index, value=value, crc_ok=crc_ok)
        self.emit(tok)
        self.now = max(self.now, tok.end + self.gap(8, 20))  # N_RC
        return tok

    def busy_after(self, end: int, *, always: bool = False) -> int:
        """Busy on DAT0 within 2 clocks of ``end`` (optional unless ``always``); returns
        when DAT0 is free."""
        if not always and not self.draw(st.booleans()):
            return end
        start = end + self.gap(0, 2)
        tok = self.emit(BusyToken(start, start + self.gap(1, 300), self.period))
        self.now = max(self.now, tok.end + self.gap(2, 10))
        return tok.end

    def status(self, errors: bool) -> int:
        value = self.draw(st.integers(0, 0xFFFFFFFF))
        return value if errors else value & NO_ERRORS

    def plain(self) -> None:
        """A command that moves no data, with the response its table row gives."""
        table = APP_COMMANDS if self.app else COMMANDS
        index = self.draw(st.sampled_from(sorted(table)) | st.integers(0, 63))
        cmd = lookup(index, self.app)
        if cmd is not None and cmd.data is not DataDir.NONE:
            self.data(cmd)
            return
        arg = self.draw(st.integers(0, 0xFFFFFFFF))
        resp = cmd.resp if cmd is not None else Resp.NONE
        label = cmd.label if cmd is not None else ""
        learns = label in ("CMD16", "ACMD6")  # their R1 must be right to take effect
        if label == "CMD16":  # SET_BLOCKLEN
            arg = self.draw(st.sampled_from((8, 16, 64, 512) if self.width == 4
                                            else (1, 3, 8, 64, 512)))
        elif label == "ACMD6":  # SET_BUS_WIDTH (§4.3.9)
            arg = 2 if self.width == 4 else 0
        elif label == "CMD23":
            arg = 0  # a block count for a next command this step does not send
        elif cmd is not None and cmd.other_rca:  # CMD7: only the addressed card answers
            rca = self.draw(st.sampled_from([0, self.rca or 1, 0x1234]))
            arg = rca << 16 | arg & 0xFFFF
            if rca == 0 or (self.rca is not None and rca != self.rca):
                resp = Resp.NONE
        tok = self.command(index, arg)
        if resp is Resp.NONE:
            return
        if not learns and self.draw(st.integers(0, 9)) == 0:  # the card stays silent
            self.expected.append((("finding", "no_response"),
                                  FindingToken(tok.end, tok.end, self.period)))
            self.unanswered = True
            self.now = tok.end + self.gap(70, 80)
            return
        crc_ok = learns or resp is Resp.R1B or resp is Resp.R3 or self.draw(
            st.integers(0, 5)) > 0
        value = self._value(resp, errors=not learns and resp is not Resp.R1B)
        if resp is Resp.R2 and not crc_ok:
            value ^= 0b10  # the register's own CRC7 is wrong (§2.2)
        rsp = self.response(tok, resp, value, crc_ok=crc_ok)
        if crc_ok:
            self._learn(cmd, resp, arg, value)
        if resp is Resp.R1B:
            self.busy_after(rsp.end)

    def _value(self, resp: Resp, errors: bool) -> int:
        if resp is Resp.R2:
            return crc7_register(self.draw(st.integers(0, (1 << 128) - 1)))
        return self.status(errors)

    def _learn(self, cmd: Command | None, resp: Resp, arg: int, value: int) -> None:
        if cmd is None:
            return
        if resp is Resp.R6:
            self.rca = value >> 16
        elif resp is Resp.R3 and value & OCR_BUSY:
            self.high_capacity = bool(value & OCR_CCS)
        elif not cmd.app and cmd.index == 16:
            self.block_len = arg

    # --- DAT lines -----------------------------------------------------------------------

    def block(self, start: int, nbytes: int, cmd: Command, to_card: bool, *,
              bad_crc: bool = False) -> DataToken:
        data = self.rnd.randbytes(nbytes)
        crcs = crc16_lanes(data, self.width)
        if bad_crc:
            crcs[0] ^= 1
        clocks = 1 + nbytes * 8 // self.width + 17
        return self.emit(DataToken(start, start + self.clocks(clocks), self.period, data=data,
                                   nbytes=nbytes, width=self.width, crc_ok=not bad_crc,
                                   crcs=tuple(crcs), to_card=to_card, for_index=cmd.index,
                                   app=cmd.app))

    def data(self, cmd: Command) -> None:
        """A data command: R1 and its blocks (§9); CMD12 ends an open multi-block one."""
        multi = cmd.index in (18, 25) and not cmd.app
        count = None
        if multi and not self.app and self.draw(st.booleans()):
            count = self.draw(st.integers(1, 3))
            set_count = self.command(23, count)
            self.response(set_count, Resp.R1, self.status(errors=False))
        arg = self.draw(st.integers(0, 0xFFFFFFFF))
        to_card = cmd.data is DataDir.WRITE
        if cmd.index == 56 and not cmd.app:  # GEN_CMD: bit 0 picks the direction
            to_card = not arg & 1
        nbytes = cmd.data_len or (512 if self.high_capacity else self.block_len)
        tok = self.command(cmd.index, arg)
        rsp = self.response(tok, Resp.R1, self.status(errors=False),
                            crc_ok=self.draw(st.integers(0, 5)) > 0)
        blocks = count or (self.draw(st.integers(1, 3)) if multi else 1)
        stopped = False
        if to_card:
            end = rsp.end
            for _ in range(blocks):
                bad = self.draw(st.integers(0, 9)) == 0
                blk = self.block(end + self.gap(2, 10), nbytes, cmd, True, bad_crc=bad)  # N_WR
                status = CrcStatus.CRC_ERROR if bad else self.draw(st.sampled_from(
                    [CrcStatus.ACCEPTED] * 4 + [CrcStatus.WRITE_ERROR]))
                crc_start = blk.end + self.gap(2, 8)  # N_CRC
                crc = self.emit(CrcStatusToken(crc_start, crc_start + self.clocks(5),
                                               self.period, status=int(status)))
                # §9: the card holds DAT0 low after the token while it programs
                end = self.busy_after(crc.end, always=status is CrcStatus.ACCEPTED)
                self.now = max(self.now, end + self.gap(2, 10))
                if status is not CrcStatus.ACCEPTED:  # the card takes no more blocks (§9)
                    stopped = True
                    break
        else:
            end = tok.end
            for _ in range(blocks):
                blk = self.block(end + self.gap(2, 30), nbytes, cmd, False)  # N_AC
                end = blk.end
            self.now = max(self.now, end + self.gap(2, 10))
        if multi and (count is None or stopped):
            stop = self.command(12, 0)
            rsp = self.response(stop, Resp.R1B, self.status(errors=False))
            self.busy_after(rsp.end)

    # --- a whole session -----------------------------------------------------------------

    def step(self) -> None:
        kind = self.draw(st.sampled_from(["plain"] * 4 + ["data"] * 3 + ["bad", "app"]))
        if kind == "bad" and not self.unanswered:
            self.bad_command()
            return
        if kind != "plain" and not self.app and self.draw(st.booleans()):
            cmd55 = self.command(55, (self.rca or 0) << 16)  # an ACMD next (§4.3.9)
            self.response(cmd55, Resp.R1, self.status(errors=False))
        if kind == "data":
            self.data(self.draw(st.sampled_from(DATA_COMMANDS[self.app])))
        else:
            self.plain()


# The data commands a card takes as a plain command, and after CMD55 (§4.7.4, §4.3.9).
DATA_COMMANDS = {app: [c for i in range(64) if (c := lookup(i, app)) is not None
                       and c.data is not DataDir.NONE] for app in (False, True)}


def sd_session(data: st.DataObject, width: int) -> SdSession:
    seed = data.draw(st.integers(0, 2**32 - 1))
    session = SdSession(data.draw, random.Random(seed), width, SLOW)
    session.emit(IdleToken(0, session.clocks(74), SLOW, reason="power-up"))  # §1 power-up
    session.now = session.clocks(80)
    for _ in range(data.draw(st.integers(0, 2))):  # identification at 400 kHz
        session.plain()
    session.period = data.draw(st.sampled_from([FAST, FAST // 2]))  # 25 or 50 MHz
    session.now = -(-session.now // SLOW) * SLOW  # the switch at a slow clock edge
    for _ in range(data.draw(st.integers(1, 8))):
        session.step()
    end = max(t.end for t in session.tokens)
    session.emit(IdleToken(end, end + session.clocks(80), session.period))  # host clocks on
    return session


def sd_round_trip(data: st.DataObject, width: int) -> None:
    session = sd_session(data, width)
    dt = session.period // SAMPLES_PER_CLOCK
    assert_same(decode(session.tokens, SD_SIGNALS, dt), session.expected, sd_key)


@ROUND_TRIP
@given(st.data())
def test_sd_1bit_sessions_decode_to_the_same_tokens(data: st.DataObject) -> None:
    sd_round_trip(data, width=1)


@ROUND_TRIP
@given(st.data())
def test_sd_4bit_sessions_decode_to_the_same_tokens(data: st.DataObject) -> None:
    sd_round_trip(data, width=4)


# --- SPI mode: the simulated card's byte runs ----------------------------------------------

FF = b"\xff"
SPI_SLOW, SPI_FAST = 1_000_000, 25_000_000  # Hz: initialisation, then data
BLOCK = 512


def spi_key(t: Token) -> tuple[object, ...] | None:
    """The decoder's tokens, or the card's own runs of bytes, as comparable tuples."""
    if isinstance(t, SpiCommandToken):
        return ("cmd", t.index, t.arg, t.crc_ok)
    if isinstance(t, SpiResponseToken):
        return ("rsp", t.raw)
    if isinstance(t, SpiDataToken):
        return ("data", t.data, t.crcs[0], t.to_card)
    if isinstance(t, SpiDataResponseToken):
        return ("data_response", t.value)
    if isinstance(t, SpiBusyToken):
        return ("busy",)
    if isinstance(t, SpiToken):
        return _run_key(t)
    return None


def _run_key(run: SpiToken) -> tuple[object, ...] | None:
    mosi, miso = run.mosi or b"", run.miso or b""
    match run.what:
        case "cmd":
            return ("cmd", mosi[0] & 0x3F, int.from_bytes(mosi[1:5], "big"),
                    mosi[5] == (crc7(mosi[:5]) << 1) | 1)
        case "rsp":
            return ("rsp", miso)
        case "data" if mosi[:1] in (b"\xfe", b"\xfc"):
            return ("data", mosi[1:-2], int.from_bytes(mosi[-2:], "big"), True)
        case "data":
            return ("data", miso[1:-2], int.from_bytes(miso[-2:], "big"), False)
        case "data_response" | "data_error":
            return (run.what, miso[0]) if run.what == "data_response" else (run.what,)
        case "busy" | "stop_tran":
            return (run.what,)
    return None


def whole_commands(runs: list[SpiToken]) -> list[SpiToken]:
    """The runs with every command frame in one run: SpiCard starts a new run when its
    next read token goes out during the host's CMD12, cutting that "cmd" run in two."""
    out: list[SpiToken] = []
    for run in runs:
        last = out[-1] if out else None
        if (last is not None and last.what == run.what == "cmd" and len(last.mosi or b"") < 6
                and last.end == run.start):
            out[-1] = SpiToken(last.start, run.end, last.period, what="cmd",
                               mosi=(last.mosi or b"") + (run.mosi or b""),
                               miso=(last.miso or b"") + (run.miso or b""))
        else:
            out.append(run)
    return out


@dataclass
class SpiHost:
    """A host driving the simulated card the way the real SPI drivers do (A.5, A.6)."""

    spi: SpiCard
    rnd: random.Random

    async def xfer(self, mosi: bytes) -> bytes:
        return await self.spi.transfer(mosi)

    async def command(self, index: int, arg: int = 0, *, bad_crc: bool = False) -> int:
        """Command frame, then bytes until the R1 (N_CR); returns R1."""
        frame = bytearray(command_frame(index, arg))
        if bad_crc:
            frame[5] ^= 0x02
        await self.xfer(bytes(frame))
        for _ in range(9):
            r1 = (await self.xfer(FF))[0]
            if not r1 & 0x80:
                return r1
        return 0xFF

    async def rest(self, nbytes: int) -> bytes:
        return await self.xfer(FF * nbytes)

    async def until(self, wanted: Callable[[int], bool], limit: int = 20_000) -> int:
        for _ in range(limit):
            byte = (await self.xfer(FF))[0]
            if wanted(byte):
                return byte
        raise AssertionError("the card never answered")

    async def read_block(self, nbytes: int = BLOCK) -> None:
        if await self.until(lambda b: b != 0xFF) == 0xFE:
            await self.rest(nbytes + 2)

    async def not_busy(self) -> None:
        await self.until(lambda b: b == 0xFF)

    async def init(self) -> None:
        """CMD0, CMD8, ACMD41 until ready, CMD58 (A.6 canonical flow)."""
        await self.command(0)
        if await self.command(8, 0x1AA) == 0x01:
            await self.rest(4)
        while True:
            await self.command(55)
            if await self.command(41, 1 << 30) == 0:
                break
        await self.command(58)
        await self.rest(4)

    def addr(self, lba: int) -> int:
        return lba if self.spi.card.block_addressed else lba * BLOCK

    async def op(self, kind: str) -> None:
        rnd = self.rnd
        lba = rnd.randrange(64)
        if kind == "read":
            if await self.command(17, self.addr(lba)) == 0:
                await self.read_block()
        elif kind == "multi_read":
            if await self.command(18, self.addr(lba)) == 0:
                for _ in range(rnd.randrange(1, 4)):
                    await self.read_block()
                await self.command(12)  # right after a CRC: the card sends N_AC fill
                await self.not_busy()
        elif kind == "write":
            if await self.command(24, self.addr(lba)) == 0:
                data = rnd.randbytes(BLOCK)
                good = crc16(data) if rnd.random() < 0.8 else crc16(data) ^ 1
                await self.xfer(FF + b"\xfe" + data + good.to_bytes(2, "big"))
                await self.rest(1)  # data response
                await self.not_busy()
        elif kind == "multi_write":
            if await self.command(25, self.addr(lba)) == 0:
                for _ in range(rnd.randrange(1, 4)):
                    data = rnd.randbytes(BLOCK)
                    await self.xfer(FF + b"\xfc" + data + crc16(data).to_bytes(2, "big"))
                    await self.rest(1)
                    await self.not_busy()
                await self.xfer(b"\xfd")
                await self.rest(1)  # N_BR
                await self.not_busy()
        elif kind in ("csd", "cid"):
            if await self.command(9 if kind == "csd" else 10) == 0:
                await self.read_block(16)
        elif kind == "status":
            await self.command(13)
            await self.rest(1)
        elif kind == "scr":
            await self.command(55)
            if await self.command(51) == 0:
                await self.read_block(8)
        elif kind == "crc":
            await self.command(59, rnd.randrange(2))
        elif kind == "bad_crc":  # CRC on: R1 with the CRC error bit, not executed (A.2)
            await self.command(rnd.choice([13, 8, 58, 16]), rnd.getrandbits(32), bad_crc=True)
            await self.rest(4)
        elif kind == "illegal":
            await self.command(5)
        elif kind == "reselect":  # CS# high for a byte, as elm-chan does between commands
            self.spi.select(False)
            await self.rest(1)
            self.spi.select(True)
            await self.rest(1)


@pytest.fixture(scope="module")
def spi_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spi") / "sdsc.img"
    path.write_bytes(bytes(range(256)) * 4 * 1024)  # 1 MiB SDSC
    return path


def spi_runs(image: Path, ops: list[str], seed: int, fast: bool) -> list[SpiToken]:
    async def main() -> list[SpiToken]:
        storage = Storage.open(image)
        clock, trace = SimClock(SPI_SLOW), Trace()
        spi = SpiCard(Card(storage, CardOptions()), trace, clock)
        host = SpiHost(spi, random.Random(seed))
        try:
            await host.rest(10)  # >= 74 clocks with CS# high (A.1)
            spi.select(True)
            await host.init()
            if fast:
                spi.flush_trace()
                clock.set_frequency(SPI_FAST)
            for kind in ops:
                await host.op(kind)
            spi.select(False)
            await host.rest(1)
            spi.flush_trace()
        finally:
            spi.close()
            storage.close()
        return [t for t in trace.tokens if isinstance(t, SpiToken)]

    return asyncio.run(main())


OPS = ["read", "multi_read", "write", "multi_write", "csd", "cid", "status", "scr", "crc",
       "bad_crc", "illegal", "reselect"]


@ROUND_TRIP
@given(ops=st.lists(st.sampled_from(OPS), max_size=6), seed=st.integers(0, 2**32 - 1),
       fast=st.booleans())
def test_spi_sessions_decode_to_the_card_byte_runs(spi_image: Path, ops: list[str], seed: int,
                                                    fast: bool) -> None:
    runs = spi_runs(spi_image, ops, seed, fast)
    expected = [(k, run) for run in whole_commands(runs) if (k := spi_key(run)) is not None]
    dt = min(r.period for r in runs) // SAMPLES_PER_CLOCK
    assert_same(decode(list(runs), SPI_SIGNALS, dt), expected, spi_key)



def test_decoded_findings_report_their_own_line_in_json() -> None:
    """A finding on DAT (a block's bad CRC16) says DAT in its JSON line, not CMD."""
    data = bytes(range(64))
    crcs = crc16_lanes(data, 1)
    tokens: list[Token] = [
        IdleToken(0, 80 * FAST, FAST),
        CommandToken(80 * FAST, 128 * FAST, FAST, index=6, arg=0),
        ResponseToken(130 * FAST, 178 * FAST, FAST, type="R1", index=6, value=0x900),
        DataToken(140 * FAST, (140 + 1 + 512 + 17) * FAST, FAST, data=data, nbytes=64,
                  crcs=(crcs[0] ^ 1,)),
        IdleToken(700 * FAST, 780 * FAST, FAST),
    ]
    findings = [t for t in decode(tokens, SD_SIGNALS, FAST // 4) if isinstance(t, FindingToken)]
    assert [(f.code, f.to_json()["line"]) for f in findings] == [("data_crc", "DAT")]
    assert "on" not in findings[0].to_json()
