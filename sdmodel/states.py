"""Card states (Physical Layer spec §4.8) with their CURRENT_STATE codes (§4.10.1)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CardState"]


class CardState(IntEnum):
    """The value is the CURRENT_STATE code reported in card status bits 12:9."""

    IDLE = 0
    READY = 1
    IDENT = 2
    STBY = 3
    TRAN = 4
    DATA = 5
    RCV = 6
    PRG = 7
    DIS = 8
    INA = 15  # not reportable: a card in ina never answers; 15 keeps it apart

    @property
    def label(self) -> str:
        return self.name.lower()
