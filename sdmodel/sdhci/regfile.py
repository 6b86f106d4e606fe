"""Byte-lane mechanics of the SDHCI register window (reference Part B "access width").

Every register accepts 8-, 16- and 32-bit little-endian accesses at naturally aligned
offsets; an access that covers several registers touches each covered byte lane. These
helpers split an access into per-register pieces and apply the table's access types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sdmodel.sdhci.registers import Access, SdhciRegister, register_at

__all__ = ["Piece", "check_access", "pieces", "merge_write", "WINDOW"]

WINDOW = 0x100  # the register window of one slot


@dataclass(frozen=True)
class Piece:
    """The part of an access that falls into one register."""

    reg: SdhciRegister
    shift: int  # bit position of the piece inside the access value
    reg_shift: int  # bit position of the piece inside the register
    nbytes: int

    @property
    def reg_mask(self) -> int:
        return ((1 << (8 * self.nbytes)) - 1) << self.reg_shift

    def from_access(self, value: int) -> int:
        """The access value's bytes of this piece, in register position."""
        return (value >> self.shift & ((1 << (8 * self.nbytes)) - 1)) << self.reg_shift

    def to_access(self, reg_value: int) -> int:
        """The register's bytes of this piece, in access position."""
        return (reg_value >> self.reg_shift & ((1 << (8 * self.nbytes)) - 1)) << self.shift


def check_access(offset: int, width: int) -> None:
    if width not in (1, 2, 4):
        raise ValueError(f"SDHCI access width must be 1, 2 or 4 bytes, not {width}")
    if not 0 <= offset <= WINDOW - width:
        raise ValueError(f"SDHCI offset 0x{offset:X} is outside the register window")
    if offset % width:
        raise ValueError(f"SDHCI {width}-byte access at 0x{offset:02X} is not naturally aligned")


def pieces(offset: int, width: int) -> Iterator[Piece]:
    """The registers an access covers, in address order (unassigned bytes are skipped)."""
    pos = offset
    while pos < offset + width:
        reg = register_at(pos)
        if reg is None:
            pos += 1
            continue
        end = min(offset + width, reg.end)
        yield Piece(reg, 8 * (pos - offset), 8 * (pos - reg.offset), end - pos)
        pos = end


def merge_write(reg: SdhciRegister, old: int, value: int, mask: int) -> int:
    """A plain write: RW and RWAC fields take the written bits inside ``mask``; every other
    field (RO, ROC, HWInit, W1C, WO) keeps its value."""
    writable = mask & reg.mask_of(Access.RW, Access.RWAC)
    return (old & ~writable) | (value & writable)
