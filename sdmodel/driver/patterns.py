"""What a workload writes into a block: a fixed byte, seeded random bytes, or a counter.

Every pattern is a pure function of (pattern, LBA, seed, salt), so a read can be checked
against what the workload wrote without keeping the written bytes around.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from enum import StrEnum

from sdmodel.capacity import BLOCK_SIZE

__all__ = ["PatternKind", "Pattern", "COUNTER"]

_WORDS = BLOCK_SIZE // 8
_COUNTER_WORDS = struct.Struct(f">{_WORDS}Q")


class PatternKind(StrEnum):
    BYTE = "byte"  # every byte the same value
    RANDOM = "random"  # bytes from a generator seeded by (seed, salt, LBA)
    COUNTER = "counter"  # each 8-byte big-endian word holds its own byte address on the card


@dataclass(frozen=True)
class Pattern:
    kind: PatternKind
    value: int = 0  # the byte of a BYTE pattern

    def __post_init__(self) -> None:
        if not 0 <= self.value <= 0xFF:
            raise ValueError(f"pattern byte must be 0x00..0xFF, not {self.value:#x}")

    def block(self, lba: int, *, seed: int = 0, salt: int = 0) -> bytes:
        """The 512 bytes this pattern puts into block ``lba``."""
        match self.kind:
            case PatternKind.BYTE:
                return bytes([self.value]) * BLOCK_SIZE
            case PatternKind.RANDOM:
                # A str seed goes through SHA-512: the same on every run and platform.
                return random.Random(f"{seed}/{salt}/{lba}").randbytes(BLOCK_SIZE)
            case PatternKind.COUNTER:
                first = lba * BLOCK_SIZE
                return _COUNTER_WORDS.pack(*range(first, first + BLOCK_SIZE, 8))

    def blocks(self, lba: int, count: int, *, seed: int = 0, salt: int = 0) -> bytes:
        return b"".join(self.block(lba + i, seed=seed, salt=salt) for i in range(count))

    def __str__(self) -> str:
        return f"0x{self.value:02X}" if self.kind is PatternKind.BYTE else self.kind.value


COUNTER = Pattern(PatternKind.COUNTER)
