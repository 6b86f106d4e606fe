"""Minimal CircuitPython ``busio``, ``digitalio`` and ``micropython`` over a BlockingSpiCard.

Just what ``adafruit_sdcard`` and ``adafruit_bus_device.spi_device`` call, with the
semantics of the CircuitPython core (``busio.SPI``: lock required, ``start``/``end``
slices, ``readinto`` clocks out ``write_value``). Installed into ``sys.modules`` by the test
instead of Adafruit-Blinka's modules, which probe for a board.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Protocol

import pytest

__all__ = ["SpiBus", "SPI", "DigitalInOut", "Direction", "install"]


class SpiBus(Protocol):
    def select(self, asserted: bool) -> None: ...

    def exchange(self, mosi: bytes) -> bytes: ...


class SPI:
    """``busio.SPI`` on one simulated bus: mode 0 only, 8-bit words."""

    def __init__(self, bus: SpiBus) -> None:
        self._bus = bus
        self._locked = False
        self.frequency = 0

    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def configure(self, *, baudrate: int = 100000, polarity: int = 0, phase: int = 0,
                  bits: int = 8) -> None:
        self._check_lock()
        if (polarity, phase, bits) != (0, 0, 8):
            raise ValueError(f"SD cards need SPI mode 0, 8 bits, not {polarity}/{phase}/{bits}")
        self.frequency = baudrate

    def write(self, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._check_lock()
        self._bus.exchange(bytes(buffer[start:end]))

    def readinto(self, buffer: Any, *, start: int = 0, end: int | None = None,
                 write_value: int = 0) -> None:
        self._check_lock()
        end = len(buffer) if end is None else end
        buffer[start:end] = self._bus.exchange(bytes([write_value]) * (end - start))

    def write_readinto(self, out_buffer: Any, in_buffer: Any, *, out_start: int = 0,
                       out_end: int | None = None, in_start: int = 0,
                       in_end: int | None = None) -> None:
        self._check_lock()
        out = bytes(out_buffer[out_start:out_end])
        in_end = len(in_buffer) if in_end is None else in_end
        if len(out) != in_end - in_start:
            raise ValueError("buffer slices must be of equal length")
        in_buffer[in_start:in_end] = self._bus.exchange(out)

    def _check_lock(self) -> None:
        if not self._locked:
            raise RuntimeError("Function requires lock")


class Direction:
    INPUT = "input"
    OUTPUT = "output"


class DigitalInOut:
    """``digitalio.DigitalInOut`` for the CS# pin: ``value`` False selects the card."""

    def __init__(self, bus: SpiBus) -> None:
        self._bus = bus
        self._value = True
        self.direction = Direction.INPUT

    def switch_to_output(self, value: bool = False, drive_mode: object = None) -> None:
        self.direction = Direction.OUTPUT
        self.value = value

    @property
    def value(self) -> bool:
        return self._value

    @value.setter
    def value(self, level: bool) -> None:
        self._value = bool(level)
        self._bus.select(not self._value)


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``busio``, ``digitalio`` and ``micropython`` these shims for one test; Adafruit's
    modules are dropped from the module cache so they import against the shims."""
    modules = {
        "micropython": _module("micropython", const=lambda value: value),
        "busio": _module("busio", SPI=SPI),
        "digitalio": _module("digitalio", DigitalInOut=DigitalInOut, Direction=Direction),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in ("adafruit_sdcard", "adafruit_bus_device.spi_device"):
        monkeypatch.delitem(sys.modules, name, raising=False)
