"""Simulated time while the card waits for storage (design.md "Time and events",
"Asynchronous storage"; reference Part C): ``SimClock.wait``."""

from __future__ import annotations

import asyncio
import time

import pytest

from sdmodel.clock import PS_PER_S, SimClock

PERIOD_PS = 20_000  # 50 MHz


async def test_a_done_future_costs_no_time_and_no_loop_turn() -> None:
    clock = SimClock(50e6)
    clock.now = 7 * PERIOD_PS
    ready = asyncio.get_running_loop().create_future()
    ready.set_result("block")
    other_work_ran = False

    def other_work() -> None:
        nonlocal other_work_ran
        other_work_ran = True

    asyncio.get_running_loop().call_soon(other_work)
    waited = await clock.wait(ready, deadline=clock.now + PERIOD_PS)
    assert (waited.done, waited.value, waited.waited_ps) == (True, "block", 0)
    assert clock.now == 7 * PERIOD_PS and not other_work_ran


async def test_a_done_future_with_an_error_raises_it() -> None:
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(OSError("EIO"))
    with pytest.raises(OSError, match="EIO"):
        await SimClock(50e6).wait(failed)


async def test_storage_faster_than_the_free_wall_time_costs_no_simulated_time() -> None:
    clock = SimClock(50e6, free_wall_s=1.0)
    waited = await clock.wait(asyncio.sleep(0.01, "late block"))
    assert (waited.done, waited.value, clock.now) == (True, "late block", 0)


async def test_slow_storage_advances_simulated_time_by_whole_periods() -> None:
    clock = SimClock(50e6, time_scale=1.0, free_wall_s=0.0)
    waited = await clock.wait(asyncio.sleep(0.02))
    assert waited.done and clock.now >= 0.02 * PS_PER_S and clock.now % PERIOD_PS == 0


async def test_a_deadline_before_the_storage_answers_leaves_it_running() -> None:
    clock = SimClock(50e6, time_scale=1.0)
    hung = asyncio.get_running_loop().create_future()
    waited = await clock.wait(hung, deadline=round(0.01 * PS_PER_S))
    assert not waited.done and clock.now == round(0.01 * PS_PER_S)
    assert not hung.cancelled()  # a card keeps programming after the host gave up
    hung.set_result("block")
    assert await hung == "block"


async def test_a_loop_that_notices_late_adds_no_simulated_time() -> None:
    """The work ended 30 ms in, but the loop (busy with a GUI frame) resolves the future
    only at 150 ms: simulated time follows the work, not the loop's lateness."""
    clock = SimClock(50e6, free_wall_s=0.0)
    start = time.perf_counter()
    late = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.15, late.set_result, "block")
    waited = await clock.wait(late, finished_at=lambda: start + 0.03)
    assert waited.done and waited.value == "block"
    assert 0.025 * PS_PER_S <= waited.waited_ps <= 0.06 * PS_PER_S
