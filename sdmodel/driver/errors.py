"""Errors of the host driver: one line each, naming the command and what went wrong."""

from __future__ import annotations

from sdmodel.errors import SdscopeError
from sdmodel.registers import error_names

__all__ = ["DriverError", "CardRemovedError", "CardStatusError"]


class DriverError(SdscopeError):
    """A request failed: bus errors that outlived the retries, card-reported errors,
    a card that is not initialised, or a request outside the card."""


class CardRemovedError(DriverError):
    """The card left the slot: every pending and later request fails with this."""

    def __init__(self, message: str = "card removed") -> None:
        super().__init__(message)


class CardStatusError(DriverError):
    """The card answered with error bits in its status (R1, §4.10.1): ``what`` names the
    command, ``errors`` the bits that make it a failure."""

    def __init__(self, what: str, status: int, errors: int) -> None:
        names = "|".join(error_names(status, errors))
        super().__init__(f"{what}: card status 0x{status:08X} ({names})")
        self.what = what
        self.status = status
        self.errors = errors
