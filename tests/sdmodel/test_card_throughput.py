"""How the card moves long transfers through storage (design.md "Asynchronous storage: the
contract"; reference Part C; issue 10).

A multi-block read is served by read-ahead batches, not one storage job per block, and a
block the read-ahead holds goes out without a turn of the event loop. A written block
costs one storage job and no task; its busy ends only once that job has finished, and a
failed job is reported at its own block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.clock import SimClock
from sdmodel.registers import CardStatus
from sdmodel.sdbus import SdBus
from sdmodel.states import CardState
from sdmodel.storage import FaultHit, FaultKind, StorageError
from sdmodel.tokens import CrcStatus
from sdmodel.trace import Trace

if TYPE_CHECKING:
    from conftest import CardHarness

S = CardState
BLOCK = 512
CLOCK_HZ = 50_000_000


def storage_jobs(h: CardHarness) -> list[tuple[str, int | None]]:
    """(operation, first LBA) of every storage job from now on: a tiny injected latency
    makes each job report itself (``Storage.on_fault``) without slowing it down."""
    jobs: list[tuple[str, int | None]] = []

    def seen(hit: FaultHit) -> None:
        if hit.kind is FaultKind.LATENCY:
            jobs.append((hit.op, hit.lba))

    h.storage.on_fault = seen
    h.storage.faults.latency = 1e-6
    return jobs


async def until_storage_idle(h: CardHarness) -> None:
    while h.storage.pending:
        await asyncio.sleep(0.001)
    # the worker's result reaches the loop through a chain of callbacks (thread-safe
    # call, future state copy, the read phase's own callback): let the loop run them all
    await asyncio.sleep(0.02)


async def test_cmd18_of_300_blocks_takes_9_storage_jobs(
        make_card: Callable[..., CardHarness]) -> None:
    """Read-ahead batches double from 1 block to 128 and stop at the CMD23 count."""
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    with open(h.path, "r+b") as image:  # 300 distinct blocks
        image.write(bytes(range(256)) * 600)
    jobs = storage_jobs(h)
    h.cmd(23, 300)
    h.cmd(18, 0)
    data = b"".join([(await h.read()).data or b"" for _ in range(300)])
    await until_storage_idle(h)
    assert data == h.file_blocks(0, 300)
    assert h.card.state is S.TRAN  # CMD23: the read ended by itself
    assert jobs == [("read", lba) for lba in (0, 1, 3, 7, 15, 31, 63, 127, 255)]


@pytest.mark.parametrize("block_len", [200, 512])
async def test_blocks_across_sector_boundaries_come_whole_from_the_read_ahead(
        block_len: int, make_card: Callable[..., CardHarness]) -> None:
    """SDSC with CMD16: a 200-byte block may start in one 512-byte sector and end in the
    next (§4.3.3 partial blocks); each block is the file's bytes at its address."""
    h = make_card("SDSC")
    await h.to_state(S.TRAN)
    h.cmd(16, block_len)
    h.cmd(18, 0)
    blocks = [(await h.read()).data for _ in range(40)]
    h.cmd(12)
    assert b"".join(block or b"" for block in blocks) == h.file_blocks(0, 40)[:40 * block_len]


async def test_a_block_the_read_ahead_holds_goes_out_without_a_loop_turn(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    bus = SdBus(h.card, SimClock(CLOCK_HZ), Trace())
    await bus.command(18, 0)
    assert await bus.read_block() == h.file_blocks(0)  # waits for the first job
    await until_storage_idle(h)  # the next batch (block 1, then 2..3) is in
    other_work_ran = False

    def other_work() -> None:
        nonlocal other_work_ran
        other_work_ran = True

    asyncio.get_running_loop().call_soon(other_work)
    assert await bus.read_block() == h.file_blocks(1)
    assert not other_work_ran
    await bus.command(12, 0)


async def test_a_written_block_costs_one_storage_job_and_no_task(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    jobs = storage_jobs(h)
    h.cmd(25, 40)
    tasks = len(asyncio.all_tasks())
    assert h.card.accept_block(b"\x11" * BLOCK) is CrcStatus.ACCEPTED
    assert h.card.busy and len(asyncio.all_tasks()) == tasks
    await h.card.wait_ready()
    assert h.file_blocks(40) == b"\x11" * BLOCK
    h.cmd(12)
    assert jobs == [("write", 40)]


async def test_dat0_is_released_after_the_card_left_prg(
        make_card: Callable[..., CardHarness]) -> None:
    """§4.8: busy ends with "operation complete"; a command that sees DAT0 released
    finds the card in tran already."""
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    h.cmd(24, 3)
    assert h.card.accept_block(b"\x22" * BLOCK) is CrcStatus.ACCEPTED
    assert h.card.state is S.PRG
    busy = h.card.busy_future
    assert busy is not None
    seen_at_release: list[CardState] = []
    busy.add_done_callback(lambda _: seen_at_release.append(h.card.state))
    await asyncio.wait({busy})
    assert seen_at_release == [S.TRAN] and not h.card.busy and h.card.busy_future is None


async def test_a_write_error_mid_run_is_reported_at_its_block(
        make_card: Callable[..., CardHarness]) -> None:
    """Blocks 20..22 are programmed; the job of block 23 fails: its busy ends with ERROR
    (§4.10.1), later blocks get no CRC status (§4.3.4), ACMD22 counts 3 blocks and the
    failure names LBA 23. The file keeps its old bytes from block 23 on."""
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    before = h.file_blocks(23, 3)
    h.storage.faults.eio(23, 23, ops=["write"])
    failures: list[StorageError] = []
    h.card.events.storage_error.connect(failures.append)
    h.cmd(25, 20)
    statuses = [await h.write(bytes([n]) * BLOCK) for n in range(6)]
    assert statuses == [CrcStatus.ACCEPTED] * 4 + [None, None]
    assert [error.lba for error in failures] == [23]
    assert h.status() & CardStatus.ERROR
    h.cmd(12)
    await h.card.wait_ready()
    assert h.card.state is S.TRAN
    h.acmd(22)
    assert (await h.read()).data == (3).to_bytes(4, "big")
    assert h.file_blocks(20, 6) == b"".join(bytes([n]) * BLOCK for n in range(3)) + before
