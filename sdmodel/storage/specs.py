"""Text forms of latency and faults for the CLI and lesson scripts.

Latency: ``0``, ``300ms``, ``2s``, ``250us``, ``0-500ms``, ``100ms-1s`` (a range is uniform
random from the storage's seeded generator). Faults: ``hang``, ``eio:100-199``,
``eio:100-199:write``, ``eio:7``, ``short:0-7``, ``full``, ``full:1MiB``. The first argument
may also follow ``=`` and the long names ``short-read`` and ``disk-full`` are accepted, as
``sdscope simulate --help`` spells them (``eio=100-199``, ``disk-full=1MiB``). Bad text raises
ValueError with a one-line message (the CLI exits 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sdmodel.storage.faults import DATA_OPS, FaultInjector, Latency, LbaRange
from sdmodel.units import parse_size

__all__ = [
    "DiskFullFault",
    "EioFault",
    "FaultSpec",
    "HangFault",
    "ShortReadFault",
    "parse_fault_spec",
    "parse_latency_spec",
    "parse_size",
]

_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_NUMBER = r"(\d+(?:\.\d+)?)"
_LATENCY_RE = re.compile(rf"{_NUMBER}(s|ms|us)?(?:-{_NUMBER}(s|ms|us)?)?")
_RANGE_RE = re.compile(r"(\d+)(?:-(\d+))?")


def parse_latency_spec(text: str) -> Latency:
    """``"0-500ms"`` -> Latency(0.0, 0.5). A bare number needs a unit unless it is 0."""
    spec = text.strip().lower()
    match = _LATENCY_RE.fullmatch(spec)
    if match is None:
        raise ValueError(f"bad latency {text!r}: expected e.g. 0, 300ms, 2s or 0-500ms")
    low, low_unit, high, high_unit = match.groups()
    low_unit = low_unit or high_unit
    high_unit = high_unit or low_unit
    if low_unit is None and float(low) != 0.0:
        raise ValueError(f"bad latency {text!r}: give a unit (s, ms or us), e.g. {low}ms")
    low_s = float(low) * _TIME_UNITS[low_unit or "s"]
    high_s = low_s if high is None else float(high) * _TIME_UNITS[high_unit or "s"]
    if high_s < low_s:
        raise ValueError(f"bad latency {text!r}: the range must go from low to high")
    return Latency(low_s, high_s)


def _parse_range(text: str, spec: str) -> LbaRange:
    match = _RANGE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"bad fault {spec!r}: LBA range must look like 100-199 or 7")
    first = int(match.group(1))
    last = first if match.group(2) is None else int(match.group(2))
    if last < first:
        raise ValueError(f"bad fault {spec!r}: LBA range must go from low to high")
    return LbaRange(first, last)


@dataclass(frozen=True)
class HangFault:
    def apply(self, faults: FaultInjector) -> None:
        faults.hang()

    def __str__(self) -> str:
        return "hang"


@dataclass(frozen=True)
class EioFault:
    lbas: LbaRange
    ops: frozenset[str] = DATA_OPS

    def apply(self, faults: FaultInjector) -> None:
        faults.eio(self.lbas.first, self.lbas.last, self.ops)

    def __str__(self) -> str:
        ops = "" if self.ops == DATA_OPS else ":" + ",".join(sorted(self.ops))
        return f"eio:{self.lbas}{ops}"


@dataclass(frozen=True)
class ShortReadFault:
    lbas: LbaRange

    def apply(self, faults: FaultInjector) -> None:
        faults.short_read(self.lbas.first, self.lbas.last)

    def __str__(self) -> str:
        return f"short:{self.lbas}"


@dataclass(frozen=True)
class DiskFullFault:
    after_bytes: int | None = None

    def apply(self, faults: FaultInjector) -> None:
        faults.disk_full(self.after_bytes)

    def __str__(self) -> str:
        return "full" if self.after_bytes is None else f"full:{self.after_bytes}"


FaultSpec = HangFault | EioFault | ShortReadFault | DiskFullFault


def _parse_hang(args: list[str], spec: str) -> FaultSpec:
    if args:
        raise ValueError(f"bad fault {spec!r}: 'hang' takes no arguments")
    return HangFault()


def _parse_eio(args: list[str], spec: str) -> FaultSpec:
    if len(args) not in (1, 2):
        raise ValueError(f"bad fault {spec!r}: expected eio:FIRST-LAST[:read|write]")
    ops = frozenset(args[1].split(",")) if len(args) == 2 else DATA_OPS
    if not ops <= DATA_OPS:
        raise ValueError(f"bad fault {spec!r}: EIO ops must be read, write or read,write")
    return EioFault(_parse_range(args[0], spec), ops)


def _parse_short(args: list[str], spec: str) -> FaultSpec:
    if len(args) != 1:
        raise ValueError(f"bad fault {spec!r}: expected short:FIRST-LAST")
    return ShortReadFault(_parse_range(args[0], spec))


def _parse_full(args: list[str], spec: str) -> FaultSpec:
    if len(args) > 1:
        raise ValueError(f"bad fault {spec!r}: expected full or full:SIZE (e.g. full:1MiB)")
    try:
        return DiskFullFault(parse_size(args[0]) if args else None)
    except ValueError as exc:
        raise ValueError(f"bad fault {spec!r}: {exc}") from None


_FAULT_PARSERS = {"hang": _parse_hang, "eio": _parse_eio, "short": _parse_short,
                  "full": _parse_full}
_FAULT_ALIASES = {"short-read": "short", "disk-full": "full"}
_FAULT_NAME_RE = re.compile(r"([a-z-]+)(?:[=:](.*))?", re.DOTALL)


def parse_fault_spec(text: str) -> FaultSpec:
    """``"eio:100-199:write"`` -> EioFault(LbaRange(100, 199), {"write"})."""
    spec = text.strip().lower()
    match = _FAULT_NAME_RE.fullmatch(spec)
    name = match.group(1) if match else spec
    parser = _FAULT_PARSERS.get(_FAULT_ALIASES.get(name, name))
    if match is None or parser is None:
        names = ", ".join([*_FAULT_PARSERS, *_FAULT_ALIASES])
        raise ValueError(f"bad fault {text!r}: unknown fault {name!r} (one of {names})")
    rest = match.group(2)
    return parser([] if rest is None else rest.split(":"), text)
