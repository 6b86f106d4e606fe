"""The simulator: card, storage, bus, host controller and driver on one asyncio loop.

    sim = Simulator("card.img", SimOptions(bus_width=4, latency="0-50ms"))
    result = await sim.run("init; read 0 16; write 64 8")
    print(sim.summary().table())
    await sim.aclose()

SD mode runs the SDHCI controller model and the Linux-like driver over the SD bus; SPI
mode runs an SPI host over the card's SPI framing. Every bus operation passes the
scheduler's gate, so a front end can pause, step and break anywhere (design.md
"Stepping"); simulated time follows wall time x ``time_scale`` while storage is
pending (design.md "Asynchronous storage").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sdmodel.card import Card
from sdmodel.clock import SimClock
from sdmodel.driver import HostDriver
from sdmodel.driver.host import Request
from sdmodel.driver.workload import Step, WorkloadResult, parse_workload, run_workload
from sdmodel.errors import SdscopeError
from sdmodel.events import EmitterGroup
from sdmodel.sdbus import SdBus
from sdmodel.sdhci import SdhciController
from sdmodel.sim.breakpoints import parse_breakpoint
from sdmodel.sim.checker import LiveChecker
from sdmodel.sim.scheduler import Scheduler
from sdmodel.sim.summary import SimSummary
from sdmodel.spi import SpiCard
from sdmodel.spihost import SpiHost
from sdmodel.storage import Storage, StorageOptions, parse_fault_spec, parse_latency_spec
from sdmodel.trace import Trace

__all__ = ["SimOptions", "Simulator", "SimOptionError", "ID_CLOCK_HZ", "MAX_SD_CLOCK_HZ"]

ID_CLOCK_HZ = 400_000  # identification clock (§4.2; reference §1)
MAX_SD_CLOCK_HZ = 50_000_000  # High Speed (§4.3.10); UHS-I modes are not modelled
MAX_SPI_CLOCK_HZ = 25_000_000  # SPI mode tops out at the default-speed clock (§7.2)
SIM_FREE_WALL_S = 0.02  # storage answering faster than this counts as instant (determinism)


class SimOptionError(SdscopeError, ValueError):
    """A simulator option out of range (one line, names the option)."""


@dataclass(frozen=True)
class SimOptions:
    mode: Literal["sd", "spi"] = "sd"
    bus_width: int = 4  # SD mode: 1 or 4 DAT lines after ACMD6
    clock_hz: int | None = None  # card clock after init; None: the fastest the card offers
    use_dma: bool = True  # SDMA (else PIO through the buffer data port)
    latency: str = "0"  # storage latency spec, e.g. "300ms", "0-500ms"
    faults: tuple[str, ...] = ()  # storage fault specs, e.g. "eio=100-199", "hang"
    legacy_sync: bool = False  # storage I/O in the loop thread (the old freeze)
    durable: bool = False
    read_only: bool = False
    time_scale: float = 1.0  # simulated seconds per wall second while storage is pending
    seed: int = 0
    trace_budget: int = 64 * 1024 * 1024  # bytes of data payload the trace keeps
    breakpoints: tuple[str, ...] = ()

    def check(self) -> None:
        if self.mode not in ("sd", "spi"):
            raise SimOptionError(f"--mode must be sd or spi, not {self.mode!r}")
        if self.bus_width not in (1, 4):
            raise SimOptionError(f"--bus-width must be 1 or 4, not {self.bus_width}")
        top = MAX_SD_CLOCK_HZ if self.mode == "sd" else MAX_SPI_CLOCK_HZ
        if self.clock_hz is not None and not ID_CLOCK_HZ <= self.clock_hz <= top:
            raise SimOptionError(f"--clock must be {ID_CLOCK_HZ} to {top} Hz in {self.mode} "
                                 f"mode, not {self.clock_hz}")
        if not self.time_scale > 0:
            raise SimOptionError(f"--time-scale must be positive, not {self.time_scale}")
        if self.trace_budget < 0:
            raise SimOptionError("the trace budget must be >= 0 bytes")


class Simulator:
    """One simulated card with its host. Events: ``log(str)``, ``step(StepResult)``."""

    def __init__(self, image: str | Path, options: SimOptions | None = None) -> None:
        self.options = options = options or SimOptions()
        options.check()
        try:
            latency = parse_latency_spec(options.latency)
            faults = [parse_fault_spec(spec) for spec in options.faults]
        except ValueError as error:
            raise SimOptionError(str(error)) from None
        breakpoints = [parse_breakpoint(spec) for spec in options.breakpoints]
        self.events = EmitterGroup("log", "step")
        self.trace = Trace(payload_budget=options.trace_budget)
        self.clock = SimClock(ID_CLOCK_HZ, time_scale=options.time_scale,
                              free_wall_s=SIM_FREE_WALL_S)
        self.storage = Storage.open(image, StorageOptions(
            read_only=options.read_only, durable=options.durable,
            legacy_sync=options.legacy_sync))
        self.storage.faults.reseed(options.seed)
        self.storage.faults.latency = latency
        for fault in faults:
            fault.apply(self.storage.faults)
        self.card = Card(self.storage)
        self.scheduler = Scheduler(self.clock, self.trace)
        self.scheduler.breakpoints.extend(breakpoints)
        self.checker = LiveChecker(self.trace)
        self.card.events.storage_error.connect(self.checker.storage_failed)
        self.bus: SdBus | None = None
        self.controller: SdhciController | None = None
        self.host: HostDriver | SpiHost
        if options.mode == "sd":
            self.bus = SdBus(self.card, self.clock, self.trace)
            self.bus.gate = self.scheduler.gate
            self.controller = SdhciController(self.bus)
            self.host = HostDriver(self.controller, bus_width=options.bus_width,
                                   max_clock_hz=options.clock_hz, use_dma=options.use_dma,
                                   log=self._log)
        else:
            self.spi = SpiCard(self.card, self.trace, self.clock)
            self.host = SpiHost(self.spi, gate=self.scheduler.gate, clock_hz=options.clock_hz,
                                log=self._log)
        self.host.events.request.connect(self._on_request)
        self.wall_s = 0.0
        self.result: WorkloadResult | None = None

    def _log(self, message: str) -> None:
        self.events.log.emit(message)

    def _on_request(self, request: Request) -> None:
        if request.done:
            self.scheduler.request_done()

    async def run(self, workload: str | Sequence[Step],
                  on_step: Callable[..., None] | None = None) -> WorkloadResult:
        """Run a workload to its end (through pauses and steps the scheduler imposes)."""
        steps = parse_workload(workload) if isinstance(workload, str) else list(workload)
        self.scheduler.restart()
        wall0 = time.perf_counter()
        try:
            self.result = await run_workload(self.host, steps, seed=self.options.seed,
                                             on_step=on_step or self.events.step.emit)
        finally:
            self.wall_s += time.perf_counter() - wall0
            self.checker.finish()
            self.scheduler.finish()
        return self.result

    def summary(self) -> SimSummary:
        errors = self.result.errors if self.result is not None else []
        return SimSummary.of(self.trace, simulated_ps=self.clock.now, wall_s=self.wall_s,
                             workload_errors=errors)

    async def aclose(self) -> None:
        """Release a hang, let storage jobs end (at most 1 s), close the image."""
        self.storage.faults.release()
        await self.storage.aclose()
