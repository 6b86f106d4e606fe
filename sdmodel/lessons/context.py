"""What a lesson step saw, as the check evaluators read it: the trace items of the step
(simulated tokens and events, or tokens decoded from a capture) and the commands paired
with their responses, SD mode and SPI mode alike (:class:`Exchange`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from sdmodel.commands import lookup
from sdmodel.driver.workload import WorkloadResult
from sdmodel.registers import card_status_of_response, current_state
from sdmodel.tokens import CommandToken, ResponseToken, SpiToken, Token

__all__ = ["Source", "Exchange", "StepContext", "card_state", "card_status", "spi_is_app",
           "pair_exchanges"]



class Source(StrEnum):
    """Where a check kind can look: the simulation, a decoded capture, or both."""

    SIM = "simulation"
    CAPTURE = "capture"
    ANY = "any"


@dataclass(frozen=True)
class Exchange:
    """A command and the response to it (None when the card stayed silent)."""

    index: int
    app: bool
    arg: int
    command: Token
    response: Token | None
    type: str  # response type: R1, R1b, ... or "none"
    value: int | None  # SD: the payload; SPI: R1 byte, R2 16 bits, R3/R7 the 32 after R1
    raw: bytes = b""  # SPI: the response bytes on MISO

    @property
    def name(self) -> str:
        command = lookup(self.index, self.app)
        prefix = "ACMD" if self.app else "CMD"
        return f"{prefix}{self.index}" + (f" {command.name}" if command else "")

    def describe(self) -> str:
        text = f"{self.name} arg=0x{self.arg:08X}"
        if self.response is None or self.value is None:
            return f"{text}, no response"
        if self.raw:
            return f"{text} -> {self.type} {self.raw.hex(' ').upper()}"
        state = card_state(self)
        shown = f" ({state})" if state is not None else ""
        width = 32 if self.type == "R2" else 8
        return f"{text} -> {self.type} 0x{self.value:0{width}X}{shown}"


def card_state(x: Exchange) -> str | None:
    """CURRENT_STATE of an SD-mode R1/R1b/R6 (§4.10.1, §4.9.5), as a state name."""
    status = card_status(x)
    return None if status is None else current_state(status).label


def card_status(x: Exchange) -> int | None:
    """The card status an SD-mode R1/R1b/R6 carries (R6: its 16 bits mapped back)."""
    if x.raw or x.value is None:
        return None
    return card_status_of_response(x.type, x.value)


def spi_is_app(info: Mapping[str, Any]) -> bool:
    return str(info.get("name", "")).startswith("ACMD")


def _spi_value(kind: str, raw: bytes) -> int:
    if kind in ("R3", "R7"):
        return int.from_bytes(raw[1:5], "big")
    return int.from_bytes(raw[:2] if kind == "R2" else raw[:1], "big")


def pair_exchanges(tokens: Sequence[Token]) -> list[Exchange]:
    """Commands paired with their responses, SD mode and SPI mode alike."""
    found: list[Exchange] = []
    pending: Exchange | None = None

    def close() -> None:
        if pending is not None:
            found.append(pending)

    for t in tokens:
        if isinstance(t, CommandToken):
            close()
            command = lookup(t.index, t.app)
            app = bool(t.app and command is not None and command.app)
            pending = Exchange(t.index, app, t.arg, t, None, "none", None)
        elif isinstance(t, ResponseToken) and pending is not None and pending.response is None:
            pending = Exchange(pending.index, pending.app, pending.arg, pending.command, t,
                               t.type, t.value)
        elif isinstance(t, SpiToken) and t.what == "cmd":
            close()
            index = int(t.info.get("index", -1))
            arg = int(str(t.info.get("arg", "0")), 16)
            pending = Exchange(index, spi_is_app(t.info), arg, t, None, "none", None)
        elif (isinstance(t, SpiToken) and t.what == "rsp" and pending is not None
              and pending.response is None):
            command = lookup(pending.index, pending.app)
            kind = command.spi.value if command is not None and command.spi else "R1"
            raw = bytes(t.miso or b"")
            pending = Exchange(pending.index, pending.app, pending.arg, pending.command, t,
                               kind, _spi_value(kind, raw), raw)
    close()
    return found


@dataclass
class StepContext:
    """What one step produced, for the evaluators."""

    tokens: Sequence[Token]  # by start time
    mode: str = "sd"  # "sd" | "spi"
    source: Source = Source.SIM
    loop_gap_ms: float | None = None  # largest event-loop gap while the step ran
    workload: WorkloadResult | None = None  # the workload that finished during the step
    clock_edges: np.ndarray | None = None  # capture: ps of every rising CLK edge
    # Items just before the step, back to the last command: a data block or a CRC status
    # in this step may belong to a command an earlier step sent.
    lead_in: Sequence[Token] = ()

    @functools.cached_property
    def all_exchanges(self) -> list[Exchange]:
        """Exchanges of the lead-in and the step."""
        return pair_exchanges([*self.lead_in, *self.tokens])

    @functools.cached_property
    def exchanges(self) -> list[Exchange]:
        """Exchanges whose command was sent in this step."""
        mine = self._ids
        return [x for x in self.all_exchanges if id(x.command) in mine]

    @functools.cached_property
    def _ids(self) -> set[int]:
        return {id(t) for t in self.tokens}

    def in_step(self, token: Token) -> bool:
        return id(token) in self._ids

    def of(self, cls: type[Token]) -> list[Any]:
        return [t for t in self.tokens if isinstance(t, cls)]

    def spi(self, what: str) -> list[SpiToken]:
        return [t for t in self.tokens if isinstance(t, SpiToken) and t.what == what]
