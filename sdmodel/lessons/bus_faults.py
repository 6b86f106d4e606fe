"""A wrong CRC on the SD bus for one lesson step (lesson 5, "Errors and recovery").

The bus already carries a CRC flag per command and per written block (``SdBus.command(...,
crc_ok=)``, ``SdBus.write_block(..., crc_ok=)``): a command with a bad CRC7 is ignored by
the card, which sets COM_CRC_ERROR (§4.6.1, reference §5.1 rule 2), and a block with a bad
CRC16 is answered with CRC status 101 (§4.3.4). :class:`BusFaults` sets that flag on the
chosen operation while it is installed, the way noise on a real line would.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sdmodel.lessons.schema import BusFault
from sdmodel.sdbus import BusResponse, SdBus
from sdmodel.tokens import CrcStatus

__all__ = ["BusFaults"]


class BusFaults:
    """``with BusFaults(bus, fault): ...`` corrupts one command or one written block."""

    def __init__(self, bus: SdBus, fault: BusFault) -> None:
        self.bus = bus
        self.fault = fault
        self.hit = False  # the fault has been applied
        self._blocks = 0

    async def _command(self, index: int, arg: int, *, crc_ok: bool = True) -> BusResponse:
        if not self.hit and index == self.fault.command:
            self.hit, crc_ok = True, False
        return await SdBus.command(self.bus, index, arg, crc_ok=crc_ok)

    async def _write_block(self, data: bytes, *, crc_ok: bool = True) -> CrcStatus | None:
        self._blocks += 1
        if not self.hit and self._blocks == self.fault.data_block:
            self.hit, crc_ok = True, False
        return await SdBus.write_block(self.bus, data, crc_ok=crc_ok)

    def __enter__(self) -> Self:
        if self.fault.command is not None:
            self.bus.command = self._command  # type: ignore[method-assign]
        if self.fault.data_block is not None:
            self.bus.write_block = self._write_block  # type: ignore[method-assign]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for name in ("command", "write_block"):
            self.bus.__dict__.pop(name, None)
