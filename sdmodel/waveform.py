"""Bus tokens -> line levels: the waveform of one signal over a time window.

Waveforms are never stored bit by bit (design.md "Time and events"): a view asks for a
window and gets numpy edge arrays rendered from the tokens in it. The encoding is
bit-exact, so the decoder reads the tokens back: commands and responses per §2
(reference §2.1, §2.2), CRC7/CRC16 per §3, data blocks, CRC status and busy per §9, SPI
bytes per Part A.

Timing: bit i of a token occupies [start + i*period, start + (i+1)*period). CLK (SCLK) is
low in the first half of each period and rises at mid-period, where the receiver samples
(§1 "Sampling edges", A.1 SPI mode 0); lines change with the falling edge. SD lines idle
high (pull-ups); the SD clock runs from the first token to the end of the last one (the
host clocks N_CR/N_AC/busy too), at the period of the last token that began. SCLK runs
only inside SPI byte runs (8 clocks per byte).

Windows holding more than ``max_edges`` edges are decimated like peak downsampling: the
window splits into ``max_edges // 2`` buckets and a bucket with a transition inside
shows both levels. Clock edges are counted arithmetically and data bits are unpacked
only for tokens that span several buckets, so a 10 s window at 50 MHz stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import numpy as np

from sdmodel.crc import command_frame, crc7, crc16_lanes
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatusToken,
    DataToken,
    IdleToken,
    Line,
    ResponseToken,
    SpiToken,
    Token,
)

__all__ = [
    "SD_SIGNALS",
    "SPI_SIGNALS",
    "UNKNOWN",
    "EXACT_BITS",
    "Edges",
    "render",
    "signals_for",
    "is_bus_token",
]

SD_SIGNALS = ("CLK", "CMD", "DAT0", "DAT1", "DAT2", "DAT3")
SPI_SIGNALS = ("CS", "SCLK", "MOSI", "MISO")
UNKNOWN = 2  # a bit whose payload the trace dropped (drawn as a hatched band)
# Above this many bits on a line in the window, a decimated window is built from token
# boundaries without unpacking the bits of tokens that fit inside one bucket.
EXACT_BITS = 1 << 18

_SD_BUS = (CommandToken, ResponseToken, DataToken, CrcStatusToken, BusyToken, IdleToken)
_ALT = np.array([1, 0, 1], dtype=np.uint8)  # the other level to show in a busy bucket


@dataclass(frozen=True)
class Edges:
    """A signal over [t0, t1): ``levels[i]`` holds from ``times[i]`` until ``times[i+1]``
    (or the window end). ``times[0]`` is t0, times strictly increase, neighbours differ."""

    times: np.ndarray  # int64 ps
    levels: np.ndarray  # uint8: 0, 1 or UNKNOWN

    def __len__(self) -> int:
        return int(self.times.size)

    def at(self, times: np.ndarray | int) -> np.ndarray:
        """The level at each of ``times`` (times before t0 read the level at t0)."""
        i = np.searchsorted(self.times, times, side="right") - 1
        return self.levels[np.maximum(i, 0)]


def is_bus_token(token: Token) -> bool:
    """Tokens that drive bus lines (not findings, state, register or IRQ events)."""
    if isinstance(token, SpiToken):
        return True
    return isinstance(token, _SD_BUS) and token.line is not Line.SPI


def signals_for(tokens: Iterable[Token]) -> tuple[str, ...]:
    """SPI_SIGNALS if the tokens are SPI byte runs, else SD_SIGNALS."""
    spi = any(isinstance(t, SpiToken) for t in tokens)
    return SPI_SIGNALS if spi else SD_SIGNALS


# --- token frames (§2, §3, §9) --------------------------------------------------------------


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def _word(value: int, nbits: int) -> np.ndarray:
    return _bits(value.to_bytes((nbits + 7) // 8, "big"))[-nbits:]


def _command_bits(token: CommandToken) -> np.ndarray:
    """48 bits: 0, 1, index, argument, CRC7 (a wrong one when crc_ok is False), 1 (§2.1)."""
    frame = bytearray(command_frame(token.index, token.arg))
    if not token.crc_ok:
        frame[5] ^= 0x02  # CRC7 bit 0 sits in bit 1 of the last byte
    return _bits(bytes(frame))


def _short_response(token: ResponseToken) -> bytes:
    """R1/R1b/R6/R7: 0, 0, index field, 32-bit payload, CRC7 over bits 47:8, 1 (§2.2)."""
    head = bytes([token.index & 0x3F]) + (token.value & 0xFFFFFFFF).to_bytes(4, "big")
    crc = crc7(head) ^ (0 if token.crc_ok else 1)
    return head + bytes([(crc << 1) | 1])


def _r3(token: ResponseToken) -> bytes:
    """R3: 0, 0, index field, OCR, CRC field all ones, 1 (§2.2: no CRC)."""
    return bytes([token.index & 0x3F]) + (token.value & 0xFFFFFFFF).to_bytes(4, "big") + b"\xff"


def _r2(token: ResponseToken) -> bytes:
    """R2: 0, 0, 111111, register bits 127:1, 1 (§2.2). Bits 7:1 are the register's own
    CRC7 over bits 127:8; they go out as the value holds them when they agree with crc_ok
    (a simulated CID/CSD, or a decoded bad one), else corrected or spoiled to agree."""
    reg = (token.value & ((1 << 128) - 1)) | 1
    good = crc7((reg >> 8).to_bytes(15, "big"))
    held = (reg >> 1) & 0x7F
    if (held == good) != token.crc_ok:
        reg = (reg & ~0xFE) | ((good ^ (0 if token.crc_ok else 1)) << 1)
    return b"\x3f" + reg.to_bytes(16, "big")


_RESPONSES: dict[str, Callable[[ResponseToken], bytes]] = {
    "R1": _short_response,
    "R1b": _short_response,
    "R6": _short_response,
    "R7": _short_response,
    "R3": _r3,
    "R2": _r2,
}


def _response_bits(token: ResponseToken) -> np.ndarray:
    try:
        frame = _RESPONSES[token.type]
    except KeyError:
        raise ValueError(f"unknown SD response type {token.type!r}") from None
    return _bits(frame(token))


def _lanes(blocks: np.ndarray, width: int, line: int) -> np.ndarray:
    """The data bits on DAT``line`` of each block (a row of bytes): MSB first in 1-bit
    mode; in 4-bit mode bit line+4, then bit ``line``, of every byte (§3 table): the
    streams of crc.split_lanes."""
    if width == 1:
        return np.unpackbits(blocks, axis=1)
    if width != 4:
        raise ValueError(f"bus width must be 1 or 4, not {width}")
    out = np.empty((blocks.shape[0], 2 * blocks.shape[1]), dtype=np.uint8)
    out[:, 0::2] = (blocks >> (line + 4)) & 1
    out[:, 1::2] = (blocks >> line) & 1
    return out


def _data_bits(token: DataToken, line: int) -> np.ndarray:
    return _data_bits_many([token], line)[0]


def _data_bits_many(tokens: Sequence[DataToken], line: int) -> list[np.ndarray]:
    """DAT``line`` of each block: 0, its data bits, its CRC16, 1 (§9); the blocks of one
    shape in one numpy pass (a window of a transfer holds hundreds). A dropped payload
    reads UNKNOWN; the CRC goes out as sent (``crcs``), so a bad CRC stays bad."""
    shapes: dict[tuple[int, int, bool], list[int]] = {}
    for k, t in enumerate(tokens):
        whole = t.data is not None and len(t.data) == t.nbytes
        shapes.setdefault((t.nbytes, t.width, whole), []).append(k)
    out = [np.empty(0, dtype=np.uint8)] * len(tokens)
    for (nbytes, width, whole), ks in shapes.items():
        blocks = [tokens[k] for k in ks]
        per_line = nbytes * 8 // width
        bits = np.empty((len(ks), per_line + 18), dtype=np.uint8)
        bits[:, 0], bits[:, -1] = 0, 1
        crcs = [t.crcs for t in blocks]
        if whole:
            raw = np.frombuffer(b"".join(t.data or b"" for t in blocks), dtype=np.uint8)
            bits[:, 1:1 + per_line] = _lanes(raw.reshape(len(ks), nbytes), width,
                                             line)[:, :per_line]
            crcs = [c or tuple(crc16_lanes(t.data or b"", width))
                    for c, t in zip(crcs, blocks, strict=True)]
        else:
            bits[:, 1:1 + per_line] = UNKNOWN
        crc = np.array([c[line] if line < len(c) else -1 for c in crcs], dtype=np.int64)
        bits[:, 1 + per_line:-1] = (crc[:, None] >> np.arange(15, -1, -1)) & 1
        bits[crc < 0, 1 + per_line:-1] = UNKNOWN  # no CRC kept for this line
        for k, row in zip(ks, bits, strict=True):
            out[k] = row
    return out


def _crc_status_bits(token: CrcStatusToken) -> np.ndarray:
    """0 sss 1 on DAT0 (§9)."""
    return np.concatenate(([0], _word(int(token.status) & 7, 3), [1])).astype(np.uint8)


# --- pieces: a line as runs of bits -----------------------------------------------------------

# A piece's bits: a full array, or bytes unpacked only in the range asked for (long SPI runs).
Maker = Callable[[Any, int], "np.ndarray | bytes"]


def _frame(build: Callable[[Any], np.ndarray]) -> Maker:
    return lambda token, line: build(token)


def _level(level: int, line: int) -> np.ndarray:
    return np.array([level], dtype=np.uint8)


def _payload(payload: bytes, line: int) -> bytes:
    return payload


_COMMAND, _RESPONSE = _frame(_command_bits), _frame(_response_bits)
_CRC_STATUS = _frame(_crc_status_bits)

# start, period, nbits, first bit, last bit, bits change inside, maker, its object, line
_Row = tuple[int, int, int, int, int, bool, Maker, Any, int]
R = TypeVar("R")


class _Rows(Generic[R]):
    """Row builders by token class, each for tokens on one line (a decoded SPI command is
    a CommandToken on the SPI line): resolved once per class, then a dict lookup."""

    def __init__(self, *table: tuple[type[Token], Line, Callable[[Any], R | None]]) -> None:
        self.table = table
        self.cache: dict[type, Callable[[Any], R | None] | None] = {}

    def __call__(self, tokens: Iterable[Token]) -> list[R]:
        out = []
        cache = self.cache
        for t in tokens:
            if type(t) in cache:
                build = cache[type(t)]
            else:
                build = cache[type(t)] = self._resolve(type(t))
            if build is not None and (row := build(t)) is not None:
                out.append(row)
        return out

    def _resolve(self, cls: type) -> Callable[[Any], R | None] | None:
        for base, line, build in self.table:
            if issubclass(cls, base) and getattr(cls, "line", None) is line:
                return build
        return None


def _sd_row(token: Token, nbits: int, make: Maker, line: int = 0) -> _Row | None:
    """An SD token: a start bit 0 first, an end bit 1 last, so its bits always change."""
    period = token.period or (token.end - token.start) // nbits
    return (token.start, period, nbits, 0, 1, True, make, token, line) if period > 0 else None


def _constant(start: int, end: int, level: int) -> _Row | None:
    return (start, end - start, 1, level, level, False, _level, level, 0) if end > start else None


def _data_row(t: DataToken, line: int) -> _Row | None:
    return _sd_row(t, 1 + t.nbytes * 8 // t.width + 17, _data_bits, line) \
        if line < t.width else None


def _spi_row(t: SpiToken, side: str) -> _Row | None:
    payload: bytes | None = getattr(t, side)
    if not payload or t.period <= 0:  # dropped by the trace, not recorded, or no clock
        return _constant(t.start, t.end, UNKNOWN)
    varies = payload.count(payload[:1]) != len(payload) or payload[0] not in (0, 0xFF)
    return (t.start, t.period, 8 * len(payload), payload[0] >> 7, payload[-1] & 1, varies,
            _payload, payload, 0)


def _dat_rows(line: int) -> _Rows[_Row]:
    data = (DataToken, Line.DAT, partial(_data_row, line=line))
    if line:
        return _Rows(data)
    return _Rows(data, (CrcStatusToken, Line.DAT, lambda t: _sd_row(t, 5, _CRC_STATUS)),
                 (BusyToken, Line.DAT, lambda t: _constant(t.start, t.end, 0)))  # §9 busy


_LINES: dict[str, _Rows[_Row]] = {
    "CMD": _Rows((CommandToken, Line.CMD, lambda t: _sd_row(t, 48, _COMMAND)),
                 (ResponseToken, Line.CMD,
                  lambda t: _sd_row(t, 136 if t.type == "R2" else 48, _RESPONSE))),
    **{f"DAT{n}": _dat_rows(n) for n in range(4)},
    "MOSI": _Rows((SpiToken, Line.SPI, partial(_spi_row, side="mosi"))),
    "MISO": _Rows((SpiToken, Line.SPI, partial(_spi_row, side="miso"))),
    # CS# low while the card is selected
    "CS": _Rows((SpiToken, Line.SPI, lambda t: None if t.what == "deselected"
                 else _constant(t.start, t.end, 0))),
}
# Tokens that set the SD clock: every SD bus token, as (start, period, end).
_SD_CLOCKED: _Rows[tuple[int, int, int]] = _Rows(*((cls, line, lambda t: (t.start, t.period, t.end))
                      for cls in _SD_BUS for line in (Line.CMD, Line.DAT)))


# --- clocks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """Clock segments [a, b) of period p, low for the first p // 2 of each period, low
    outside the segments. Transitions are counted and levels evaluated arithmetically."""

    a: np.ndarray
    b: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, p: np.ndarray) -> _Clock:
        keep = (b > a) & (p >= 2)
        a, b, p = a[keep], b[keep], p[keep]
        if a.size > 1:  # merge segments that continue the same clock
            joined = (b[:-1] == a[1:]) & (p[:-1] == p[1:]) & ((a[1:] - a[:-1]) % p[1:] == 0)
            first = np.flatnonzero(np.concatenate(([True], ~joined)))
            last = np.concatenate((first[1:] - 1, [a.size - 1]))
            a, b, p = a[first], b[last], p[first]
        return cls(a, b, p)

    @property
    def h(self) -> np.ndarray:
        return self.p // 2

    def level_at(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.int64)
        if self.a.size == 0:
            return np.zeros(t.shape, dtype=np.uint8)
        i = np.searchsorted(self.a, t, side="right") - 1
        c = np.maximum(i, 0)
        inside = (i >= 0) & (t < self.b[c])
        return (inside & ((t - self.a[c]) % self.p[c] >= self.h[c])).astype(np.uint8)

    @staticmethod
    def _inner(a: np.ndarray, p: np.ndarray, h: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Transitions at times in (a, t) inside one segment: rises at a+kp+h, falls a+kp."""
        rises = np.where(t > a + h, (t - a - h - 1) // p + 1, 0)
        falls = np.where(t > a, (t - a - 1) // p, 0)
        return rises + falls

    def count_before(self, t: np.ndarray) -> np.ndarray:
        """Transitions at times < t."""
        t = np.asarray(t, dtype=np.int64)
        a, b, p, h = self.a, self.b, self.p, self.h
        if a.size == 0:
            return np.zeros(t.shape, dtype=np.int64)
        high_at_end = (b - 1 - a) % p >= h
        touching = b[:-1] == a[1:]
        fall_in = np.concatenate(([False], touching & high_at_end[:-1]))
        fall_out = high_at_end & ~np.concatenate((touching, [False]))
        whole = fall_in + self._inner(a, p, h, b) + fall_out
        before = np.concatenate(([0], np.cumsum(whole)))
        i = np.searchsorted(a, t, side="left") - 1
        c = np.maximum(i, 0)
        n = (before[c] + fall_in[c] + self._inner(a[c], p[c], h[c], np.minimum(t, b[c]))
             + (fall_out[c] & (t > b[c])))
        return np.where(i >= 0, n, 0)

    def points(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        """Points of the segments reaching into [t0, t1), in time order, from the period
        holding t0 on: a fall at each period's start, a rise at its middle and a fall at
        the segment's end. Where segments touch, the next one's first fall repeats that
        last one (same time, same level)."""
        times = [np.zeros(0, dtype=np.int64)]
        levels = [np.zeros(0, dtype=np.uint8)]
        lo, hi = np.searchsorted(self.b, t0, side="right"), np.searchsorted(self.a, t1)
        for a, b, p in zip(self.a[lo:hi].tolist(), self.b[lo:hi].tolist(),
                           self.p[lo:hi].tolist(), strict=True):
            stop, h = min(b, t1), p // 2
            first = a + max(0, (t0 - a) // p) * p
            falls = (stop - 1 - first) // p + 1
            rises = max(0, (stop - 1 - first - h) // p + 1)
            n = falls + rises  # falls and rises alternate, up to the last edge before stop
            edge = np.empty(n + 1, dtype=np.int64)
            edge[0:n:2] = np.arange(first, first + falls * p, p, dtype=np.int64)
            edge[1:n:2] = edge[0:2 * rises:2] + h
            edge[n] = b
            level = np.zeros(n + 1, dtype=np.uint8)
            level[1:n:2] = 1
            times.append(edge)
            levels.append(level)
        return np.concatenate(times), np.concatenate(levels)


def _sd_clock(tokens: Sequence[Token], clock_end: int | None) -> _Clock:
    rows = _SD_CLOCKED(tokens)
    start = np.array([r[0] for r in rows], dtype=np.int64)
    period = np.array([r[1] for r in rows], dtype=np.int64)
    if clock_end is None:
        clock_end = max((r[2] for r in rows), default=0)
    order = np.argsort(start, kind="stable")
    a, p = start[order], period[order]
    a, p = a[p > 0], p[p > 0]
    b = np.concatenate((a[1:], [max(clock_end, int(a[-1]))] if a.size else []))
    return _Clock.of(a, b.astype(np.int64), p)


def _spi_clock(tokens: Sequence[Token], clock_end: int | None) -> _Clock:
    runs = sorted((t for t in tokens if isinstance(t, SpiToken) and t.period > 0),
                  key=lambda t: t.start)
    a = np.array([t.start for t in runs], dtype=np.int64)
    b = np.array([t.end for t in runs], dtype=np.int64)
    if a.size > 1:
        b = np.minimum(b, np.concatenate((a[1:], [b[-1]])))
    return _Clock.of(a, b, np.array([t.period for t in runs], dtype=np.int64))


_CLOCKS: dict[str, Callable[[Sequence[Token], int | None], _Clock]] = {
    "CLK": _sd_clock,
    "SCLK": _spi_clock,
}
_IDLE = {"CLK": 0, "SCLK": 0}  # every other line idles high


# --- assembling and decimating ----------------------------------------------------------------


def _assemble(t0: int, t1: int, times: np.ndarray, levels: np.ndarray, idle: int) -> Edges:
    """Edges from points in time order; points at one time must have one level."""
    k = int(np.searchsorted(times, t0, side="right"))
    level0 = int(levels[k - 1]) if k else idle
    inside = slice(k, int(np.searchsorted(times, t1, side="left")))
    t, v = times[inside], levels[inside]
    changes = np.flatnonzero(v[1:] != v[:-1]) + 1  # points that change the level
    if v.size and v[0] != level0:
        changes = np.concatenate(([0], changes))
    return Edges(np.concatenate(([t0], t[changes])).astype(np.int64, copy=False),
                 np.concatenate(([level0], v[changes])).astype(np.uint8, copy=False))


@dataclass(frozen=True)
class _Buckets:
    t0: int
    t1: int
    width: int
    starts: np.ndarray

    @classmethod
    def of(cls, t0: int, t1: int, max_edges: int) -> _Buckets:
        width = max(2, -(-(t1 - t0) // max(1, max_edges // 2)))
        return cls(t0, t1, width, np.arange(t0, t1, width, dtype=np.int64))

    @property
    def ends(self) -> np.ndarray:
        return np.minimum(self.starts + self.width, self.t1)

    def strictly_inside(self, times: np.ndarray) -> np.ndarray:
        """Bucket index of each time, -1 for times on a bucket start or outside."""
        rel = times - self.t0
        ok = (rel > 0) & (times < self.t1) & (rel % self.width != 0)
        return np.where(ok, rel // self.width, -1)

    def flag(self, times: np.ndarray) -> np.ndarray:
        idx = self.strictly_inside(times)
        active = np.zeros(self.starts.size, dtype=bool)
        active[idx[idx >= 0]] = True
        return active

    def edges(self, first: np.ndarray, last: np.ndarray, active: np.ndarray) -> Edges:
        """Each bucket shows its level at its start and, when a transition lies inside it,
        another level at mid-bucket (its level at the end when that differs)."""
        ends = self.ends
        active = active & (ends - self.starts >= 2)
        other = np.where(last != first, last, _ALT[first])
        t = np.column_stack((self.starts, self.starts + (ends - self.starts) // 2)).ravel()
        v = np.column_stack((first, other)).ravel().astype(np.uint8)
        shown = np.column_stack((np.ones_like(active), active)).ravel()
        t, v = t[shown], v[shown]
        keep = np.concatenate(([True], v[1:] != v[:-1]))
        return Edges(t[keep], v[keep])


def _decimate_edges(exact: Edges, t1: int, max_edges: int) -> Edges:
    b = _Buckets.of(int(exact.times[0]), t1, max_edges)
    return b.edges(exact.at(b.starts), exact.at(b.ends - 1), b.flag(exact.times[1:]))


def _render_clock(clock: _Clock, t0: int, t1: int, max_edges: int | None) -> Edges:
    count = int(clock.count_before(np.array(t1)) - clock.count_before(np.array(t0 + 1))) + 1
    if max_edges is None or count <= max_edges:
        return _assemble(t0, t1, *clock.points(t0, t1), idle=0)
    b = _Buckets.of(t0, t1, max_edges)
    ends = b.ends
    active = clock.count_before(ends) - clock.count_before(b.starts + 1) > 0
    return b.edges(clock.level_at(b.starts), clock.level_at(ends - 1), active)


class _Line:
    """The pieces of one line in start order, overlaps resolved (a later piece wins)."""

    def __init__(self, rows: list[_Row]) -> None:
        start = np.array([r[0] for r in rows], dtype=np.int64)
        order = np.argsort(start, kind="stable")
        if np.any(order[1:] < order[:-1]):
            rows = [rows[i] for i in order.tolist()]
            start = start[order]
        self.rows = rows
        self.start = start
        self.period = np.array([r[1] for r in rows], dtype=np.int64)
        self.nbits = np.array([r[2] for r in rows], dtype=np.int64)
        self.first = np.array([r[3] for r in rows], dtype=np.uint8)
        self.last = np.array([r[4] for r in rows], dtype=np.uint8)
        self.varies = np.array([r[5] for r in rows], dtype=bool)
        end = start + self.period * self.nbits
        nxt = np.concatenate((start[1:], [np.iinfo(np.int64).max]))
        self.stop = np.minimum(end, nxt)  # end of the bits, cut at the next piece's start
        self.drops = end < nxt  # the line returns to idle at ``stop``
        self._full: dict[int, np.ndarray | bytes] = {}

    def bits(self, i: int, i0: int, i1: int) -> np.ndarray:
        full = self._full.get(i)
        if full is None:
            row = self.rows[i]
            full = self._full[i] = row[6](row[7], row[8])
        if isinstance(full, bytes):
            first = i0 // 8
            chunk = np.frombuffer(full, dtype=np.uint8)[first:-(-i1 // 8)]
            return np.unpackbits(chunk)[i0 - 8 * first:i1 - 8 * first]
        return full[i0:i1]

    def ranges(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pieces, first bit, end bit) reaching into [t0, t1), with the last piece before
        it (it sets the level at t0)."""
        lo = max(int(np.searchsorted(self.stop, t0, side="right")) - 1, 0)
        idx = np.arange(lo, int(np.searchsorted(self.start, t1)))
        s, p = self.start[idx], self.period[idx]
        i0 = np.maximum(0, (t0 - s) // p)
        i1 = np.minimum(self.nbits[idx], -(-(np.minimum(self.stop[idx], t1) - s) // p))
        return idx, i0, np.maximum(i0, i1)

    def bits_in(self, t0: int, t1: int) -> int:
        """An upper bound of the transitions in the window (bits plus returns to idle)."""
        idx, i0, i1 = self.ranges(t0, t1)
        return int((i1 - i0).sum()) + idx.size

    def _drops(self, idx: np.ndarray, t1: int, idle: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns to idle after the pieces ``idx`` (before t1)."""
        stop = self.stop[idx]
        drop = self.drops[idx] & (stop < t1)
        return stop[drop], np.full(int(drop.sum()), idle, dtype=np.uint8)

    def _gather(self, idx: np.ndarray, i0: np.ndarray, i1: np.ndarray) -> np.ndarray:
        rows = idx.tolist()
        blocks = [i for i in rows if i not in self._full and self.rows[i][6] is _data_bits]
        if len(blocks) > 1:  # data blocks in one pass
            line = self.rows[blocks[0]][8]
            self._full.update(zip(blocks, _data_bits_many(
                [self.rows[i][7] for i in blocks], line), strict=True))
        return np.concatenate([self.bits(i, a, b) for i, a, b in zip(
            rows, i0.tolist(), i1.tolist(), strict=True)] or [np.zeros(0, np.uint8)])

    def points(self, t0: int, t1: int, idle: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, levels) of every bit in the window and the returns to idle, in time
        order (all times differ: a piece's bits end before its ``stop``, where its return
        to idle goes, and the next piece starts after that)."""
        idx, i0, i1 = self.ranges(t0, t1)
        n = i1 - i0
        k = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n - i0, n)
        times = np.repeat(self.start[idx], n) + k * np.repeat(self.period[idx], n)
        levels = self._gather(idx, i0, i1)
        stop = self.stop[idx]
        drop = self.drops[idx] & (stop < t1)
        after = np.cumsum(n)[drop]  # each return to idle follows its piece's last bit
        return (np.insert(times, after, stop[drop]),
                np.insert(levels, after, np.uint8(idle)))

    def sparse_points(self, t0: int, t1: int, idle: int,
                      buckets: _Buckets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points enough for the level at every bucket start and end, in time order, and
        the buckets with a change between two bits of one piece. A piece inside one bucket
        gives its first and last bit (``varies`` tells whether it changes in between); a
        longer piece is cut where its bits cross into the next bucket, each part giving its
        first and last bit and its lowest and highest level."""
        idx, i0, i1 = self.ranges(t0, t1)
        s, p, stop = self.start[idx], self.period[idx], self.stop[idx]
        w, starts = buckets.width, buckets.starts
        active = np.zeros(starts.size, dtype=bool)
        single = ((i1 - i0 >= 2) & (s >= t0) & (stop <= t1)
                  & ((s - t0) // w == (stop - 1 - t0) // w))
        one, n = idx[single], i1[single]
        last = self.last[one]
        for j in np.flatnonzero(n < self.nbits[one]).tolist():  # cut by the next piece
            last[j] = self.bits(int(one[j]), int(n[j]) - 1, int(n[j]))[0]
        times = [s[single], s[single] + (n - 1) * p[single]]
        levels = [self.first[one], last]
        active[((s[single] - t0) // w)[self.varies[one]]] = True
        whole = np.flatnonzero(~single & (i1 > i0))
        if whole.size:
            ws, wp, a, b = s[whole], p[whole], i0[whole], i1[whole]
            bits = self._gather(idx[whole], a, b)
            base = np.cumsum(b - a) - (b - a)  # where each piece's bits begin in ``bits``
            m0 = np.searchsorted(starts, ws + a * wp, side="right")
            count = np.searchsorted(starts, ws + (b - 1) * wp, side="right") - m0
            owner = np.repeat(np.arange(whole.size), count)
            m = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count - m0, count)
            # a part begins with the first bit that starts in a new bucket
            first_bit = -(-(starts[m] - ws[owner]) // wp[owner])
            cuts = np.unique(np.concatenate((base, base[owner] + first_bit - a[owner])))
            ends = np.concatenate((cuts[1:], [bits.size])) - 1
            piece = np.searchsorted(base, cuts, side="right") - 1
            t_first = ws[piece] + (cuts - base[piece] + a[piece]) * wp[piece]
            times += [t_first, t_first + (ends - cuts) * wp[piece]]
            levels += [bits[cuts], bits[ends]]
            varies = np.minimum.reduceat(bits, cuts) != np.maximum.reduceat(bits, cuts)
            k = (t_first - t0) // w
            active[k[varies & (k >= 0)]] = True
        drop_t, drop_v = self._drops(idx, t1, idle)
        t = np.concatenate((*times, drop_t))
        order = np.argsort(t, kind="stable")
        return t[order], np.concatenate((*levels, drop_v))[order], active


def _render_line(line: _Line, idle: int, t0: int, t1: int, max_edges: int | None) -> Edges:
    if max_edges is None or line.bits_in(t0, t1) <= max(max_edges, EXACT_BITS):
        times, levels = line.points(t0, t1, idle)
        exact = _assemble(t0, t1, times, levels, idle)
        if max_edges is None or len(exact) <= max_edges:
            return exact
        return _decimate_edges(exact, t1, max_edges)
    b = _Buckets.of(t0, t1, max_edges)
    times, levels, active = line.sparse_points(t0, t1, idle, b)
    levels = np.concatenate(([idle], levels)).astype(np.uint8)  # before the first point

    def at(t: np.ndarray) -> np.ndarray:
        return levels[np.searchsorted(times, t, side="right")]

    changes = times[levels[1:] != levels[:-1]]
    return b.edges(at(b.starts), at(b.ends - 1), active | b.flag(changes))


def render(tokens: Sequence[Token], signal: str, t0: int, t1: int, *,
           max_edges: int | None = None, clock_end: int | None = None) -> Edges:
    """``signal`` (one of SD_SIGNALS or SPI_SIGNALS) over [t0, t1) from ``tokens``.

    ``tokens`` must hold every bus token overlapping the window and, for CLK, the last
    one that began before t0 (its period is in force). The SD clock stops at
    ``clock_end`` (default: the end of the last of ``tokens``). Other tokens are ignored.
    """
    if t1 <= t0:
        raise ValueError(f"empty time window [{t0}, {t1})")
    if max_edges is not None and max_edges < 2:
        raise ValueError(f"max_edges must be at least 2, not {max_edges}")
    if signal in _CLOCKS:
        return _render_clock(_CLOCKS[signal](tokens, clock_end), t0, t1, max_edges)
    if signal not in _LINES:
        raise ValueError(f"unknown signal {signal!r}; signals are "
                         f"{', '.join(SD_SIGNALS + SPI_SIGNALS)}")
    return _render_line(_Line(_LINES[signal](tokens)), _IDLE.get(signal, 1), t0, t1,
                        max_edges)
