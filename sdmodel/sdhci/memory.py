"""Simulated system RAM that SDMA reads and writes (reference B.3 rule 11).

A flat byte array with a bump allocator for the driver's DMA buffers. The first page is
never handed out, so a DMA address of 0 (a driver that forgot to program 0x00) stands
out instead of silently hitting a buffer.
"""

from __future__ import annotations

__all__ = ["HostMemory", "HostMemoryError", "PAGE"]

PAGE = 4096


class HostMemoryError(ValueError):
    """An access outside the simulated RAM, or an allocation that does not fit."""


class HostMemory:
    def __init__(self, size: int = 16 << 20) -> None:
        if size < 2 * PAGE:
            raise HostMemoryError(f"host memory must be at least {2 * PAGE} bytes, not {size}")
        self.size = size
        self._ram = bytearray(size)
        self._next = PAGE

    def _check(self, addr: int, n: int) -> None:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise HostMemoryError(
                f"host memory access 0x{addr:X}+{n} is outside 0..0x{self.size:X}"
            )

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        return bytes(self._ram[addr : addr + n])

    def write(self, addr: int, data: bytes) -> None:
        self._check(addr, len(data))
        self._ram[addr : addr + len(data)] = data

    def alloc(self, n: int, align: int = PAGE) -> int:
        """``n`` bytes at a multiple of ``align`` (a power of two); raises when full."""
        if n <= 0 or align <= 0 or align & (align - 1):
            raise HostMemoryError(f"cannot allocate {n} bytes aligned to {align}")
        addr = (self._next + align - 1) & -align
        if addr + n > self.size:
            raise HostMemoryError(
                f"host memory full: {n} bytes do not fit ({self.size - self._next} left)"
            )
        self._next = addr + n
        return addr

    def free_all(self) -> None:
        """Forget every allocation (the contents stay until overwritten)."""
        self._next = PAGE
