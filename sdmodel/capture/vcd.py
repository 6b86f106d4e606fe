"""Read Value Change Dump files (IEEE 1364 §18) into per-signal change lists.

Only 1-bit variables become channels (``$var wire 1 ! CLK $end``, also ``b0 !`` for them);
wider vectors and real variables are skipped and listed in ``VcdCapture.skipped``. ``x``
and ``z`` read as 1: an SD/SPI line nobody drives sits at its pull-up level. Times are
converted to integer picoseconds with the file's ``$timescale``.

Memory stays proportional to the number of value changes (9 bytes each, in ``array``
buffers that become the numpy arrays without a copy): the text is split into words a
bounded chunk at a time, so a file without line breaks is no worse than one with them, a
single word may not exceed ``MAX_WORD`` characters, and the words of skipped blocks
(``$comment`` ... ``$end``) are not kept. A timestamp whose picoseconds do not
fit the int64 time base (``MAX_PS``, about 106 days) is refused rather than wrapped.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TextIO

import numpy as np

from sdmodel.errors import CaptureError

__all__ = ["VcdSignal", "VcdCapture", "read_vcd", "parse_timescale", "MAX_PS", "MAX_WORD"]

MAX_PS = (1 << 63) - 1  # latest time representable in the int64 picosecond time base
MAX_WORD = 1 << 20  # longest word (identifier, name, vector value) accepted, in characters
_READ_CHARS = 1 << 18  # characters read and split at a time
_MAX_KEPT_WORDS = 16  # words of a $var or $timescale declaration (6 in practice)

_UNIT_PS = {
    "s": Fraction(10**12),
    "ms": Fraction(10**9),
    "us": Fraction(10**6),
    "ns": Fraction(10**3),
    "ps": Fraction(1),
    "fs": Fraction(1, 1000),
}
_TIMESCALE = re.compile(r"^(1|10|100)\s*(s|ms|us|ns|ps|fs)$")
_LEVEL = {"0": 0, "1": 1, "x": 1, "X": 1, "z": 1, "Z": 1}


def parse_timescale(text: str) -> Fraction:
    """Picoseconds per VCD time unit: ``"1 ns"`` -> 1000, ``"10ps"`` -> 10."""
    match = _TIMESCALE.match(" ".join(text.split()))
    if match is None:
        raise CaptureError(f"unknown VCD timescale {text.strip()!r}")
    return int(match.group(1)) * _UNIT_PS[match.group(2)]


@dataclass(frozen=True)
class VcdSignal:
    name: str
    times: np.ndarray  # int64 ps of each change, ascending
    values: np.ndarray  # uint8 level after each change


@dataclass(frozen=True)
class VcdCapture:
    path: Path
    timescale_ps: Fraction
    names: dict[int, str]  # channel index (declaration order) -> name
    signals: tuple[VcdSignal, ...]
    end_ps: int  # last timestamp
    skipped: tuple[str, ...] = ()  # variables that are not 1 bit wide

    @property
    def nprobes(self) -> int:
        return len(self.signals)

    @property
    def duration_ps(self) -> int:
        return self.end_ps


def _tokens(stream: TextIO, path: Path) -> Iterator[str]:
    """The whitespace-separated words of ``stream``, read ``_READ_CHARS`` at a time."""
    carry = ""  # the last word of a chunk may go on in the next one
    while chunk := stream.read(_READ_CHARS):
        words = (carry + chunk).split()
        carry = words.pop() if words and not chunk[-1].isspace() else ""
        if len(carry) > MAX_WORD:
            raise CaptureError(f"{path.name}: not a VCD file (a word of more than "
                               f"{MAX_WORD} characters without a space or line break)")
        yield from words
    if carry:
        yield carry


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.scale = Fraction(1)
        self.ids: dict[str, list[int]] = {}  # identifier code -> channel indexes
        self.names: list[str] = []
        self.skipped: list[str] = []
        self.vector_ids: set[str] = set()

    def error(self, message: str) -> CaptureError:
        return CaptureError(f"{self.path.name}: {message}")

    def block(self, tokens: Iterator[str], keyword: str, *, keep: bool = False) -> list[str]:
        """The words up to ``$end``; only kept (and then at most ``_MAX_KEPT_WORDS``) for
        the declarations that need them, so an unclosed $comment costs no memory."""
        words: list[str] = []
        shown = keyword[:20] if keyword[:20].isprintable() else repr(keyword[:20])
        for word in tokens:
            if word == "$end":
                return words
            if keep:
                if len(words) == _MAX_KEPT_WORDS:
                    raise self.error(f"bad header: {shown} is not closed by $end")
                words.append(word)
        raise self.error(f"truncated: the file ends inside {shown}")

    def header(self, tokens: Iterator[str]) -> None:
        first = True
        timescale_seen = False
        for word in tokens:
            if not word.startswith("$"):
                if first:
                    raise self.error("not a VCD file (bad header)")
                raise self.error(f"bad header: unexpected {word[:20]!r} before $enddefinitions")
            first = False
            if word == "$enddefinitions":
                self.block(tokens, word)
                if not timescale_seen:
                    raise self.error("bad header: no $timescale")
                return
            words = self.block(tokens, word, keep=word in ("$timescale", "$var"))
            if word == "$timescale":
                try:
                    self.scale = parse_timescale(" ".join(words))
                except CaptureError as e:
                    raise self.error(str(e)) from None
                timescale_seen = True
            elif word == "$var":
                self.var(words)
        if first:
            raise self.error("empty file (not a VCD file)")
        raise self.error("truncated: no $enddefinitions")

    def var(self, words: list[str]) -> None:
        if len(words) < 4:
            raise self.error(f"bad header: malformed $var {' '.join(words)!r}")
        kind, size, code, name = words[0], words[1], words[2], words[3]
        if size != "1" or kind == "real":
            self.skipped.append(name)
            self.vector_ids.add(code)
            return
        self.ids.setdefault(code, []).append(len(self.names))
        self.names.append(name)


def read_vcd(path: str | Path) -> VcdCapture:
    """Parse a VCD file; raises CaptureError for a bad header, an unknown timescale,
    no 1-bit signal, or a truncated or inconsistent body."""
    path = Path(path)
    parser = _Parser(path)
    with path.open("r", encoding="ascii", errors="replace") as stream:
        tokens = _tokens(stream, path)
        parser.header(tokens)
        if not parser.names:
            raise parser.error("no 1-bit signals declared")
        changes: list[tuple[array[int], array[int]]] = [
            (array("q"), array("B")) for _ in parser.names
        ]
        now = 0  # in the file's time unit
        now_ps = 0
        numerator, denominator = parser.scale.numerator, parser.scale.denominator
        for word in tokens:
            head = word[0]
            if head == "#":
                try:
                    t = int(word[1:])
                except ValueError:
                    raise parser.error(f"bad timestamp {word[:20]!r}") from None
                if t < now:
                    raise parser.error(f"time goes backwards at {word[:20]}")
                now = t
                now_ps = t * numerator // denominator
                if now_ps > MAX_PS:
                    raise parser.error(f"timestamp {word[:20]} is too late: times must stay "
                                       f"below {MAX_PS} ps (about 106 days)")
            elif head in _LEVEL:
                _record(parser, changes, word[1:], _LEVEL[head], now_ps)
            elif head in "bB":
                code = next(tokens, None)
                if code is None:
                    raise parser.error("truncated: vector value without identifier")
                if code in parser.vector_ids:
                    continue
                level = _LEVEL.get(word[-1])
                if level is None:
                    raise parser.error(f"bad value {word[:20]!r}")
                _record(parser, changes, code, level, now_ps)
            elif head in "rR":
                if next(tokens, None) is None:
                    raise parser.error("truncated: real value without identifier")
            elif head == "$":
                if word in ("$comment",):
                    parser.block(tokens, word)
                # $dumpvars/$dumpall/$dumpon/$dumpoff and their $end only bracket values
            else:
                raise parser.error(f"bad value change {word[:20]!r}")
    signals = tuple(
        VcdSignal(name, np.frombuffer(times, dtype=np.int64), np.frombuffer(values, np.uint8))
        for name, (times, values) in zip(parser.names, changes, strict=True)
    )
    return VcdCapture(
        path,
        parser.scale,
        dict(enumerate(parser.names)),
        signals,
        now_ps,
        tuple(parser.skipped),
    )


def _record(
    parser: _Parser, changes: list[tuple[array[int], array[int]]], code: str, level: int,
    now: int,
) -> None:
    """One value change at ``now`` picoseconds."""
    indexes = parser.ids.get(code)
    if indexes is None:
        if code in parser.vector_ids:
            return
        if not code:
            raise parser.error("truncated: value change without identifier")
        raise parser.error(f"value change for undeclared identifier {code!r}")
    for index in indexes:
        times, values = changes[index]
        if values and values[-1] == level:
            continue
        if times and times[-1] == now:  # several changes at one time: the last one wins
            values[-1] = level
            continue
        times.append(now)
        values.append(level)
