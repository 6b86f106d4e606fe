"""The whole simulator (card, storage, SD bus + SDHCI + driver, or SPI host) on real image
files: workloads, slow storage and the data timeout, stepping and breakpoints through the
full stack, determinism, and option checking."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sdmodel.driver import Request
from sdmodel.errors import WorkloadError
from sdmodel.sim.breakpoints import BreakpointError, parse_breakpoint
from sdmodel.sim.scheduler import RunMode, StepUnit
from sdmodel.sim.simulator import SimOptionError, SimOptions, Simulator
from sdmodel.storage import StorageOptions
from sdmodel.tokens import CommandToken, DataToken, FindingToken, SpiToken
from sdmodel.trace import IrqEvent, RegisterEvent, StateEvent

BLOCK = 512
MIB = 1 << 20
GIB = 1 << 30
WORKLOAD = "init; read 0 8; write 100 4 pattern=0xA5; erase 200 16; read 100 4"


def image(tmp_path: Path, size: int, name: str = "card.img") -> Path:
    path = tmp_path / name
    with path.open("wb") as f:
        f.truncate(size)
    return path


async def simulate(path: Path, workload: str = WORKLOAD, **options: object) -> Simulator:
    sim = Simulator(path, SimOptions(**options))  # type: ignore[arg-type]
    try:
        await sim.run(workload)
    finally:
        await sim.aclose()
    return sim


def file_block(path: Path, lba: int) -> bytes:
    with path.open("rb") as f:
        f.seek(lba * BLOCK)
        return f.read(BLOCK)


@pytest.mark.parametrize("size", [64 * MIB, 4 * GIB, 64 * GIB], ids=["SDSC", "SDHC", "SDXC"])
@pytest.mark.parametrize("mode, width", [("sd", 1), ("sd", 4), ("spi", 1)])
async def test_the_issue_workload_runs_on_every_card_type(tmp_path: Path, size: int, mode: str,
                                                          width: int) -> None:
    path = image(tmp_path, size)
    sim = await simulate(path, mode=mode, bus_width=width)
    assert sim.result is not None and sim.result.ok, sim.result.errors
    assert file_block(path, 100) == b"\xa5" * BLOCK
    assert file_block(path, 200) == bytes(BLOCK)
    widths = {t.width for t in sim.trace if isinstance(t, DataToken) and t.nbytes == BLOCK}
    if mode == "sd":
        assert widths == {width}
    else:
        assert any(isinstance(t, SpiToken) for t in sim.trace)
    summary = sim.summary()
    assert summary.blocks_written >= 4 and not summary.findings


async def test_jsonl_items_carry_register_irq_and_state_events(tmp_path: Path) -> None:
    sim = await simulate(image(tmp_path, 64 * MIB), "init; read 0 1")
    kinds = {t.kind for t in sim.trace}
    assert {"cmd", "rsp", "data", "reg", "irq", "state"} <= kinds
    reg = next(t for t in sim.trace if isinstance(t, RegisterEvent) and t.access == "write")
    assert set(reg.to_json()) >= {"t", "kind", "reg", "offset", "old", "new", "access"}
    irq = next(t for t in sim.trace if isinstance(t, IrqEvent) and t.level)
    assert irq.to_json()["level"] == 1 and irq.bits
    for item in sim.trace:
        json.dumps(item.to_json())


async def test_storage_slower_than_the_data_timeout_raises_the_interrupt_and_recovers(
        tmp_path: Path) -> None:
    """A 300 ms storage read against the driver's 100 ms read timeout (reference B.3)."""
    path = image(tmp_path, 4 * GIB)
    sim = Simulator(path, SimOptions(breakpoints=("irq=DATA_TIMEOUT",)))

    def slow_after_init(request: Request) -> None:
        if request.op == "init" and request.done:
            sim.storage.faults.latency = 0.3

    sim.host.events.request.connect(slow_after_init)
    run = asyncio.ensure_future(sim.run("init; read 0 1"))
    await sim.scheduler.wait_parked()
    assert sim.scheduler.hit is not None
    assert isinstance(sim.scheduler.hit[1], IrqEvent)
    sim.storage.faults.latency = 0.0
    sim.scheduler.breakpoints.clear()  # a retry that times out again would stop too
    sim.scheduler.run()
    result = await run
    await sim.aclose()
    timeouts = [t for t in sim.trace if isinstance(t, FindingToken) and t.code == "data_timeout"]
    assert timeouts
    assert result.ok  # the driver stopped, reset DAT and retried
    after = [t.index for t in sim.trace if isinstance(t, CommandToken)
             and t.start > timeouts[0].start]
    assert 17 in after or 18 in after


async def test_stepping_by_transfer_completes_one_driver_request_each(tmp_path: Path) -> None:
    sim = Simulator(image(tmp_path, 4 * GIB))
    sim.scheduler.pause()
    run = asyncio.ensure_future(sim.run("init; read 0 1; write 10 1; read 10 1"))
    done = []
    for _ in range(4):
        await sim.scheduler.step(StepUnit.TRANSFER)
        done.append(sim.scheduler.transfers_done)
    assert done == [1, 2, 3, 4]
    assert (await run).ok
    await sim.aclose()


async def test_stepping_by_command_through_the_controller(tmp_path: Path) -> None:
    sim = Simulator(image(tmp_path, 4 * GIB))
    sim.scheduler.pause()
    run = asyncio.ensure_future(sim.run("init"))
    shown = []
    for _ in range(4):
        horizon = await sim.scheduler.step(StepUnit.COMMAND)
        shown.append([t.index for t in sim.trace
                      if isinstance(t, CommandToken) and t.end <= horizon])
    assert shown == [[0], [0, 8], [0, 8, 55], [0, 8, 55, 41]]
    # the driver's register writes for the next command precede the gate
    assert any(isinstance(t, RegisterEvent) and t.reg == "COMMAND" for t in sim.trace)
    sim.scheduler.run()
    await run
    await sim.aclose()


async def test_breakpoint_on_a_card_state_through_the_full_stack(tmp_path: Path) -> None:
    sim = Simulator(image(tmp_path, 4 * GIB), SimOptions(breakpoints=("state=rcv",)))
    run = asyncio.ensure_future(sim.run("init; write 3 2"))
    await sim.scheduler.wait_parked()
    assert sim.scheduler.mode is RunMode.PAUSED
    assert isinstance(sim.scheduler.hit[1], StateEvent)  # type: ignore[index]
    sim.scheduler.run()
    assert (await run).ok
    await sim.aclose()


async def test_the_same_workload_and_seed_give_the_same_trace(tmp_path: Path) -> None:
    traces = []
    for n in range(2):
        sim = await simulate(image(tmp_path, 64 * MIB, f"card{n}.img"),
                             "init; write 5 3 pattern=random; read 0 8", seed=7)
        traces.append([json.dumps(t.to_json()) for t in sim.trace])
    assert traces[0] == traces[1]


async def test_legacy_sync_storage_is_selectable(tmp_path: Path) -> None:
    sim = Simulator(image(tmp_path, 64 * MIB), SimOptions(legacy_sync=True))
    assert "legacy" in repr(sim.storage)
    assert (await sim.run("init; write 1 1; read 1 1")).ok
    await sim.aclose()


async def test_spi_mode_reports_the_card_and_its_data(tmp_path: Path) -> None:
    sim = await simulate(image(tmp_path, 4 * GIB), "init; write 9 1 pattern=0x5A; read 9 1",
                         mode="spi")
    assert sim.result is not None and sim.result.ok
    assert sim.result.card is not None and sim.result.card.card_type.value == "SDHC"
    blocks = [t for t in sim.trace if isinstance(t, SpiToken) and t.what == "data"]
    assert any(b"\x5a" * 16 in t.mosi for t in blocks)
    assert any(b"\x5a" * 16 in t.miso for t in blocks)


@pytest.mark.parametrize("options, message", [
    ({"bus_width": 8}, "--bus-width must be 1 or 4"),
    ({"clock_hz": 100_000_000}, "--clock must be 400000 to 50000000 Hz in sd mode"),
    ({"mode": "spi", "clock_hz": 50_000_000}, "in spi mode"),
    ({"latency": "fast"}, "bad latency"),
    ({"faults": ("explode",)}, "fault"),
    ({"time_scale": 0.0}, "--time-scale must be positive"),
])
def test_bad_options_are_one_line_errors(tmp_path: Path, options: dict[str, object],
                                         message: str) -> None:
    with pytest.raises(SimOptionError, match=message):
        Simulator(image(tmp_path, 64 * MIB), SimOptions(**options))  # type: ignore[arg-type]


def test_a_bad_breakpoint_is_refused_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(BreakpointError):
        Simulator(image(tmp_path, 64 * MIB), SimOptions(breakpoints=("cmd=99",)))
    assert parse_breakpoint("irq=DATA_TIMEOUT").value == "DATA_TIMEOUT"


async def test_a_bad_workload_is_refused_before_the_bus_moves(tmp_path: Path) -> None:
    sim = Simulator(image(tmp_path, 64 * MIB))
    with pytest.raises(WorkloadError, match='unknown action "reed"'):
        await sim.run("init; reed 0 8")
    assert not any(isinstance(t, CommandToken) for t in sim.trace)
    await sim.aclose()


async def test_a_read_only_image_makes_a_write_protected_card(tmp_path: Path) -> None:
    path = image(tmp_path, 64 * MIB)
    before = path.read_bytes()[:4096]
    sim = Simulator(path, SimOptions(read_only=True))
    result = await sim.run("init; write 0 1; read 0 1")
    await sim.aclose()
    assert not result.ok and "WP_VIOLATION" in " ".join(result.errors)
    assert path.read_bytes()[:4096] == before
    assert StorageOptions(read_only=True).read_only


@pytest.mark.parametrize("mode", ["sd", "spi"])
async def test_a_tiny_time_scale_does_not_stall_host_waits(tmp_path: Path, mode: str) -> None:
    """Simulated time follows wall time only while storage is pending: ACMD41 poll
    intervals, CMD13 busy polls and `wait` cost no wall time at 1e-6 (they took 10^6 s)."""
    sim = await asyncio.wait_for(simulate(image(tmp_path, 64 * MIB), "init; write 0 2; wait 50; "
                                          "read 0 2", mode=mode, time_scale=1e-6), timeout=30)
    assert sim.trace.span()[1] > 50 * 10**9  # the 50 ms wait happened in simulated time
