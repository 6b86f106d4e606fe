"""The trace: a bounded, append-only log of bus tokens and events in simulated time.

Tokens arrive in start-time order (the simulator is causal). Payloads (data block
contents) beyond ``payload_budget`` bytes are dropped oldest-first, keeping the token
and its size, so long sessions stay bounded in memory (design.md "Time and events").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sdmodel.events import EmitterGroup
from sdmodel.tokens import DataToken, Line, Token

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


@dataclass
class Trace:
    payload_budget: int = 64 * 1024 * 1024  # bytes of data payload kept
    tokens: list[Token] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    payload_bytes: int = 0
    _payload_cursor: int = 0  # index of the oldest token that may still hold a payload
    _longest: int = 0  # longest token duration seen, bounds the backward scan of window()

    def __post_init__(self) -> None:
        self.events = EmitterGroup("appended", "cleared")

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self) -> Iterator[Token]:
        return iter(self.tokens)

    def append(self, token: Token) -> None:
        if self.starts and token.start < self.starts[-1]:
            # keep the log sorted even if a late event arrives (rare: state events)
            i = bisect.bisect_right(self.starts, token.start)
            self.tokens.insert(i, token)
            self.starts.insert(i, token.start)
            self._payload_cursor = min(self._payload_cursor, i)
        else:
            self.tokens.append(token)
            self.starts.append(token.start)
        self._longest = max(self._longest, token.end - token.start)
        if isinstance(token, DataToken) and token.data:
            self.payload_bytes += len(token.data)
            self._trim_payloads()
        self.events.appended.emit(token)

    def _trim_payloads(self) -> None:
        while self.payload_bytes > self.payload_budget and self._payload_cursor < len(self.tokens):
            token = self.tokens[self._payload_cursor]
            if isinstance(token, DataToken) and token.data:
                self.payload_bytes -= len(token.data)
                token.data = None
            self._payload_cursor += 1

    def window(self, t0: int, t1: int) -> list[Token]:
        """Tokens that overlap [t0, t1)."""
        hi = bisect.bisect_left(self.starts, t1)
        lo = bisect.bisect_left(self.starts, t0 - self._longest)
        return [t for t in self.tokens[lo:hi] if t.end > t0 or t.start >= t0]

    def of_kind(self, kind: str) -> list[Token]:
        return [t for t in self.tokens if t.kind == kind]

    def clear(self) -> None:
        self.tokens.clear()
        self.starts.clear()
        self.payload_bytes = 0
        self._payload_cursor = 0
        self.events.cleared.emit()
