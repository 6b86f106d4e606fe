"""Bus tokens: the unit of the trace (design.md "Time and events").

A token is one thing on the bus with its start and end in simulated picoseconds and
the clock period in force: a command, a response, a data block, a CRC-status token,
a busy period, idle clocks, an SPI byte exchange, or a protocol finding. Simulated
cards emit them, the decoder produces the same types from real captures, and
``to_json`` gives the JSON Lines schema shared by ``sdscope decode`` and ``simulate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from sdmodel.commands import command_name, lookup

__all__ = [
    "Line",
    "CrcStatus",
    "Token",
    "CommandToken",
    "ResponseToken",
    "DataToken",
    "CrcStatusToken",
    "BusyToken",
    "IdleToken",
    "SpiToken",
    "FindingToken",
    "PS_PER_S",
]

PS_PER_S = 1_000_000_000_000


class Line(str, Enum):
    CMD = "CMD"
    DAT = "DAT"
    SPI = "SPI"
    HOST = "HOST"  # controller register accesses and the IRQ line (not bus signals)
    CARD = "CARD"  # card state changes


class CrcStatus(int, Enum):
    """The three status bits after a written block (§4.3.4 / reference §9)."""

    ACCEPTED = 0b010
    CRC_ERROR = 0b101
    WRITE_ERROR = 0b110


@dataclass(slots=True)
class Token:
    start: int  # ps since power-on
    end: int  # ps
    period: int = 0  # clock period in force, ps (0 = unknown)
    kind: ClassVar[str] = "token"
    line: ClassVar[Line] = Line.CMD

    @property
    def clocks(self) -> int:
        return (self.end - self.start) // self.period if self.period else 0

    def fields(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": self.start / PS_PER_S,
            "end": self.end / PS_PER_S,
            "line": self.line.value,
            "kind": self.kind,
        }
        out.update(self.fields())
        return out

    def label(self) -> str:
        return self.kind


@dataclass(slots=True)
class CommandToken(Token):
    index: int = 0
    arg: int = 0
    app: bool = False  # taken as an ACMD (follows CMD55)
    crc_ok: bool = True
    kind: ClassVar[str] = "cmd"
    line: ClassVar[Line] = Line.CMD

    @property
    def name(self) -> str:
        return command_name(self.index, self.app)

    def fields(self) -> dict[str, Any]:
        cmd = lookup(self.index, self.app)
        return {
            "index": self.index,
            "app": bool(self.app and cmd is not None and cmd.app),
            "name": self.name,
            "arg": f"0x{self.arg:08X}",
            "crc_ok": self.crc_ok,
        }

    def label(self) -> str:
        return f"{self.name} arg=0x{self.arg:08X}"


@dataclass(slots=True)
class ResponseToken(Token):
    type: str = "R1"  # R1, R1b, R2, R3, R6, R7 (SD mode)
    index: int = 0  # index field ([45:40]; 0x3F for R2/R3)
    value: int = 0  # R1/R1b/R3/R6/R7: the 32-bit payload; R2: the 128-bit register
    crc_ok: bool = True
    for_index: int | None = None  # command being answered
    kind: ClassVar[str] = "rsp"
    line: ClassVar[Line] = Line.CMD

    def fields(self) -> dict[str, Any]:
        width = 32 if self.type == "R2" else 8
        out: dict[str, Any] = {"type": self.type, "value": f"0x{self.value:0{width}X}"}
        if self.type != "R3":
            out["crc_ok"] = self.crc_ok
        if self.for_index is not None:
            out["for_index"] = self.for_index
        return out

    def label(self) -> str:
        return f"{self.type} 0x{self.value:X}"


@dataclass(slots=True)
class DataToken(Token):
    data: bytes | None = b""  # None once the trace dropped the payload (size kept)
    nbytes: int = 0
    width: int = 1  # DAT lines used
    crc_ok: bool = True
    crcs: tuple[int, ...] = ()  # CRC16 per line as sent
    to_card: bool = False  # host -> card (write) or card -> host (read)
    for_index: int | None = None  # the data command the block belongs to, when known
    app: bool = False  # that command was an ACMD
    kind: ClassVar[str] = "data"
    line: ClassVar[Line] = Line.DAT

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nbytes": self.nbytes,
            "width": self.width,
            "crc_ok": self.crc_ok,
            "dir": "write" if self.to_card else "read",
        }
        if self.for_index is not None:
            out["for_index"] = self.for_index
        return out

    def label(self) -> str:
        return f"{'write' if self.to_card else 'read'} {self.nbytes} B x{self.width}"


@dataclass(slots=True)
class CrcStatusToken(Token):
    status: int = CrcStatus.ACCEPTED
    kind: ClassVar[str] = "crc_status"
    line: ClassVar[Line] = Line.DAT

    def fields(self) -> dict[str, Any]:
        name = {s.value: s.name.lower() for s in CrcStatus}.get(self.status, "invalid")
        return {"status": f"{self.status:03b}", "meaning": name}

    def label(self) -> str:
        return f"CRC status {self.status:03b}"


@dataclass(slots=True)
class BusyToken(Token):
    reason: str = ""  # "program", "erase", "R1b", ...
    kind: ClassVar[str] = "busy"
    line: ClassVar[Line] = Line.DAT

    def fields(self) -> dict[str, Any]:
        return {"reason": self.reason, "duration": (self.end - self.start) / PS_PER_S}

    def label(self) -> str:
        return f"busy ({self.reason})" if self.reason else "busy"


@dataclass(slots=True)
class IdleToken(Token):
    """Clocks with nothing on CMD/DAT (power-up clocks, N_RC gaps)."""

    reason: str = ""
    kind: ClassVar[str] = "idle"
    line: ClassVar[Line] = Line.CMD

    def fields(self) -> dict[str, Any]:
        return {"clocks": self.clocks, "reason": self.reason}


@dataclass(slots=True)
class SpiToken(Token):
    """A run of SPI bytes with one meaning (command, R1, data token, busy...)."""

    what: str = ""  # "cmd", "rsp", "data", "data_response", "busy", "fill"...
    mosi: bytes | None = b""  # None (both sides) once the trace dropped the payload
    miso: bytes | None = b""
    info: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "spi"
    line: ClassVar[Line] = Line.SPI

    def fields(self) -> dict[str, Any]:
        return {"what": self.what, **self.info}


@dataclass(slots=True)
class FindingToken(Token):
    """A protocol finding: late response, command while busy, bad CRC, bad end bit..."""

    code: str = ""
    message: str = ""
    severity: str = "error"  # "error" | "warning" | "info"
    finding_line: Line = Line.CMD
    kind: ClassVar[str] = "finding"
    line: ClassVar[Line] = Line.CMD

    def fields(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "severity": self.severity}

    def to_json(self) -> dict[str, Any]:
        return {**Token.to_json(self), "line": self.finding_line.value}

    def label(self) -> str:
        return self.message or self.code
