"""Error handling as a real driver does it (reference B.4 "Error Interrupt Recovery",
Part C): slow storage past the data timeout, a card pulled out mid-request.

The data timeout the driver programs for reads is 100 ms, which the controller's 1 MHz
timeout clock turns into TMCLK x 2^17 = 131 ms; writes get 3 s -> 2^22 us = 4.2 s.
Simulated time follows wall time while the card waits for storage (time_scale x).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver import CardRemovedError, CardStatusError, DriverError
from sdmodel.sdhci.registers import ErrorInt
from sdmodel.states import CardState

if TYPE_CHECKING:
    from conftest import Rig

MakeRig = Callable[..., "Rig"]
DATA_TIMEOUT = int(ErrorInt.DATA_TIMEOUT) << 16  # in the 32-bit status at 0x30


def clear_latency_on_data_timeout(rig: Rig) -> list[int]:
    """Remove the storage latency when the first Data Timeout interrupt is raised; the
    statuses that raised the line."""
    seen: list[int] = []

    def on_irq(level: bool, status: int) -> None:
        if level:
            seen.append(status)
        if status & DATA_TIMEOUT:
            rig.h.storage.faults.latency = 0

    rig.controller.events.irq.connect(on_irq)
    return seen


@pytest.mark.parametrize("use_dma", [True, False], ids=["sdma", "pio"])
async def test_slow_read_times_out_then_stop_reset_and_retry_succeed(use_dma: bool,
                                                                    make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", use_dma=use_dma)
    await rig.driver.init()
    # Longer than the 131 ms data timeout; the retry's storage read waits behind the
    # first one (one worker), so it gets its block 160 - 131 ms into its own timeout.
    rig.h.storage.faults.latency = 0.16
    statuses = clear_latency_on_data_timeout(rig)
    mark = len(rig.trace)
    assert await rig.driver.read(40, 1) == rig.h.file_blocks(40)
    assert DATA_TIMEOUT | 0x8000 in statuses  # ERROR summary + DATA_TIMEOUT (B.5)
    # CMD17 timed out with the card in data: reset, CMD13 shows data, CMD12 stops it,
    # CMD13 sees tran, CMD17 again.
    assert rig.commands(mark) == ["CMD17", "CMD13", "CMD12", "CMD13", "CMD17"]
    resets = [reg for reg, _ in rig.register_writes(mark) if reg == "SOFTWARE_RESET"]
    assert len(resets) == 2  # CMD, then DAT (Linux sdhci_reset_for REQUEST_ERROR)
    assert rig.requests[-1].ok and rig.requests[-1].retries == 1
    assert any("DATA_TIMEOUT" in line and "CMD17" in line for line in rig.log)
    assert rig.h.card.state is CardState.TRAN


async def test_read_that_stays_slow_fails_after_the_retries(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", retries=1)
    await rig.driver.init()
    rig.h.storage.faults.latency = 0.3
    with pytest.raises(DriverError) as caught:
        await rig.driver.read(40, 2)
    assert str(caught.value) == ("read of blocks 40..41: CMD18 READ_MULTIPLE_BLOCK: "
                                 "DATA_TIMEOUT (ERR_INT_STATUS 0x0010) after 1 retries")
    assert rig.requests[-1].error == str(caught.value)
    assert rig.h.card.state is CardState.TRAN  # stopped with CMD12 each time
    assert rig.commands().count("CMD12") == 2


async def test_write_busy_past_the_timeout_waits_out_prg_and_retries(make_rig: MakeRig) -> None:
    """The card accepted the block but programs longer than the 4.2 s write timeout: Data
    Timeout during busy. The card is in prg, where CMD12 is illegal, so the driver polls
    CMD13 (growing pauses, as Linux) until tran, then writes again."""
    rig = make_rig("SDHC")
    await rig.driver.init()
    rig.bus.clock.time_scale = 100.0  # from now on 1 ms of wall time = 100 ms simulated
    rig.h.storage.faults.latency = 0.05  # 5 s simulated: past 4.2 s, within 4.2 + 3 s
    statuses = clear_latency_on_data_timeout(rig)
    mark = len(rig.trace)
    await rig.driver.write(7, b"\x3c" * BLOCK_SIZE)
    assert any(status & DATA_TIMEOUT for status in statuses)
    commands = rig.commands(mark)
    assert commands[0] == "CMD24" and commands[-2:] == ["CMD24", "CMD13"]
    assert "CMD12" not in commands and commands.count("CMD13") >= 2
    assert rig.h.file_blocks(7) == b"\x3c" * BLOCK_SIZE


@pytest.mark.parametrize(("cmd23", "reported_by"), [
    (True, "CMD13 SEND_STATUS"), (False, "CMD12 STOP_TRANSMISSION (auto)")])
async def test_a_block_that_fails_to_program_is_reported_from_the_card_status(
        cmd23: bool, reported_by: str, make_rig: MakeRig) -> None:
    """The backing write of the last block fails (EIO): the card sets ERROR (type X,
    §4.10.1), seen in the next R1 -- the Auto CMD12 response, or the CMD13 after it."""
    rig = make_rig("SDHC", cmd23=cmd23)
    await rig.driver.init()
    rig.h.storage.faults.eio(62, 62, ["write"])
    with pytest.raises(CardStatusError) as caught:
        await rig.driver.write(60, bytes(3 * BLOCK_SIZE))
    message = str(caught.value)
    assert message.startswith(f"write of blocks 60..62: {reported_by}: card status 0x")
    assert message.endswith("(ERROR)")
    assert rig.h.card.state is CardState.TRAN
    await rig.driver.write(60, bytes(2 * BLOCK_SIZE))  # blocks that still work


@pytest.mark.timeout(20)
async def test_card_removal_fails_pending_and_later_requests(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    await rig.driver.init()
    rig.h.storage.faults.hang()  # the read never gets its data
    mark = len(rig.trace)
    running = asyncio.ensure_future(rig.driver.read(0, 8))
    waiting = asyncio.ensure_future(rig.driver.read(8, 1))  # queued behind the first
    while "CMD18" not in rig.commands(mark):
        await asyncio.sleep(0.001)
    rig.controller.remove_card()
    for request in (running, waiting):
        with pytest.raises(CardRemovedError, match="^card removed$"):
            await request
    with pytest.raises(CardRemovedError, match="^card removed$"):
        await rig.driver.write(0, bytes(BLOCK_SIZE))
    assert [r.error for r in rig.requests if r.done][-3:] == ["card removed"] * 3
    assert "CARD_REMOVE" in {bit for bits in rig.irq_bits(mark) for bit in bits}


@pytest.mark.timeout(20)
async def test_a_card_pulled_while_idle_needs_init_after_reinsertion(make_rig: MakeRig) -> None:
    rig = make_rig("SDSC")
    await rig.driver.init()
    rig.controller.remove_card()
    mark = len(rig.trace)
    with pytest.raises(CardRemovedError):
        await rig.driver.read(0, 1)
    assert rig.commands(mark) == []  # Present State said so before anything was sent
    with pytest.raises(DriverError, match="^init: no card in the slot$"):
        await rig.driver.init()
    rig.controller.insert_card()
    with pytest.raises(CardRemovedError):
        await rig.driver.read(0, 1)
    await rig.driver.init()
    assert await rig.driver.read(0, 1) == rig.h.file_blocks(0)


@pytest.mark.timeout(20)
async def test_a_cancelled_request_leaves_the_driver_usable(make_rig: MakeRig) -> None:
    """Cancelling a request whose data never comes resets the controller; the next request
    finds the card still in data, stops it (CMD12) and goes on."""
    rig = make_rig("SDHC", cmd23=False)
    await rig.driver.init()
    rig.h.storage.faults.hang()
    mark = len(rig.trace)
    stuck = asyncio.ensure_future(rig.driver.read(0, 4))
    while "CMD18" not in rig.commands(mark):
        await asyncio.sleep(0.001)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert rig.requests[-1].error == "read: cancelled"
    rig.h.storage.faults.release()
    assert await rig.driver.read(8, 1) == rig.h.file_blocks(8)
    # CMD17 is illegal in data (no response); recovery finds data, stops it, reads again.
    assert rig.commands(mark) == ["CMD18", "CMD17", "CMD13", "CMD12", "CMD13", "CMD17"]
