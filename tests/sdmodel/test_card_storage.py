"""The card on slow, hung and failing real storage (design.md "Asynchronous storage: the
contract"; reference Part C).

A write is acknowledged (busy released) only once its bytes are in the file, storage
latency shows up as a long N_AC or busy in simulated time, the event loop never stalls,
and a block the host saw acknowledged is never lost, whatever the host does next.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from sdmodel.clock import PS_PER_S, SimClock
from sdmodel.heartbeat import LoopHeartbeat
from sdmodel.registers import CardStatus
from sdmodel.sdbus import SdBus
from sdmodel.states import CardState
from sdmodel.storage import FaultInjector
from sdmodel.tokens import BusyToken, CrcStatus, DataToken
from sdmodel.trace import Trace

if TYPE_CHECKING:
    from conftest import CardHarness

S = CardState
BLOCK = 512
MAX_GAP_MS = 20.0  # design.md: the loop never stalls
CLOCK_HZ = 25_000_000


async def bus_in_tran(h: CardHarness, *, time_scale: float = 1.0) -> SdBus:
    await h.to_state(S.TRAN)
    return SdBus(h.card, SimClock(CLOCK_HZ, time_scale=time_scale), Trace())


def ms_to_ps(ms: float) -> int:
    return int(ms * PS_PER_S / 1000)


async def status(bus: SdBus) -> int:
    response = await bus.command(13, bus.card.rca << 16)
    assert response.response is not None
    return response.reply.value


# --- acknowledged means on disk --------------------------------------------------------


@pytest.mark.parametrize("latency", [0.0, 0.15])
async def test_busy_is_released_only_once_the_block_is_in_the_file(
        latency: float, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    h.storage.faults.latency = latency
    data = b"\xC3" * BLOCK
    on_disk_at_release: list[bool] = []

    def busy_changed(busy: bool, reason: str) -> None:
        if not busy:  # the very moment DAT0 is released
            on_disk_at_release.append(h.file_blocks(0) == data)

    h.card.events.busy.connect(busy_changed)
    await bus.command(24, 0)
    assert await bus.write_block(data) is CrcStatus.ACCEPTED
    assert h.card.busy and bus.dat0_busy
    if latency:
        assert h.file_blocks(0) != data  # still in the storage job
        assert await status(bus) == 0xE00  # prg, READY_FOR_DATA = 0
    assert await bus.wait_busy()
    assert h.file_blocks(0) == data  # checked with plain open() when wait_busy returns
    assert on_disk_at_release == [True]
    assert await status(bus) == 0x900  # tran, READY_FOR_DATA


# --- the event loop never stalls --------------------------------------------------------


@pytest.fixture
def frozen_gc() -> Iterator[None]:
    """Keep the test runner's heap out of the collector while the loop is measured: a full
    collection of pytest's objects takes tens of ms and is not the card's doing."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


async def write_and_read(bus: SdBus, blocks: int) -> list[bytes | None]:
    await bus.command(25, 0)
    for n in range(blocks):
        assert await bus.write_block(bytes([n]) * BLOCK) is CrcStatus.ACCEPTED
        assert await bus.wait_busy()
    await bus.command(12, 0)
    assert await bus.wait_busy()
    await bus.command(18, 0)
    read = [await bus.read_block() for _ in range(blocks)]
    await bus.command(12, 0)
    return read


async def test_random_latency_never_stalls_the_loop(
        make_card: Callable[..., CardHarness], frozen_gc: None) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    h.storage.faults.latency = (0.0, 0.5)
    h.storage.faults.reseed(7)
    async with LoopHeartbeat() as heartbeat:
        read = await write_and_read(bus, 3)
    assert read == [bytes([n]) * BLOCK for n in range(3)]
    assert heartbeat.max_gap_ms < MAX_GAP_MS


async def test_hung_storage_never_stalls_the_loop(
        make_card: Callable[..., CardHarness], frozen_gc: None) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    h.storage.faults.hang()
    async with LoopHeartbeat() as heartbeat:
        asyncio.get_running_loop().call_later(0.3, h.storage.faults.release)
        await bus.command(24, 0)
        assert await bus.write_block(b"\x5A" * BLOCK) is CrcStatus.ACCEPTED
        await asyncio.sleep(0.1)
        assert h.card.busy and h.card.state is S.PRG
        assert await bus.wait_busy()
    assert heartbeat.max_gap_ms < MAX_GAP_MS
    assert h.file_blocks(0) == b"\x5A" * BLOCK


# --- latency becomes N_AC and busy, in simulated time -------------------------------------

LATENCY_S = 0.2


def assert_simulated(span_s: float, wall_s: float, time_scale: float) -> None:
    """Simulated time is the wall time the card waited, times the time scale (rounded up
    to whole clocks), and the wall time covers the injected latency."""
    assert wall_s >= 0.95 * LATENCY_S
    assert 0.95 * LATENCY_S * time_scale <= span_s <= wall_s * time_scale + 4 / CLOCK_HZ


@pytest.mark.parametrize("time_scale", [1.0, 0.25])
async def test_read_latency_lengthens_n_ac(time_scale: float,
                                           make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h, time_scale=time_scale)
    n_ac_s: dict[float, float] = {}
    for latency in (0.0, LATENCY_S):
        h.storage.faults.latency = latency
        command = (await bus.command(17, 0)).command
        wall0 = time.perf_counter()
        assert await bus.read_block() == h.file_blocks(0)
        wall_s = time.perf_counter() - wall0
        block = [t for t in bus.trace.tokens if isinstance(t, DataToken)][-1]
        n_ac_s[latency] = (block.start - command.end) / PS_PER_S
    assert 2 / CLOCK_HZ <= n_ac_s[0.0] < 0.02 * time_scale  # N_AC min 2 clocks
    assert_simulated(n_ac_s[LATENCY_S], wall_s, time_scale)


@pytest.mark.parametrize("time_scale", [1.0, 0.25])
async def test_write_latency_lengthens_busy(time_scale: float,
                                            make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h, time_scale=time_scale)
    h.storage.faults.latency = LATENCY_S
    await bus.command(24, 0)
    wall0 = time.perf_counter()
    await bus.write_block(b"\x01" * BLOCK)
    assert await bus.wait_busy()
    wall_s = time.perf_counter() - wall0
    busy = [t for t in bus.trace.tokens if isinstance(t, BusyToken)][-1]
    assert busy.reason == "program"
    assert_simulated((busy.end - busy.start) / PS_PER_S, wall_s, time_scale)


# --- the host gives up: acknowledged blocks still land ---------------------------------------


async def test_hung_read_past_the_host_deadline_gives_no_block(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    h.storage.faults.hang()
    await bus.command(17, 0)
    deadline = bus.clock.now + ms_to_ps(50)
    assert await bus.read_block(deadline=deadline) is None
    assert bus.clock.now >= deadline
    assert not [t for t in bus.trace.tokens if isinstance(t, DataToken)]
    await bus.command(12, 0)  # the host aborts the read
    assert h.card.state is S.TRAN
    h.storage.faults.release()
    await bus.command(17, 0)  # the card works on
    assert await bus.read_block() == h.file_blocks(0)


async def test_hung_write_past_the_host_deadline_still_lands(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    first, second = b"\x11" * BLOCK, b"\x22" * BLOCK
    await bus.command(25, 0)
    assert await bus.write_block(first) is CrcStatus.ACCEPTED
    assert await bus.wait_busy()
    h.storage.faults.hang()
    assert await bus.write_block(second) is CrcStatus.ACCEPTED  # acknowledged on DAT0
    assert not await bus.wait_busy(deadline=bus.clock.now + ms_to_ps(50))  # host gives up
    stop = await bus.command(12, 0)  # answered while DAT0 is still busy
    assert stop.response is not None and h.card.state is S.PRG
    h.storage.faults.release()
    assert await bus.wait_busy()
    assert h.card.state is S.TRAN
    assert h.file_blocks(0, 2) == first + second


# --- storage errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "start"), [(17, 5), (18, 3)], ids=["cmd17", "cmd18"])
async def test_read_error_sends_no_data_and_reports_card_ecc_failed(
        index: int, start: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    h.storage.faults.eio(5, 5, ops=["read"])
    await bus.command(index, start * BLOCK)
    for lba in range(start, 5):  # blocks before the bad one arrive
        assert await bus.read_block() == h.file_blocks(lba)
    assert await bus.read_block(deadline=bus.clock.now + ms_to_ps(10)) is None
    word = await status(bus)
    assert word & CardStatus.CARD_ECC_FAILED and (word >> 9) & 0xF == S.DATA
    await bus.command(12, 0)
    assert not await status(bus) & CardStatus.CARD_ECC_FAILED  # cleared once read


FAILING_WRITES: dict[str, Callable[[FaultInjector], None]] = {
    "eio": lambda faults: faults.eio(0, 0, ops=["write"]),
    "disk_full": lambda faults: faults.disk_full(),
}


@pytest.mark.parametrize("fault", sorted(FAILING_WRITES))
async def test_failed_write_reports_error_and_leaves_the_file(
        fault: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    before = h.file_blocks(0)
    FAILING_WRITES[fault](h.storage.faults)
    await bus.command(24, 0)
    assert await bus.write_block(b"\xEE" * BLOCK) is CrcStatus.ACCEPTED  # CRC was fine
    assert await bus.wait_busy()
    word = await status(bus)
    assert word & CardStatus.ERROR and (word >> 9) & 0xF == S.TRAN
    assert h.file_blocks(0) == before


@pytest.mark.parametrize(("index", "prelude"), [(24, ()), (25, ()), (38, ((32, 0), (33, 0)))],
                         ids=["cmd24", "cmd25", "cmd38"])
async def test_read_only_image_is_a_write_protected_card(
        index: int, prelude: tuple[tuple[int, int], ...],
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(read_only=True)
    assert h.storage.read_only and h.card.write_protected
    await h.to_state(S.TRAN)
    before = h.file_blocks(0, 64)
    for step in prelude:
        h.cmd(*step)
    reply = h.cmd(index, 0)
    assert reply.errors & CardStatus.WP_VIOLATION and h.card.state is S.TRAN
    assert h.card.accept_block(b"\x99" * BLOCK) is None
    await h.card.wait_ready()
    assert h.file_blocks(0, 64) == before


# --- CMD12, CMD0 and power loss while programming --------------------------------------------

INTERRUPTIONS: dict[str, Callable[[CardHarness], None]] = {
    "cmd12": lambda h: h.cmd(12) and None,
    "cmd0": lambda h: h.cmd(0) and None,
    "power_off": lambda h: h.card.power_off(),
}


@pytest.mark.parametrize("interrupt", sorted(INTERRUPTIONS))
async def test_interrupted_programming_loses_no_acknowledged_block(
        interrupt: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = await bus_in_tran(h)
    done, in_flight = b"\x0D" * BLOCK, b"\x0F" * BLOCK
    await bus.command(25, h.addr(7))
    assert await bus.write_block(done) is CrcStatus.ACCEPTED
    assert await bus.wait_busy()
    assert h.file_blocks(7) == done  # acknowledged: on disk
    h.storage.faults.hang()
    assert await bus.write_block(in_flight) is CrcStatus.ACCEPTED
    INTERRUPTIONS[interrupt](h)
    h.storage.faults.release()
    await h.card.wait_ready()
    await h.storage.flush()
    assert h.file_blocks(7, 2) == done + in_flight  # the block in flight finished too
    assert h.card.state is (S.TRAN if interrupt == "cmd12" else S.IDLE)
