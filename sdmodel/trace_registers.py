"""The card registers a trace shows on the bus: what a decoded capture tells about its card.

A real capture has no model behind it, but its responses and data blocks carry the card's
registers: R3 the OCR (§4.9.4; SPI: CMD58's R3, §7.3.2.4), R2 the CID or CSD (§4.9.3; SPI:
a data block after CMD10/CMD9, §7.2.6), ACMD51's data block the SCR (§5.6), ACMD13's the
SD Status (§4.10.2), and each R1/R1b/R6 the card status with the CURRENT_STATE the card was
in when its command arrived (§4.10.1). The newest of each wins, keyed like
``Card.register_values`` so the register view shows either the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sdmodel.registers import card_status_of_response, current_state
from sdmodel.states import CardState
from sdmodel.tokens import CommandToken, DataToken, Line, ResponseToken, Token

__all__ = ["SeenRegisters", "registers_seen"]

# command (index, app) -> the register its R2 / data block carries
_R2_REGISTER = {(2, False): "CID", (10, False): "CID", (9, False): "CSD"}
_BLOCK_REGISTER = {
    (9, False): ("CSD", 16), (10, False): ("CID", 16),  # SPI mode reads them as blocks
    (51, True): ("SCR", 8), (13, True): ("SD_STATUS", 64),
}
_OCR_BITS = 0xFFFF_FFFF


@dataclass
class SeenRegisters:
    """Registers seen in a trace (``Card.register_values`` keys), each with the time (ps)
    of the token that carried it, and the card state the newest card status reported.
    ``feed`` the tokens in time order (a decoder can feed them as it makes them)."""

    values: dict[str, int | bytes] = field(default_factory=dict)
    times: dict[str, int] = field(default_factory=dict)
    state: CardState | None = None
    _command: tuple[int, bool] | None = None  # the newest command: (index, app)

    def feed(self, token: Token) -> None:
        if isinstance(token, CommandToken):
            self._command = (token.index, token.app)
        elif isinstance(token, ResponseToken) and token.crc_ok:
            self._response(token)
        elif isinstance(token, DataToken) and not token.to_card and token.crc_ok:
            self._block(token)

    def _response(self, token: ResponseToken) -> None:
        status = _card_status(token)
        if status is not None:
            self._see("CARD_STATUS", status, token)
            self.state = _state(status)
        elif token.type == "R3":
            self._see("OCR", token.value & _OCR_BITS, token)  # SPI: after the R1 byte
        elif token.type == "R2" and token.line is not Line.SPI and self._command is not None:
            register = _R2_REGISTER.get(self._command)
            if register is not None:
                self._see(register, token.value, token)

    def _block(self, token: DataToken) -> None:
        key = (token.for_index, token.app) if token.for_index is not None else self._command
        register, size = _BLOCK_REGISTER.get(key, (None, 0)) if key else (None, 0)
        if register is None or token.data is None or len(token.data) != size:
            return
        data = bytes(token.data)
        self._see(register, int.from_bytes(data, "big") if register in ("CID", "CSD") else data,
                  token)

    def _see(self, name: str, value: int | bytes, token: Token) -> None:
        self.values[name] = value
        self.times[name] = token.start


def _card_status(rsp: ResponseToken) -> int | None:
    if rsp.line is Line.SPI:
        return None  # SPI R1/R2 are not the §4.10.1 card status
    return card_status_of_response(rsp.type, rsp.value)


def _state(status: int) -> CardState | None:
    try:
        return current_state(status)
    except ValueError:  # a reserved CURRENT_STATE code
        return None


def registers_seen(tokens: Iterable[Token]) -> SeenRegisters:
    """Scan ``tokens`` (a trace or a decoded capture) for the registers they carry."""
    seen = SeenRegisters()
    for token in tokens:
        seen.feed(token)
    return seen
