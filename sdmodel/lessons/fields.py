"""Register fields by name, for "explain this field": the card's registers (chapter 5,
§4.10) and the SDHCI register set (reference Part B), read from their declarative tables.

Lesson texts name a field as ``{REGISTER.FIELD}`` (``{CSD.C_SIZE}``,
``{CARD_STATUS.CURRENT_STATE}``, ``{INT_STATUS.BUF_RD_READY}``); the lesson panel turns
each into a link that shows :func:`explain_field`. ``CSD`` stands for both CSD versions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sdmodel.errors import SdscopeError
from sdmodel.registers import ALL_REGISTERS, CSD_V1, CSD_V2, Register
from sdmodel.sdhci.registers import REGISTERS as SDHCI_REGISTERS
from sdmodel.sdhci.registers import SdhciRegister

__all__ = [
    "FieldError",
    "FieldInfo",
    "FIELD_REF",
    "field_refs",
    "register_names",
    "lookup_field",
    "explain_field",
]

# {REGISTER.FIELD} in a lesson text
FIELD_REF = re.compile(r"\{([A-Z][A-Z0-9_]*)\.([A-Z][A-Z0-9_]*)\}")

# Card registers by name; "CSD" is either version, chosen by CSD_STRUCTURE (§5.3.1).
_CARD: Mapping[str, tuple[Register, ...]] = MappingProxyType(
    {name: (reg,) for name, reg in ALL_REGISTERS.items()} | {"CSD": (CSD_V1, CSD_V2)}
)
_HOST: Mapping[str, SdhciRegister] = MappingProxyType({r.name: r for r in SDHCI_REGISTERS})


class FieldError(SdscopeError, LookupError):
    """No such register or field (the message names what exists)."""


@dataclass(frozen=True)
class FieldInfo:
    """One field as a lesson shows it."""

    register: str  # the name used in lessons, e.g. "CSD", "INT_STATUS"
    title: str  # the register's long name (with its version for CSD)
    field: str
    bits: str  # "69:48", "5"
    meaning: str
    section: str  # spec section of the table
    describe: Callable[[int], str] = dataclasses.field(compare=False, repr=False,
                                                       default=str)  # a value as text

    def text(self) -> str:
        bits = f"bits {self.bits}" if ":" in self.bits else f"bit {self.bits}"
        return f"{self.register}.{self.field} ({bits}, {self.section}): {self.meaning}"


def _bits(msb: int, lsb: int) -> str:
    return str(msb) if msb == lsb else f"{msb}:{lsb}"


def register_names() -> tuple[str, ...]:
    """Every register name a lesson may refer to."""
    return (*_CARD, *_HOST)


def lookup_field(register: str, field: str) -> tuple[FieldInfo, ...]:
    """The field ``register.field`` (two entries for a CSD field of both versions);
    FieldError with a one-line reason if there is none."""
    if register in _CARD:
        found = []
        for table in _CARD[register]:
            try:
                f = table.field(field)
            except KeyError:
                continue
            found.append(FieldInfo(register, table.title, f.name, _bits(f.msb, f.lsb),
                                   f.meaning, f.section, f.describe))
        if found:
            return tuple(found)
        names = sorted({f.name for table in _CARD[register] for f in table.fields})
    elif register in _HOST:
        host = _HOST[register]
        for g in host.fields:
            if g.name == field:
                title = f"{host.meaning} (SDHCI 0x{host.offset:02X})"
                return (FieldInfo(register, title, g.name, _bits(g.msb, g.lsb), g.meaning,
                                  host.section, g.describe),)
        names = [g.name for g in host.fields]
    else:
        raise FieldError(f"unknown register {register!r} (one of {', '.join(register_names())})")
    raise FieldError(f"register {register} has no field {field!r} (fields: {', '.join(names)})")


def field_refs(text: str) -> list[tuple[str, str]]:
    """The (register, field) pairs named as ``{REGISTER.FIELD}`` in ``text``."""
    return [(m.group(1), m.group(2)) for m in FIELD_REF.finditer(text)]


def explain_field(register: str, field: str, value: int | None = None) -> str:
    """Plain text explaining ``register.field`` (and ``value`` if given), one line per
    table it appears in (a value only where it fits: C_SIZE 8191 is a CSD v2.0 value).
    FieldError if the field does not exist."""
    lines = []
    for info in lookup_field(register, field):
        line = f"{info.title}: {info.text()}"
        if value is not None:
            try:
                line += f"; value {value} (0x{value:X}) = {info.describe(value)}"
            except ValueError:
                continue
        lines.append(line)
    return "\n".join(lines) or f"{register}.{field} cannot hold the value {value}"
