"""Running workloads on the whole stack: per-step results, verification of what the
workload wrote, range checks, determinism for a seed, and simulated idle time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver import StepResult, parse_workload, run_workload
from sdmodel.driver.patterns import COUNTER
from sdmodel.tokens import IdleToken

if TYPE_CHECKING:
    from conftest import Rig

MakeRig = Callable[..., "Rig"]


async def test_out_of_range_step_is_refused_without_bus_traffic(make_rig: MakeRig) -> None:
    rig = make_rig("SDSC")  # 64 MiB: 131072 blocks
    seen: list[str] = []

    def on_step(result: StepResult) -> None:
        seen.append(f"{result.step.number}:{len(rig.commands())}")

    result = await run_workload(rig.driver, parse_workload("init; read 131070 4; read 0 1"),
                                on_step=on_step)
    assert [r.ok for r in result.steps] == [True, False, True]
    assert result.steps[1].errors == (
        "blocks 131070..131073 are beyond the end of the card (131072 blocks, last LBA 131071)",)
    assert seen[0].split(":")[1] == seen[1].split(":")[1]  # the refused step sent nothing
    assert result.errors == [f"statement 2: {result.steps[1].errors[0]}"]


async def test_steps_before_init_fail_and_the_run_goes_on(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    result = await run_workload(rig.driver, parse_workload("read 0 1; init; read 0 1"))
    assert result.steps[0].errors == ("read: no card initialised; run init first",)
    assert [r.ok for r in result.steps[1:]] == [True, True]


@pytest.mark.parametrize("erased_byte", [0x00, 0xFF])
async def test_reads_are_checked_against_writes_and_erases(erased_byte: int,
                                                          make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", erased_byte=erased_byte)
    text = "init; write 300 4; erase 301 2; read 299 6"
    result = await run_workload(rig.driver, parse_workload(text))
    assert result.ok, result.errors
    assert result.card is not None and result.card.erased_byte == erased_byte
    assert rig.h.file_blocks(300) == COUNTER.block(300)
    assert rig.h.file_blocks(301, 2) == bytes([erased_byte]) * 2 * BLOCK_SIZE
    assert rig.h.file_blocks(303) == COUNTER.block(303)


async def test_a_block_changed_behind_the_workload_is_a_mismatch(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")

    def corrupt_after_write(result: StepResult) -> None:
        if result.step.action == "write":  # someone else changes block 101 in the file
            rig.fill_block(101, 0x00)

    result = await run_workload(
        rig.driver, parse_workload("init; write 100 3 pattern=0xA5; read 100 3"),
        on_step=corrupt_after_write)
    read = result.steps[2]
    assert read.mismatches == (101,)
    assert read.errors == ("1 of 3 blocks differ from what this workload wrote (LBA 101)",)


async def test_the_same_seed_writes_the_same_bytes(make_rig: MakeRig) -> None:
    text = "init; write 10 3 pattern=random; write 11 1 pattern=random"
    images = []
    for seed in (7, 7, 8):
        rig = make_rig("SDSC")
        result = await run_workload(rig.driver, parse_workload(text), seed=seed)
        assert result.ok
        images.append(rig.h.file_blocks(10, 3))
    assert images[0] == images[1] != images[2]
    assert images[0][:BLOCK_SIZE] != images[0][BLOCK_SIZE:2 * BLOCK_SIZE]


async def test_wait_idles_the_bus_for_that_much_simulated_time(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    result = await run_workload(rig.driver, parse_workload("init; wait 25; read 0 1"))
    wait = result.steps[1]
    assert wait.ok and wait.end_ps - wait.start_ps == pytest.approx(25e9, abs=1e6)
    idles = [t for t in rig.trace.tokens if isinstance(t, IdleToken) and t.reason == "host wait"]
    assert len(idles) == 1 and idles[0].start == wait.start_ps


async def test_results_count_blocks_and_bytes(make_rig: MakeRig) -> None:
    rig = make_rig("SDXC")
    result = await run_workload(rig.driver, parse_workload("init; write 5 3; erase 5 9; read 5 2"))
    assert [(r.step.action, r.blocks, r.bytes) for r in result.steps] == [
        ("init", 0, 0), ("write", 3, 1536), ("erase", 9, 4608), ("read", 2, 1024)]
    assert all(r.end_ps > r.start_ps for r in result.steps)
