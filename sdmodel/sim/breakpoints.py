"""Breakpoints on protocol events (design.md "Stepping").

A breakpoint is a condition on one trace item: a command (index, ACMD or not), error
bits in an R1 response, a card state entered, interrupt status bits on the IRQ line,
a data command addressing a block range, a CRC error, a protocol finding, a storage
fault. Each kind is declared once in ``BREAKPOINT_KINDS`` (spec syntax, meaning), which
the CLI's ``--break`` help, the GUI's breakpoint editor and ``parse_breakpoint`` share.

Spec syntax (one breakpoint)::

    cmd=17  cmd=ACMD41  acmd=41  rsp-error  rsp-error=OUT_OF_RANGE  state=prg
    irq=DATA_TIMEOUT  lba=100..199  lba=8  crc  finding  finding=no_response  storage-fault
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from sdmodel.commands import lookup
from sdmodel.errors import SdscopeError
from sdmodel.registers import ERROR_BITS, CardStatus, error_names
from sdmodel.states import CardState
from sdmodel.tokens import CommandToken, DataToken, FindingToken, ResponseToken, Token
from sdmodel.trace import IrqEvent, StateEvent

__all__ = [
    "BreakpointError",
    "BreakpointKind",
    "BREAKPOINT_KINDS",
    "Breakpoint",
    "AddressContext",
    "parse_breakpoint",
]

STORAGE_FAULT = "storage_fault"  # finding code the simulator uses for storage errors
_R1_TYPES = frozenset({"R1", "R1b"})
# Commands whose argument is a data address (§4.3.14): block reads/writes, erase start/end.
_BLOCK_ADDRESSED = frozenset({17, 18, 24, 25, 32, 33})


class BreakpointError(SdscopeError, ValueError):
    """A breakpoint spec that cannot be parsed."""


@dataclass(frozen=True)
class BreakpointKind:
    name: str
    syntax: str
    meaning: str
    needs_value: bool | None  # True: value required, False: none allowed, None: optional


BREAKPOINT_KINDS = MappingProxyType({k.name: k for k in (
    BreakpointKind("cmd", "cmd=N | cmd=ACMDN", "a command with this index is sent", True),
    BreakpointKind("acmd", "acmd=N", "an application command (after CMD55) is sent", True),
    BreakpointKind("rsp-error", "rsp-error[=BIT]",
                   "an R1 response reports an error bit (any, or the named one; §4.10.1)", None),
    BreakpointKind("state", "state=NAME", "the card enters this state (idle, tran, prg...)", True),
    BreakpointKind("irq", "irq=BIT", "the controller raises this interrupt status bit", True),
    BreakpointKind("lba", "lba=FIRST[..LAST]",
                   "a data or erase command addresses a block in this range", True),
    BreakpointKind("crc", "crc", "a command, response or data block with a wrong CRC", False),
    BreakpointKind("finding", "finding[=CODE]", "a protocol finding (any, or this code)", None),
    BreakpointKind("storage-fault", "storage-fault",
                   "the backing store fails an operation (EIO, disk full, short read...)", False),
)})


class AddressContext:
    """What ``lba`` breakpoints need from the simulation: how a data address maps to a
    block (bytes on SDSC, blocks on SDHC/SDXC, §4.3.14) and a CMD23 block count."""

    block_addressed: bool = True
    pending_count: int | None = None  # CMD23 argument in force for the next multi-block


@dataclass(frozen=True)
class Breakpoint:
    kind: str
    value: str = ""
    enabled: bool = True

    @property
    def spec(self) -> str:
        return f"{self.kind}={self.value}" if self.value else self.kind

    def __str__(self) -> str:
        return self.spec

    def matches(self, item: Token, context: AddressContext | None = None) -> bool:
        return self.enabled and _MATCHERS[self.kind](self, item, context or AddressContext())


def _cmd(bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    if not isinstance(item, CommandToken):
        return False
    index, app = _command_ref(bp)
    return item.index == index and bool(item.app) == app


def _command_ref(bp: Breakpoint) -> tuple[int, bool]:
    text = bp.value.upper()
    app = bp.kind == "acmd" or text.startswith("ACMD")
    digits = text.removeprefix("ACMD").removeprefix("CMD")
    return int(digits), app


def _rsp_error(bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    if not isinstance(item, ResponseToken) or item.type not in _R1_TYPES:
        return False
    mask = CardStatus[bp.value.upper()] if bp.value else ERROR_BITS
    return bool(item.value & mask)


def _state(bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    return isinstance(item, StateEvent) and item.new == bp.value.lower() != item.old


def _irq(bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    return isinstance(item, IrqEvent) and item.level == 1 and bp.value.upper() in item.bits


def _lba(bp: Breakpoint, item: Token, ctx: AddressContext) -> bool:
    if not isinstance(item, CommandToken):
        return False
    if item.app or item.index not in _BLOCK_ADDRESSED:
        return False
    first_bp, last_bp = _lba_range(bp.value)
    first = item.arg if ctx.block_addressed else item.arg // 512
    count = ctx.pending_count if item.index in (18, 25) and ctx.pending_count else 1
    return first <= last_bp and first + count - 1 >= first_bp


def _lba_range(value: str) -> tuple[int, int]:
    first, _, last = value.partition("..")
    lo = int(first, 0)
    hi = int(last, 0) if last else lo
    if hi < lo:
        raise ValueError(f"range {value} runs backwards")
    return lo, hi


def _crc(_bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    if isinstance(item, CommandToken | ResponseToken | DataToken):
        return not item.crc_ok and not (isinstance(item, ResponseToken) and item.type == "R3")
    return False


def _finding(bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    return isinstance(item, FindingToken) and (not bp.value or item.code == bp.value)


def _storage_fault(_bp: Breakpoint, item: Token, _ctx: AddressContext) -> bool:
    return isinstance(item, FindingToken) and item.code == STORAGE_FAULT


_MATCHERS: dict[str, Callable[[Breakpoint, Token, AddressContext], bool]] = {
    "cmd": _cmd, "acmd": _cmd, "rsp-error": _rsp_error, "state": _state, "irq": _irq,
    "lba": _lba, "crc": _crc, "finding": _finding, "storage-fault": _storage_fault,
}


def _check_value(kind: str, value: str) -> None:
    """Raise ValueError with the reason when ``value`` is not valid for ``kind``."""
    if kind in ("cmd", "acmd"):
        index, app = _command_ref(Breakpoint(kind, value))
        if not 0 <= index <= 63:
            raise ValueError(f"command index {index} is not 0..63")
        command = lookup(index, True)
        if app and (command is None or not command.app):
            raise ValueError(f"ACMD{index} is not an application command")
    elif kind == "rsp-error" and value:
        name = value.upper()
        if name not in CardStatus.__members__ or not CardStatus[name] & ERROR_BITS:
            errors = ", ".join(error_names(ERROR_BITS))
            raise ValueError(f"{value!r} is not an error bit (one of {errors})")
    elif kind == "state":
        if value.upper() not in CardState.__members__:
            raise ValueError(f"unknown state {value!r} (one of "
                             f"{', '.join(s.label for s in CardState)})")
    elif kind == "lba":
        _lba_range(value)
    elif kind == "irq" and not value.replace("_", "").isalnum():
        raise ValueError(f"{value!r} is not an interrupt bit name")


def parse_breakpoint(spec: str) -> Breakpoint:
    """``"cmd=17"`` -> Breakpoint; BreakpointError with a one-line reason otherwise."""
    text = spec.strip()
    kind, _, value = text.partition("=")
    kind, value = kind.strip().lower(), value.strip()
    declared = BREAKPOINT_KINDS.get(kind)
    if declared is None:
        raise BreakpointError(f"breakpoint {spec!r}: unknown kind {kind!r} (one of "
                              f"{', '.join(BREAKPOINT_KINDS)})")
    if declared.needs_value and not value:
        raise BreakpointError(f"breakpoint {spec!r}: needs a value ({declared.syntax})")
    if declared.needs_value is False and value:
        raise BreakpointError(f"breakpoint {spec!r}: takes no value ({declared.syntax})")
    try:
        _check_value(kind, value)
    except ValueError as error:
        raise BreakpointError(f"breakpoint {spec!r}: {error}") from None
    if kind == "state":
        value = value.lower()
    return Breakpoint(kind, value)
