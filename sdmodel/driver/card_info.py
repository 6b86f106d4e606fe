"""What the driver learnt about the card during initialisation (reference §8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sdmodel.capacity import BLOCK_SIZE, CardType
from sdmodel.registers import SCR, decode_csd

__all__ = ["CardInfo", "SDXC_MIN_C_SIZE"]

SDXC_MIN_C_SIZE = 0xFFFF  # Linux flags a card SDXC when CSD v2 C_SIZE >= 0xFFFF (§5.3.3)


@dataclass(frozen=True)
class CardInfo:
    rca: int
    ocr: int  # the last R3 (busy bit set)
    cid: int  # 128 bits with CRC7, as the card holds it
    csd: int  # 128 bits with CRC7, as read by CMD9 (before any speed switch)
    capacity: int  # bytes, from the CSD
    scr: int  # 64 bits
    sd_status: bytes  # 64 bytes of ACMD13
    high_capacity: bool  # OCR CCS: block addressing
    high_speed: bool  # switched to High Speed with CMD6
    bus_width: int  # 1 or 4
    cmd23: bool  # SCR CMD_SUPPORT: SET_BLOCK_COUNT is used for multi-block transfers
    clock_hz: float  # SD clock after initialisation

    @property
    def blocks(self) -> int:
        return self.capacity // BLOCK_SIZE

    @property
    def csd_fields(self) -> Mapping[str, int]:
        return MappingProxyType(decode_csd(self.csd))

    @property
    def card_type(self) -> CardType:
        if not self.high_capacity:
            return CardType.SDSC
        return CardType.SDXC if self.csd_fields["C_SIZE"] >= SDXC_MIN_C_SIZE else CardType.SDHC

    @property
    def erased_byte(self) -> int:
        """What erased blocks read as: SCR DATA_STAT_AFTER_ERASE (§5.6)."""
        return 0xFF if SCR.field("DATA_STAT_AFTER_ERASE").get(self.scr) else 0x00

    def address(self, lba: int) -> int:
        """The data address of block ``lba``: bytes on SDSC, blocks otherwise (§4.3.14)."""
        return lba if self.high_capacity else lba * BLOCK_SIZE
