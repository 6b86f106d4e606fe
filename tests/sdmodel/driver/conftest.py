"""The whole stack on a real image file: card, SD bus, SDHCI controller and host driver."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.clock import SimClock
from sdmodel.driver import HostDriver, Request
from sdmodel.sdbus import SdBus
from sdmodel.sdhci.controller import SdhciController
from sdmodel.tokens import CommandToken
from sdmodel.trace import IrqEvent, RegisterEvent, Trace

if TYPE_CHECKING:
    from conftest import CardHarness

__all__ = ["Rig"]


@dataclass
class Rig:
    h: CardHarness
    bus: SdBus
    controller: SdhciController
    driver: HostDriver
    log: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    @property
    def trace(self) -> Trace:
        return self.bus.trace

    def fill_block(self, lba: int, byte: int) -> None:
        """Change a block in the image file directly, behind the card's back."""
        fd = os.open(self.h.path, os.O_WRONLY)
        try:
            os.pwrite(fd, bytes([byte]) * BLOCK_SIZE, lba * BLOCK_SIZE)
        finally:
            os.close(fd)

    def commands(self, since: int = 0) -> list[str]:
        """"CMD17", "ACMD41"... in bus order, from trace position ``since`` on."""
        return [f"{'ACMD' if t.app else 'CMD'}{t.index}" for t in self.trace.tokens[since:]
                if isinstance(t, CommandToken)]

    def register_writes(self, since: int = 0) -> list[tuple[str, int]]:
        return [(t.reg, t.new) for t in self.trace.tokens[since:]
                if isinstance(t, RegisterEvent) and t.access == "write"]

    def irq_bits(self, since: int = 0, until: int | None = None) -> list[tuple[str, ...]]:
        """The status bits that raised the IRQ line, one tuple per rising edge."""
        return [t.bits for t in self.trace.tokens[since:until]
                if isinstance(t, IrqEvent) and t.level]

    def command_positions(self, index: int) -> list[int]:
        """Trace positions of the commands with ``index``."""
        return [i for i, t in enumerate(self.trace.tokens)
                if isinstance(t, CommandToken) and t.index == index]


@pytest.fixture
def make_rig(make_card: Callable[..., CardHarness]) -> Callable[..., Rig]:
    """``make_rig(kind, bus_width=4, use_dma=True, retries=3, host_high_speed=True,
    max_clock_hz=None, time_scale=1.0, **CardOptions)``: a card on a fresh image behind
    the real controller."""

    def make(kind: str = "SDHC", *, bus_width: int = 4, use_dma: bool = True, retries: int = 3,
             host_high_speed: bool = True, max_clock_hz: float | None = None,
             time_scale: float = 1.0, **card_options: Any) -> Rig:
        h = make_card(kind, **card_options)
        bus = SdBus(h.card, SimClock(time_scale=time_scale), Trace())
        controller = SdhciController(bus)
        log: list[str] = []
        driver = HostDriver(controller, bus_width=bus_width, use_dma=use_dma, retries=retries,
                            high_speed=host_high_speed, max_clock_hz=max_clock_hz,
                            log=log.append)
        rig = Rig(h, bus, controller, driver, log)
        driver.events.request.connect(rig.requests.append)
        return rig

    return make
