"""The asynchronous SPI host against the real card on real image files (reference A.5,
A.6): identification, block reads and writes (single and multiple), erase, and slow
storage showing up as long 0xFF / 0x00 runs on MISO."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.clock import SimClock
from sdmodel.driver.errors import DriverError
from sdmodel.spi import SpiCard
from sdmodel.spihost import READ_TIMEOUT_S, SpiHost
from sdmodel.tokens import SpiToken
from sdmodel.trace import Trace

if TYPE_CHECKING:
    from conftest import CardHarness

BLOCK = 512


def make_host(h: CardHarness) -> tuple[SpiHost, Trace]:
    trace = Trace()
    return SpiHost(SpiCard(h.card, trace, SimClock())), trace


def pattern(lba: int, count: int) -> bytes:
    return b"".join(bytes([(lba + i) & 0xFF]) * BLOCK for i in range(count))


def commands(trace: Trace) -> list[int]:
    return [t.info["index"] for t in trace if isinstance(t, SpiToken) and t.what == "cmd"]


@pytest.fixture(params=["SDSC", "SDHC", "SDXC"])
def card_kind(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_init_follows_the_elm_chan_sequence(
        make_card: Callable[..., CardHarness], card_kind: str) -> None:
    h = make_card(card_kind)
    host, trace = make_host(h)
    info = await host.init()
    assert info.card_type.value == card_kind
    assert info.blocks == h.storage.block_count
    assert info.high_capacity == (card_kind != "SDSC")
    sequence = commands(trace)
    cmd16 = [16] if card_kind == "SDSC" else []
    assert sequence == [0, 8, 55, 41, 55, 41, 58, 9, 10, 55, 51, 55, 13, *cmd16]


@pytest.mark.parametrize("count", [1, 5])
async def test_written_blocks_reach_the_file_and_read_back(
        make_card: Callable[..., CardHarness], card_kind: str, count: int) -> None:
    h = make_card(card_kind)
    host, trace = make_host(h)
    await host.init()
    data = pattern(70, count)
    await host.write(70, data)
    assert h.file_blocks(70, count) == data
    assert await host.read(70, count) == data
    expected = [24, 13, 17] if count == 1 else [25, 13, 18, 12]
    assert commands(trace)[-len(expected):] == expected


async def test_erase_clears_the_range_and_nothing_else(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    host, _ = make_host(h)
    await host.init()
    await host.write(10, pattern(10, 4))
    await host.erase(11, 2)
    assert h.file_blocks(11, 2) == bytes(2 * BLOCK)
    assert h.file_blocks(10) == pattern(10, 1) and h.file_blocks(13) == pattern(13, 1)


async def test_slow_write_shows_as_a_long_busy_run_on_miso(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    host, trace = make_host(h)
    await host.init()
    h.storage.faults.latency = 0.1  # 100 ms per storage operation
    await host.write(3, pattern(3, 1))
    busy = [t for t in trace if isinstance(t, SpiToken) and t.what == "busy"]
    longest = max(busy, key=lambda t: t.end - t.start)
    assert longest.end - longest.start >= 90e9  # >= 90 ms of simulated time
    assert set(longest.miso) == {0x00}
    assert h.file_blocks(3) == pattern(3, 1)


async def test_storage_slower_than_the_read_timeout_fails_the_read(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    host, trace = make_host(h)
    await host.init()
    h.storage.faults.latency = READ_TIMEOUT_S * 2
    with pytest.raises(DriverError, match="no data token within 100 ms"):
        await host.read(0, 1)
    fill = [t for t in trace if isinstance(t, SpiToken) and t.what == "fill"]
    assert max(t.end - t.start for t in fill) >= 0.99 * READ_TIMEOUT_S * 1e12


async def test_requests_before_init_are_refused(make_card: Callable[..., CardHarness]) -> None:
    host, _ = make_host(make_card("SDSC"))
    with pytest.raises(DriverError, match="not initialised"):
        await host.read(0, 1)



async def test_a_refused_multi_block_write_still_ends_with_stop_tran(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    host, trace = make_host(h)
    await host.init()
    h.storage.faults.eio(41, 41, ops=("write",))  # the second block fails to program
    with pytest.raises(DriverError):
        await host.write(40, pattern(40, 4))
    stops = [t for t in trace if isinstance(t, SpiToken) and t.what == "stop_tran"]
    assert stops, "the host must end CMD25 with 0xFD"
    assert h.card.state.label == "tran"
    h.storage.faults.clear()
    await host.write(50, pattern(50, 2))  # the card accepts commands again
    assert h.file_blocks(50, 2) == pattern(50, 2)
