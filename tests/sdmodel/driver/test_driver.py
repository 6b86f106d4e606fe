"""The host driver end to end: real image files, the real card, SD bus and SDHCI controller.

Initialisation follows Linux's order (reference §8), requests use the register sequences
and interrupt orders of reference B.4/B.5, and what the driver wrote is checked in the
image file itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.capacity import BLOCK_SIZE, CardType
from sdmodel.driver import CardStatusError, DriverError, parse_workload, run_workload
from sdmodel.driver.slot import divider_for
from sdmodel.registers import SCR
from sdmodel.tokens import CommandToken

if TYPE_CHECKING:
    from conftest import Rig

MakeRig = Callable[..., "Rig"]

ISSUE_WORKLOAD = "init; read 0 8; write 100 4 pattern=0xA5; erase 200 16; read 100 4"

# Linux's init (reference §8 steps 0-16a, no SDIO probe): CMD0 CMD8 ACMD41(inquiry), CMD0
# CMD8 again, ACMD41 with HCS until ready (the model card is busy for one poll), CMD2 CMD3
# CMD9 CMD7, ACMD51 ACMD13, CMD6 query and switch, ACMD6; CMD16 512 on SDSC.
LINUX_INIT = ["CMD0", "CMD8", "CMD55", "ACMD41", "CMD0", "CMD8", "CMD55", "ACMD41", "CMD55",
              "ACMD41", "CMD2", "CMD3", "CMD9", "CMD7", "CMD55", "ACMD51", "CMD55", "ACMD13",
              "CMD6", "CMD6", "CMD55", "ACMD6"]


@pytest.mark.parametrize("use_dma", [True, False], ids=["sdma", "pio"])
@pytest.mark.parametrize("bus_width", [1, 4])
async def test_issue_workload_on_every_card_type(kind: str, bus_width: int, use_dma: bool,
                                                 make_rig: MakeRig) -> None:
    rig = make_rig(kind, bus_width=bus_width, use_dma=use_dma)
    for lba in (99, 104, 199, 216):  # the neighbours of the written and erased ranges
        rig.fill_block(lba, 0x77)
    result = await run_workload(rig.driver, parse_workload(ISSUE_WORKLOAD))
    assert result.errors == []
    assert [r.blocks for r in result.steps] == [0, 8, 4, 16, 4]
    card = result.card
    assert card is not None
    assert card.card_type is CardType(kind)
    assert (card.bus_width, card.high_speed, card.cmd23) == (bus_width, True, True)
    assert card.blocks == rig.h.card.block_count
    assert card.cid == rig.h.card.cid and card.scr == rig.h.card.scr
    assert rig.bus.host_width == rig.h.card.bus_width == bus_width
    assert rig.h.file_blocks(100, 4) == b"\xa5" * 4 * BLOCK_SIZE
    assert rig.h.file_blocks(200, 16) == bytes(16 * BLOCK_SIZE)
    for lba in (99, 104, 199, 216):
        assert rig.h.file_blocks(lba) == b"\x77" * BLOCK_SIZE


async def test_read_returns_the_image_bytes(make_rig: MakeRig) -> None:
    rig = make_rig("SDSC")
    await rig.driver.init()
    assert await rig.driver.read(3, 5) == rig.h.file_blocks(3, 5)


@pytest.mark.parametrize(("kind", "tail"), [("SDSC", ["CMD16"]), ("SDHC", [])])
async def test_init_sends_linux_command_order(kind: str, tail: list[str],
                                              make_rig: MakeRig) -> None:
    rig = make_rig(kind)
    await rig.driver.init()
    assert rig.commands() == LINUX_INIT + tail


async def test_init_arguments_follow_the_reference(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    await rig.driver.init()
    args = [(t.index, t.arg) for t in rig.trace.tokens if isinstance(t, CommandToken)]
    rca = rig.h.card.rca << 16
    assert args[:10] == [(0, 0), (8, 0x1AA), (55, 0), (41, 0), (0, 0), (8, 0x1AA), (55, 0),
                         (41, 0x40300000), (55, 0), (41, 0x40300000)]
    assert args[12:14] == [(9, rca), (7, rca)]
    assert args[18:] == [(6, 0x00FFFFF0), (6, 0x80FFFFF1), (55, rca), (6, 2)]


async def test_init_programs_the_clock_like_linux(make_rig: MakeRig) -> None:
    """Base clock 50 MHz: 400 kHz -> 0x3F01 then 0x3F07; High Speed 50 MHz -> 0x0007
    (reference B.2 "Clock Control"). The trace shows the value after each write, with
    Internal Clock Stable (bit 1) already set by the model."""
    rig = make_rig("SDHC")
    await rig.driver.init()
    clock = [value for reg, value in rig.register_writes() if reg == "CLOCK_CONTROL"]
    assert clock == [0, 0x3F03, 0x3F07, 0, 0x0003, 0x0007]
    assert rig.bus.clock.hz == 50e6


@pytest.mark.parametrize(("max_clock_hz", "hz"), [(10e6, 50e6 / 6), (30e6, 25e6), (None, 50e6)])
async def test_max_clock_caps_the_transfer_clock(max_clock_hz: float | None, hz: float,
                                                 make_rig: MakeRig) -> None:
    """The fastest divided clock not above min(mode clock, f_max) (Linux mmc_set_clock)."""
    rig = make_rig("SDHC", max_clock_hz=max_clock_hz)
    card = await rig.driver.init()
    assert card.clock_hz == pytest.approx(hz) == rig.bus.clock.hz
    assert card.high_speed  # the card still switches; only the clock is clamped
    assert await rig.driver.read(0, 2) == rig.h.file_blocks(0, 2)


@pytest.mark.parametrize(("target", "n"), [(400_000, 63), (25_000_000, 1), (50_000_000, 0),
                                           (100_000, 250), (10, 0x3FF)])
def test_divider_is_the_smallest_even_divisor_not_above_the_target(target: int, n: int) -> None:
    assert divider_for(50_000_000, target) == n


@pytest.mark.parametrize(("high_speed", "card_hs", "hz"), [
    (True, True, 50e6), (False, True, 25e6), (True, False, 25e6)])
async def test_high_speed_only_when_both_sides_offer_it(high_speed: bool, card_hs: bool,
                                                        hz: float, make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", host_high_speed=high_speed, high_speed=card_hs)
    card = await rig.driver.init()
    assert card.high_speed is (hz == 50e6)
    assert rig.h.card.high_speed_active is card.high_speed
    assert rig.bus.clock.hz == hz
    assert rig.commands().count("CMD6") == (2 if hz == 50e6 else 1)


async def test_cmd17_pio_register_writes_and_interrupts_follow_b5(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", use_dma=False)
    await rig.driver.init()
    mark = len(rig.trace)
    await rig.driver.read(5, 1)
    writes = [(reg, value) for reg, value in rig.register_writes(mark)
              if reg not in ("INT_STATUS+ERR_INT_STATUS", "BUFFER")]
    assert writes == [("TIMEOUT_CONTROL", 4), ("BLOCK_SIZE", 0x7200), ("BLOCK_COUNT", 1),
                      ("ARGUMENT", 5), ("TRANSFER_MODE", 0x0012), ("COMMAND", 0x113A)]
    assert rig.irq_bits(mark) == [("CMD_COMPLETE",), ("BUF_RD_READY",), ("XFER_COMPLETE",)]


async def test_r1b_cmd7_completes_with_command_then_transfer_complete(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    await rig.driver.init()
    (cmd7,), after = rig.command_positions(7), rig.command_positions(55)
    next_command = min(i for i in after if i > cmd7)
    assert rig.irq_bits(cmd7, next_command) == [("CMD_COMPLETE",), ("XFER_COMPLETE",)]


@pytest.mark.parametrize(("cmd23", "read", "write"), [
    (True, ["CMD23", "CMD18"], ["CMD23", "CMD25", "CMD13"]),
    (False, ["CMD18", "CMD12"], ["CMD25", "CMD12", "CMD13"]),
], ids=["cmd23", "auto-cmd12"])
async def test_multi_block_uses_cmd23_when_the_scr_offers_it(cmd23: bool, read: list[str],
                                                             write: list[str],
                                                             make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", cmd23=cmd23)
    card = await rig.driver.init()
    assert card.cmd23 is cmd23
    assert bool(SCR.field("CMD_SUPPORT").get(card.scr) & 0b10) is cmd23
    mark = len(rig.trace)
    data = await rig.driver.read(10, 3)
    assert rig.commands(mark) == read
    assert data == rig.h.file_blocks(10, 3)
    mark = len(rig.trace)
    await rig.driver.write(20, data)
    assert rig.commands(mark) == write
    assert rig.h.file_blocks(20, 3) == data


@pytest.mark.parametrize("kind", ["SDSC", "SDHC"])
async def test_addresses_are_bytes_on_sdsc_and_blocks_otherwise(kind: str,
                                                               make_rig: MakeRig) -> None:
    rig = make_rig(kind)
    await rig.driver.init()
    mark = len(rig.trace)
    await rig.driver.read(7, 1)
    await rig.driver.erase(9, 2)
    unit = BLOCK_SIZE if kind == "SDSC" else 1
    args = [(t.index, t.arg) for t in rig.trace.tokens[mark:] if isinstance(t, CommandToken)]
    assert args == [(17, 7 * unit), (32, 9 * unit), (33, 10 * unit), (38, 0),
                    (13, rig.h.card.rca << 16)]


async def test_write_is_followed_by_cmd13_until_tran(make_rig: MakeRig) -> None:
    rig = make_rig("SDXC")
    await rig.driver.init()
    mark = len(rig.trace)
    await rig.driver.write(0, b"\x5a" * BLOCK_SIZE)
    assert rig.commands(mark) == ["CMD24", "CMD13"]
    assert rig.h.file_blocks(0) == b"\x5a" * BLOCK_SIZE


async def test_sdma_crosses_the_512k_boundary(make_rig: MakeRig) -> None:
    """1024 blocks from a 4 KiB-aligned buffer cross one 512 KiB SDMA boundary: the driver
    answers the DMA interrupt with the next boundary address (B.3 rule 11)."""
    rig = make_rig("SDHC")
    await rig.driver.init()
    payload = bytes(range(256)) * 2 * 1024
    await rig.driver.write(64, payload)
    mark = len(rig.trace)
    assert await rig.driver.read(64, 1024) == payload == rig.h.file_blocks(64, 1024)
    assert ("DMA_INT",) in rig.irq_bits(mark)
    dma = [value for reg, value in rig.register_writes(mark) if reg == "DMA_ADDRESS"]
    assert dma == [0x1000, 0x80000]


async def test_large_requests_are_split_at_1024_blocks(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", cmd23=False)
    await rig.driver.init()
    mark = len(rig.trace)
    await rig.driver.read(0, 2500)
    assert rig.commands(mark) == ["CMD18", "CMD12"] * 3
    assert [r.count for r in rig.requests[-2:]] == [2500, 2500]


async def test_requests_are_announced_before_and_after(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    await rig.driver.init()
    await rig.driver.write(1, bytes(BLOCK_SIZE))
    begun, ended = rig.requests[-2:]
    assert (begun.op, begun.lba, begun.count, begun.done) == ("write", 1, 1, False)
    assert ended.ok and ended.id == begun.id and ended.end_ps > ended.start_ps


@pytest.mark.parametrize("op", ["read", "write", "erase"])
async def test_requests_before_init_fail_clearly(op: str, make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    calls = {"read": lambda: rig.driver.read(0, 1), "erase": lambda: rig.driver.erase(0, 1),
             "write": lambda: rig.driver.write(0, bytes(BLOCK_SIZE))}
    message = f"{op}: no card initialised; run init first"
    with pytest.raises(DriverError, match=f"^{message}$"):
        await calls[op]()
    assert rig.commands() == []
    assert rig.requests[-1].error == message


@pytest.mark.parametrize("data", [b"", bytes(100)], ids=["empty", "partial-block"])
async def test_writes_must_be_whole_blocks(data: bytes, make_rig: MakeRig) -> None:
    rig = make_rig("SDHC")
    with pytest.raises(DriverError, match="not a whole number of 512-byte blocks"):
        await rig.driver.write(0, data)


async def test_requests_beyond_the_card_are_refused_before_the_bus(make_rig: MakeRig) -> None:
    rig = make_rig("SDSC")
    card = await rig.driver.init()
    mark = len(rig.trace)
    with pytest.raises(DriverError, match=r"beyond the end of the card \(131072 blocks\)"):
        await rig.driver.read(card.blocks - 1, 2)
    assert rig.commands(mark) == []


async def test_write_to_a_protected_card_reports_wp_violation(make_rig: MakeRig) -> None:
    rig = make_rig("SDHC", write_protect=True)
    await rig.driver.init()
    with pytest.raises(CardStatusError, match="WP_VIOLATION") as caught:
        await rig.driver.write(0, bytes(BLOCK_SIZE))
    assert "\n" not in str(caught.value)
    assert rig.h.card.state.label == "tran"
    assert await rig.driver.read(0, 1) == rig.h.file_blocks(0)  # the driver carries on


async def test_command_timeouts_reset_cmd_and_retry(make_rig: MakeRig) -> None:
    """A command nobody answers (CMD13 to another RCA): CMD_TIMEOUT, CMD-line reset, and
    ``retries`` more tries before the error goes up."""
    rig = make_rig("SDHC", retries=2)
    await rig.driver.init()
    mark = len(rig.trace)
    with pytest.raises(Exception, match="CMD13 SEND_STATUS: CMD_TIMEOUT"):
        await rig.driver.issuer.cmd(13, 0x1234 << 16)
    assert rig.commands(mark) == ["CMD13"] * 3
    resets = [reg for reg, _ in rig.register_writes(mark) if reg == "SOFTWARE_RESET"]
    assert len(resets) == 3  # CMD line (the bit has cleared itself by the time it is traced)
    assert sum("retry" in line for line in rig.log) == 2
