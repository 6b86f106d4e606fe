"""Which kind of card an image of a given size becomes (Physical Layer spec §5.3).

SDSC: up to 2 GiB, CSD v1.0, byte addressing. SDHC: above 2 GiB while the CSD v2.0
C_SIZE stays below 0xFFFF (just under 32 GiB). SDXC: C_SIZE >= 0xFFFF up to 2 TiB
(Linux flags a card SDXC exactly when C_SIZE >= 0xFFFF). Larger needs SDUC (not modelled).
"""

from __future__ import annotations

from enum import Enum

from sdmodel.errors import ImageError

__all__ = [
    "BLOCK_SIZE",
    "SDSC_MAX_BYTES",
    "SDHC_MAX_BYTES",
    "MAX_IMAGE_BYTES",
    "MIN_IMAGE_BYTES",
    "CardType",
    "card_type_for_size",
    "validate_image_size",
]

BLOCK_SIZE = 512
SDSC_MAX_BYTES = 2 * 1024**3
_V2_UNIT = 512 * 1024  # CSD v2.0 capacity unit, §5.3.3
SDHC_MAX_BYTES = 0x10000 * _V2_UNIT - BLOCK_SIZE  # largest size whose C_SIZE < 0xFFFF
MAX_IMAGE_BYTES = 2 * 1024**4
MIN_IMAGE_BYTES = 4 * BLOCK_SIZE  # CSD v1.0: (C_SIZE + 1) x 2^(C_SIZE_MULT + 2) x 512, all 0


class CardType(str, Enum):
    SDSC = "SDSC"
    SDHC = "SDHC"
    SDXC = "SDXC"

    @property
    def block_addressed(self) -> bool:
        """SDHC/SDXC take block addresses, SDSC byte addresses (§4.3.14 / OCR CCS)."""
        return self is not CardType.SDSC


def validate_image_size(size: int) -> None:
    """Raise ImageError unless ``size`` bytes can back a card."""
    if size <= 0:
        raise ImageError("image is empty (0 bytes); a card needs at least 2048 bytes")
    if size % BLOCK_SIZE:
        raise ImageError(
            f"image size {size} bytes is not a multiple of {BLOCK_SIZE}; "
            f"pad or truncate it to {size // BLOCK_SIZE * BLOCK_SIZE} or "
            f"{(size // BLOCK_SIZE + 1) * BLOCK_SIZE} bytes"
        )
    if size < MIN_IMAGE_BYTES:
        raise ImageError(
            f"image is only {size} bytes; the smallest card a CSD can describe is "
            f"{MIN_IMAGE_BYTES} bytes (4 blocks)"
        )
    if size > MAX_IMAGE_BYTES:
        raise ImageError(
            f"image is {size} bytes; cards larger than 2 TiB (SDUC) are not supported"
        )


def card_type_for_size(size: int) -> CardType:
    """The card type presented for an image of ``size`` bytes (validated first)."""
    validate_image_size(size)
    if size <= SDSC_MAX_BYTES:
        return CardType.SDSC
    if size <= SDHC_MAX_BYTES:
        return CardType.SDHC
    return CardType.SDXC
