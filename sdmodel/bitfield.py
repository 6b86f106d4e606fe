"""Bits ``msb``..``lsb`` of a register value: the arithmetic every register table shares
(the card's registers in ``sdmodel.registers``, the SDHCI file in ``sdmodel.sdhci``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["BitRange"]


class BitRange:
    """A mixin for frozen dataclasses with ``name``, ``msb``, ``lsb`` and ``values``."""

    __slots__ = ()
    name: str
    msb: int
    lsb: int
    values: Mapping[int, str] | None

    def _validate(self, value_limit: int | None = None) -> None:
        """Check the bit range and freeze ``values`` (keys below ``value_limit``, by default
        the field's value range); call from ``__post_init__``."""
        if not 0 <= self.lsb <= self.msb:
            raise ValueError(
                f"field {self.name}: bits {self.msb}:{self.lsb} are not msb >= lsb >= 0"
            )
        if self.values is not None:
            limit = 1 << self.width if value_limit is None else value_limit
            if any(not 0 <= key < limit for key in self.values):
                raise ValueError(f"field {self.name}: a value name lies outside the field")
            object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @property
    def width(self) -> int:
        return self.msb - self.lsb + 1

    @property
    def mask(self) -> int:
        """The field's bits in register position."""
        return ((1 << self.width) - 1) << self.lsb

    def get(self, raw: int) -> int:
        return (raw >> self.lsb) & ((1 << self.width) - 1)

    def put(self, raw: int, value: int) -> int:
        """``raw`` with this field replaced by ``value``; ValueError if it does not fit."""
        self._check(value)
        return (raw & ~self.mask) | (value << self.lsb)

    def _check(self, value: int) -> None:
        if not 0 <= value < 1 << self.width:
            raise ValueError(f"{self.name} is {self.width} bit(s) wide; {value} does not fit")
