"""Protocol findings during a simulation, from the same table as the decoder's.

The decoder finds violations in captured samples; a simulation knows its tokens
directly, so this checker watches the trace as it grows and adds a FindingToken where
the bus shows a problem a user wants to stop on: a command with a bad CRC, a command
left without a response, an error bit in an R1, a data block with a bad CRC, a written
block the card refused, the controller's data timeout, a failing backing store.
"""

from __future__ import annotations

from sdmodel.commands import Resp, lookup
from sdmodel.decode.findings import make_finding
from sdmodel.registers import ERROR_BITS, error_names
from sdmodel.storage import StorageError
from sdmodel.tokens import (
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    Line,
    ResponseToken,
    Token,
)
from sdmodel.trace import IrqEvent, Trace

__all__ = ["LiveChecker"]

_R1 = ("R1", "R1b")


def _error_names(status: int) -> str:
    return " ".join(error_names(status))


class LiveChecker:
    """Adds findings to ``trace`` as bus tokens arrive (connect it before the run)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._awaiting: CommandToken | None = None  # command whose response is still due
        self._last: Token | None = None
        trace.events.appended.connect(self._on_item)

    def _add(self, code: str, token: Token, message: str, on: Line = Line.CMD) -> None:
        self.trace.append(make_finding(code, token.start, token.end, message,
                                       period=token.period, on=on))

    def _on_item(self, item: Token) -> None:
        if isinstance(item, FindingToken):
            return
        self._last = item
        if isinstance(item, CommandToken):
            self._command(item)
        elif isinstance(item, ResponseToken):
            self._awaiting = None
            if item.type in _R1 and item.value & ERROR_BITS:
                self._add("card_error", item, f"{item.type} for CMD{item.for_index}: "
                          f"{_error_names(item.value)}")
        elif isinstance(item, DataToken) and not item.crc_ok:
            self._add("data_crc", item, f"{item.nbytes}-byte block with a wrong CRC16",
                      Line.DAT)
        elif isinstance(item, CrcStatusToken) and item.status != CrcStatus.ACCEPTED:
            meaning = item.fields()["meaning"].replace("_", " ")
            self._add("crc_status", item, f"CRC status {item.status:03b} ({meaning})", Line.DAT)
        elif isinstance(item, IrqEvent) and item.level and "DATA_TIMEOUT" in item.bits:
            self._add("data_timeout", item, "data timeout interrupt: no data or busy end "
                      "before the controller's timeout", Line.DAT)

    def _command(self, token: CommandToken) -> None:
        if self._awaiting is not None:
            self._no_response(self._awaiting)
        if not token.crc_ok:
            self._add("cmd_crc", token, f"{token.name} sent with a wrong CRC7")
        cmd = lookup(token.index, token.app)
        self._awaiting = token if cmd is not None and cmd.resp is not Resp.NONE else None

    def _no_response(self, token: CommandToken) -> None:
        self._awaiting = None
        self._add("no_response", token, f"{token.name}: no response (the card ignored it)")

    def storage_failed(self, error: StorageError) -> None:
        """Connect to ``card.events.storage_error``."""
        anchor = self._last
        start = anchor.end if anchor is not None else 0
        self.trace.append(make_finding("storage_fault", start, start, f"storage: {error}",
                                       on=Line.DAT))

    def finish(self) -> None:
        """The run ended: a command still waiting for its response never got one."""
        if self._awaiting is not None:
            self._no_response(self._awaiting)
