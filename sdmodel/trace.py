"""The trace: a bounded, append-only log of bus tokens and events in simulated time.

Tokens arrive in start-time order (the simulator is causal). Payloads (data block
contents, SPI byte runs) beyond ``payload_budget`` bytes are dropped oldest-first,
keeping the token, its size and its summary, so long sessions stay bounded in memory;
the waveform shows dropped bits as UNKNOWN. ``edges`` renders a signal over a time
window from the bus tokens in it (design.md "Time and events"); the window lookups
bisect, also around long busy periods.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sdmodel.events import EmitterGroup
from sdmodel.tokens import DataToken, Line, SpiToken, Token
from sdmodel.waveform import SD_SIGNALS, SPI_SIGNALS, Edges, is_bus_token, render

__all__ = ["Trace", "StateEvent", "RegisterEvent", "IrqEvent"]


@dataclass(slots=True)
class StateEvent(Token):
    """The card changed state (an event on the timeline, not a bus token)."""

    old: str = ""
    new: str = ""
    reason: str = ""
    kind: ClassVar[str] = "state"
    line: ClassVar[Line] = Line.CARD

    def fields(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "reason": self.reason}

    def label(self) -> str:
        return f"{self.old} -> {self.new}"


@dataclass(slots=True)
class RegisterEvent(Token):
    """A host-controller register access (start == end: an instant on the timeline)."""

    reg: str = ""  # register name from the controller's register table
    offset: int = 0
    width: int = 4  # bytes accessed
    old: int = 0
    new: int = 0  # value after the access (== old for reads)
    access: str = "write"  # "read" | "write"
    kind: ClassVar[str] = "reg"
    line: ClassVar[Line] = Line.HOST

    def fields(self) -> dict[str, Any]:
        digits = 2 * self.width
        return {
            "reg": self.reg,
            "offset": f"0x{self.offset:02X}",
            "old": f"0x{self.old:0{digits}X}",
            "new": f"0x{self.new:0{digits}X}",
            "access": self.access,
        }

    def label(self) -> str:
        if self.access == "read":
            return f"rd {self.reg} = 0x{self.new:X}"
        return f"wr {self.reg} 0x{self.old:X} -> 0x{self.new:X}"


@dataclass(slots=True)
class IrqEvent(Token):
    """The controller's IRQ line changed level; ``status`` is the 32-bit value that
    0x30 reads at that moment (normal status low half, error status high half)."""

    level: int = 0
    status: int = 0
    bits: tuple[str, ...] = ()  # names of the set status bits that reach the line
    kind: ClassVar[str] = "irq"
    line: ClassVar[Line] = Line.HOST

    def fields(self) -> dict[str, Any]:
        return {"level": self.level, "status": f"0x{self.status:08X}", "bits": list(self.bits)}

    def label(self) -> str:
        return f"IRQ {'asserted' if self.level else 'released'} {' '.join(self.bits)}".rstrip()


# Tokens at least this long (ps, about 17 us) are indexed by duration class; shorter
# ones that began before a window are found by scanning this far back.
_SHORT = 1 << 24


class _Timeline:
    """Tokens sorted by start (equal starts in arrival order) with the lookups of a time
    window. A token of duration in [2^(k-1), 2^k) that still runs at t0 began less than
    2^k before it, so long tokens sit in one start-sorted list per k: a 10 s busy period
    does not widen the search for every other token."""

    def __init__(self, starts: list[int], tokens: list[Token]) -> None:
        self.starts = starts
        self.tokens = tokens
        self.end = 0  # latest end seen
        self._long: dict[int, tuple[list[int], list[Token]]] = {}

    def add(self, token: Token) -> int:
        """Insert ``token``; returns its position."""
        if self.starts and token.start < self.starts[-1]:
            i = bisect.bisect_right(self.starts, token.start)
            self.tokens.insert(i, token)
            self.starts.insert(i, token.start)
        else:
            i = len(self.tokens)
            self.tokens.append(token)
            self.starts.append(token.start)
        self.end = max(self.end, token.end)
        duration = token.end - token.start
        if duration >= _SHORT:
            starts, tokens = self._long.setdefault(duration.bit_length(), ([], []))
            j = bisect.bisect_right(starts, token.start)
            starts.insert(j, token.start)
            tokens.insert(j, token)
        return i

    def running(self, t0: int) -> list[Token]:
        """Tokens that began before t0 and end after it, by start."""
        lo = bisect.bisect_left(self.starts, t0 - _SHORT)
        hi = bisect.bisect_left(self.starts, t0)
        found = [t for t in self.tokens[lo:hi] if t.end > t0 and t.end - t.start < _SHORT]
        for k, (starts, tokens) in self._long.items():
            a = bisect.bisect_right(starts, t0 - (1 << k))
            b = bisect.bisect_left(starts, t0)
            found += [t for t in tokens[a:b] if t.end > t0]
        found.sort(key=lambda t: t.start)
        return found

    def window(self, t0: int, t1: int) -> list[Token]:
        """Tokens that overlap [t0, t1), by start."""
        lo = bisect.bisect_left(self.starts, t0)
        return self.running(t0) + self.tokens[lo:bisect.bisect_left(self.starts, t1)]

    def around(self, t0: int, t1: int) -> list[Token]:
        """``window`` plus the last token that began before t0, even if it has ended."""
        running = self.running(t0)
        i = bisect.bisect_left(self.starts, t0)
        if i and not any(t is self.tokens[i - 1] for t in running):
            running.append(self.tokens[i - 1])  # the latest start before t0: last in order
        return running + self.tokens[i:bisect.bisect_left(self.starts, t1)]

    def clear(self) -> None:
        self.starts.clear()
        self.tokens.clear()
        self._long.clear()
        self.end = 0


def _payload(token: Token) -> int:
    """Bytes of payload the budget counts: a data block, or an SPI run's MOSI and MISO."""
    if isinstance(token, DataToken):
        return len(token.data) if token.data else 0
    if isinstance(token, SpiToken):
        return len(token.mosi or b"") + len(token.miso or b"")
    return 0


def _drop_payload(token: Token) -> None:
    if isinstance(token, DataToken):
        token.data = None
    elif isinstance(token, SpiToken):
        token.mosi = token.miso = None


@dataclass
class Trace:
    payload_budget: int = 64 * 1024 * 1024  # bytes of payload kept
    tokens: list[Token] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    payload_bytes: int = 0
    _payload_cursor: int = 0  # index of the oldest token that may still hold a payload

    def __post_init__(self) -> None:
        self.events = EmitterGroup("appended", "cleared")
        given, self.tokens, self.starts = self.tokens, [], []
        self._all = _Timeline(self.starts, self.tokens)
        self._bus = _Timeline([], [])  # tokens that drive bus lines
        self._spi = False
        for token in given:
            self._add(token)
        self._trim_payloads()

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self) -> Iterator[Token]:
        return iter(self.tokens)

    def append(self, token: Token) -> None:
        if self._add(token):
            self._trim_payloads()
        self.events.appended.emit(token)

    def _add(self, token: Token) -> int:
        """Index ``token``; returns the payload bytes it brought."""
        i = self._all.add(token)
        if i < len(self.tokens) - 1:  # a late event (rare: state events)
            self._payload_cursor = min(self._payload_cursor, i)
        if is_bus_token(token):
            self._bus.add(token)
            self._spi = self._spi or isinstance(token, SpiToken)
        payload = _payload(token)
        self.payload_bytes += payload
        return payload

    def _trim_payloads(self) -> None:
        while self.payload_bytes > self.payload_budget and self._payload_cursor < len(self.tokens):
            token = self.tokens[self._payload_cursor]
            self.payload_bytes -= _payload(token)
            _drop_payload(token)
            self._payload_cursor += 1

    def window(self, t0: int, t1: int) -> list[Token]:
        """Tokens that overlap [t0, t1) (also instants at t0), by start."""
        return self._all.window(t0, t1)

    def span(self) -> tuple[int, int]:
        """(first start, last end) of everything in the trace; (0, 0) when empty."""
        return (self.starts[0], self._all.end) if self.starts else (0, 0)

    @property
    def signals(self) -> tuple[str, ...]:
        """The signals of the bus the trace records: SPI_SIGNALS or SD_SIGNALS."""
        return SPI_SIGNALS if self._spi else SD_SIGNALS

    def edges(self, signal: str, t0: int, t1: int, *, max_edges: int | None = None) -> Edges:
        """``signal`` over [t0, t1), rendered from the bus tokens in the window (see
        :func:`sdmodel.waveform.render`); decimated above ``max_edges`` edges."""
        # the bus token that began last before t0 sets the clock period in force at t0
        tokens = self._bus.around(t0, t1)
        return render(tokens, signal, t0, t1, max_edges=max_edges, clock_end=self._bus.end)

    def of_kind(self, kind: str) -> list[Token]:
        return [t for t in self.tokens if t.kind == kind]

    def clear(self) -> None:
        self._all.clear()
        self._bus.clear()
        self._spi = False
        self.payload_bytes = 0
        self._payload_cursor = 0
        self.events.cleared.emit()
