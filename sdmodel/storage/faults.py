"""Fault injection for the backing store: latency, hang, EIO, short reads, disk full.

Configured at run time from the GUI, the CLI (``specs.parse_fault_spec``) or tests, and
consulted by the storage worker before every operation (design.md, "Asynchronous storage").
Methods are thread-safe: the configuring thread is the event loop, the consumer is the
worker (or the loop itself in legacy mode).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum

from sdmodel.capacity import BLOCK_SIZE

__all__ = [
    "DATA_OPS",
    "FaultHit",
    "FaultInjector",
    "FaultKind",
    "Latency",
    "LbaRange",
]

DATA_OPS = frozenset({"read", "write"})  # the operations an EIO range can target


class FaultKind(StrEnum):
    LATENCY = "latency"
    HANG = "hang"
    EIO = "eio"
    SHORT_READ = "short"
    DISK_FULL = "full"


@dataclass(frozen=True)
class FaultHit:
    """One injected fault applied to one operation: ``op`` is "read", "write" or "flush"
    (``lba`` is None for flush)."""

    kind: FaultKind
    op: str
    lba: int | None


@dataclass(frozen=True)
class Latency:
    """Extra time per operation: fixed (low == high) or uniform in [low, high] seconds."""

    low_s: float = 0.0
    high_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low_s) and math.isfinite(self.high_s)):
            raise ValueError(f"latency must be finite, got {self.low_s}-{self.high_s} s")
        if not 0.0 <= self.low_s <= self.high_s:
            raise ValueError(f"latency range {self.low_s}-{self.high_s} s must be 0 <= min <= max")

    @classmethod
    def of(cls, value: Latency | float | tuple[float, float]) -> Latency:
        if isinstance(value, Latency):
            return value
        if isinstance(value, tuple):
            return cls(float(value[0]), float(value[1]))
        return cls(float(value), float(value))

    @property
    def fixed(self) -> bool:
        return self.low_s == self.high_s

    def sample(self, rng: random.Random) -> float:
        return self.low_s if self.fixed else rng.uniform(self.low_s, self.high_s)

    def __str__(self) -> str:
        def ms(seconds: float) -> str:
            return f"{seconds * 1000:g}"

        if self.high_s == 0.0:
            return "0"
        return f"{ms(self.low_s)}ms" if self.fixed else f"{ms(self.low_s)}-{ms(self.high_s)}ms"


@dataclass(frozen=True)
class LbaRange:
    """Blocks ``first`` to ``last`` inclusive."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise ValueError(f"LBA range {self.first}-{self.last} must be 0 <= first <= last")

    def first_hit(self, lba: int, count: int) -> int | None:
        """The first block of ``lba .. lba+count-1`` inside this range, or None."""
        low, high = max(self.first, lba), min(self.last, lba + count - 1)
        return low if low <= high else None

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


Report = Callable[[FaultHit], None]


class FaultInjector:
    """The faults currently configured for one Storage."""

    def __init__(self, seed: int = 0) -> None:
        self._cond = threading.Condition()
        self._rng = random.Random(seed)
        self._latency = Latency()
        self._hung = False
        self._aborted = False
        self._eio: list[tuple[LbaRange, frozenset[str]]] = []
        self._short: list[LbaRange] = []
        self._full_budget: int | None = None  # bytes that may still be written; None: not full

    # -- configuration (any thread) -------------------------------------------------------

    @property
    def latency(self) -> Latency:
        return self._latency

    @latency.setter
    def latency(self, value: Latency | float | tuple[float, float]) -> None:
        self._latency = Latency.of(value)

    def reseed(self, seed: int) -> None:
        """Restart the random latency sequence: the same seed gives the same delays."""
        with self._cond:
            self._rng.seed(seed)

    def next_latency(self) -> float:
        """The delay for the next operation, in seconds (draws from the seeded generator)."""
        with self._cond:
            return self._latency.sample(self._rng)

    @property
    def hung(self) -> bool:
        return self._hung

    def hang(self) -> None:
        """Make every operation block in the worker until ``release()`` or close."""
        with self._cond:
            self._hung = True

    def release(self) -> None:
        with self._cond:
            self._hung = False
            self._cond.notify_all()

    def eio(self, first_lba: int, last_lba: int, ops: Collection[str] = DATA_OPS) -> None:
        """Operations touching blocks first..last fail with EIO before any byte moves."""
        chosen = frozenset(ops)
        if not chosen or not chosen <= DATA_OPS:
            raise ValueError(f"EIO ops must be 'read' and/or 'write', got {sorted(chosen)}")
        with self._cond:
            self._eio.append((LbaRange(first_lba, last_lba), chosen))

    def short_read(self, first_lba: int, last_lba: int) -> None:
        """Reads touching blocks first..last return fewer bytes than asked for."""
        with self._cond:
            self._short.append(LbaRange(first_lba, last_lba))

    def disk_full(self, after_bytes: int | None = None) -> None:
        """Writes fail with NO_SPACE once ``after_bytes`` more bytes are written (None: now).

        A write that does not fit completely fails whole: nothing of it is written.
        """
        if after_bytes is not None and after_bytes < 0:
            raise ValueError(f"disk-full budget must be >= 0 bytes, got {after_bytes}")
        with self._cond:
            self._full_budget = after_bytes or 0

    def clear(self) -> None:
        """Remove every fault, latency included, and release a hang."""
        with self._cond:
            self._latency = Latency()
            self._eio.clear()
            self._short.clear()
            self._full_budget = None
            self._hung = False
            self._cond.notify_all()

    # -- consulted by the storage (worker thread, or loop thread in legacy mode) ------------

    def abort(self) -> None:
        """The storage is closing: end every latency or hang wait now and from now on."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def wait(self, op: str, lba: int | None, report: Report) -> None:
        """Apply latency and hang to one operation; returns early once aborted."""
        delay = self.next_latency()
        if delay > 0.0:
            report(FaultHit(FaultKind.LATENCY, op, lba))
            with self._cond:
                self._cond.wait_for(lambda: self._aborted, timeout=delay)
        if self._hung and not self._aborted:
            report(FaultHit(FaultKind.HANG, op, lba))
            with self._cond:
                self._cond.wait_for(lambda: self._aborted or not self._hung)

    def check(self, op: str, lba: int, count: int) -> FaultHit | None:
        """The range fault that makes this data operation fail, if any (before any I/O).

        A write that passes is charged against the disk-full budget.
        """
        with self._cond:
            for lbas, ops in self._eio:
                hit = lbas.first_hit(lba, count) if op in ops else None
                if hit is not None:
                    return FaultHit(FaultKind.EIO, op, hit)
            if op == "read":
                for lbas in self._short:
                    hit = lbas.first_hit(lba, count)
                    if hit is not None:
                        return FaultHit(FaultKind.SHORT_READ, op, hit)
            if op == "write" and self._full_budget is not None:
                size = count * BLOCK_SIZE
                if size > self._full_budget:
                    return FaultHit(FaultKind.DISK_FULL, op, lba + self._full_budget // BLOCK_SIZE)
                self._full_budget -= size
        return None
