"""LoopHeartbeat sees how long the asyncio loop thread was blocked."""

from __future__ import annotations

import asyncio
import time

import pytest

from sdmodel.heartbeat import LoopHeartbeat, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 99, 0.0),
        ([3.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 99, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_blocking_the_loop_shows_as_a_gap() -> None:
    async def scenario() -> LoopHeartbeat:
        async with LoopHeartbeat() as hb:
            await asyncio.sleep(0.03)
            time.sleep(0.12)  # the stall a synchronous file read would cause
            await asyncio.sleep(0.03)
        return hb

    hb = asyncio.run(scenario())
    assert hb.max_gap_ms >= 115
    assert hb.samples >= 3
    assert hb.p99_ms <= hb.max_gap_ms


def test_a_stall_right_before_stop_is_counted() -> None:
    async def scenario() -> LoopHeartbeat:
        hb = LoopHeartbeat()
        await hb.start()
        await asyncio.sleep(0.02)
        time.sleep(0.08)
        await hb.stop()
        return hb

    assert asyncio.run(scenario()).max_gap_ms >= 75


def test_idle_loop_beats_at_its_interval() -> None:
    async def scenario() -> LoopHeartbeat:
        async with LoopHeartbeat(interval=0.005) as hb:
            await asyncio.sleep(0.2)
        return hb

    hb = asyncio.run(scenario())
    assert hb.samples >= 10
    assert 4.5 <= hb.p99_ms <= hb.max_gap_ms  # a beat never comes before its interval


def test_restart_clears_the_measurements() -> None:
    async def scenario() -> tuple[float, float]:
        hb = LoopHeartbeat()
        await hb.start()
        time.sleep(0.06)
        await hb.stop()
        first = hb.max_gap_ms
        await hb.start()
        await asyncio.sleep(0.02)
        await hb.stop()
        return first, hb.max_gap_ms

    first, second = asyncio.run(scenario())
    assert first >= 55
    assert second < first
