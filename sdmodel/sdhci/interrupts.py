"""Interrupt status, status enable, signal enable and the IRQ line (reference B.3 rules 1-4;
HCS 2.2.17-2.2.22).

- An event latches only if its Status Enable bit is 1; clearing an enable bit also drops
  the latched bit (as QEMU does).
- Status bits are write-1-to-clear; Normal bit 15 is the OR of the error status.
- IRQ line = any (normal status & signal enable) over bits 14:0, or any (error status &
  error signal enable).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdmodel.sdhci.flags import INT_NORMAL_MASK, ErrorInt, NormalInt

__all__ = ["Interrupts", "pending_names"]

_ERROR_MASK = sum(int(f) for f in ErrorInt)
_NORMAL_DEFINED = sum(int(f) for f in NormalInt) & INT_NORMAL_MASK


@dataclass
class Interrupts:
    normal: int = 0  # latched normal status, bits 14:0
    error: int = 0  # latched error status
    normal_enable: int = 0
    error_enable: int = 0
    normal_signal: int = 0
    error_signal: int = 0

    @property
    def normal_status(self) -> int:
        """0x30 as read: the latched bits plus the error summary in bit 15 (rule 3)."""
        return self.normal | (NormalInt.ERROR if self.error else 0)

    @property
    def status32(self) -> int:
        """0x30 read as 32 bits: normal status low, error status high."""
        return self.normal_status | self.error << 16

    @property
    def pending(self) -> int:
        """The 32-bit status bits that reach the IRQ line (rule 4)."""
        return (self.normal & self.normal_signal & INT_NORMAL_MASK) | (
            self.error & self.error_signal
        ) << 16

    @property
    def line(self) -> bool:
        return self.pending != 0

    def latch(self, normal: int = 0, error: int = 0) -> None:
        """Events happened: set the enabled ones (rule 2)."""
        self.normal |= normal & self.normal_enable & _NORMAL_DEFINED
        self.error |= error & self.error_enable & _ERROR_MASK

    def clear(self, normal: int = 0, error: int = 0) -> None:
        """Write-1-to-clear (rule 1)."""
        self.normal &= ~normal
        self.error &= ~error

    def set_enables(self, normal: int, error: int) -> None:
        self.normal_enable = normal & _NORMAL_DEFINED
        self.error_enable = error & _ERROR_MASK
        self.normal &= self.normal_enable
        self.error &= self.error_enable

    def set_signals(self, normal: int, error: int) -> None:
        self.normal_signal = normal & _NORMAL_DEFINED
        self.error_signal = error & _ERROR_MASK

    def reset(self) -> None:
        self.normal = self.error = 0
        self.normal_enable = self.error_enable = 0
        self.normal_signal = self.error_signal = 0


def pending_names(pending: int) -> tuple[str, ...]:
    """Names of the 32-bit status bits set in ``pending`` (normal first, then errors)."""
    normal = [str(f.name) for f in NormalInt if pending & f]
    error = [str(f.name) for f in ErrorInt if (pending >> 16) & f]
    return (*normal, *error)
