"""SD-mode bus timing of the card's tokens (Physical Layer spec §4.12, §3.6.1; reference
§2, §9, §10) and the Linux initialisation sequence (reference §8).

Times are counted in clock periods between the end of one token and the start of the
next, the convention of the spec's timing figures (reference §10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from sdmodel.card import CardTiming
from sdmodel.clock import SimClock
from sdmodel.crc import crc16_lanes
from sdmodel.sdbus import SdBus
from sdmodel.states import CardState
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    ResponseToken,
    Token,
)
from sdmodel.trace import Trace

if TYPE_CHECKING:
    from conftest import CardHarness

S = CardState
BLOCK = 512
ID_HZ, DS_HZ, HS_HZ = 400_000, 25_000_000, 50_000_000
RCA = 0xB368  # the default first RCA (the real capture's)


def make_bus(h: CardHarness, hz: float = ID_HZ, **clock: float) -> SdBus:
    bus = SdBus(h.card, SimClock(hz, **clock), Trace())
    bus.power_up()
    return bus


def of(bus: SdBus, kind: type[Token]) -> list[Token]:
    return [t for t in bus.trace.tokens if isinstance(t, kind)]


def gap(first: Token, second: Token) -> int:
    """Clock periods strictly between ``first``'s end bit and ``second``'s start bit."""
    assert first.period == second.period
    return (second.start - first.end) // second.period


async def init_bus(bus: SdBus) -> None:
    """Identification and selection through the bus: ready for data in tran."""
    for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0),
                       (41, 0x40300000), (2, 0), (3, 0)):
        await bus.command(index, arg)
    await bus.command(7, RCA << 16)
    assert await bus.wait_busy()
    assert bus.card.state is S.TRAN


# --- CMD line (§4.7.2, §4.9, §4.12) -------------------------------------------------------


@pytest.mark.parametrize("n_cr", [2, 11, 64])
async def test_response_timing_and_lengths(n_cr: int,
                                           make_card: Callable[..., CardHarness]) -> None:
    h = make_card(timing=CardTiming(n_cr=n_cr))
    bus = make_bus(h)
    expected = {  # index -> (response kind, clocks before it, response clocks)
        8: ("R7", n_cr, 48), 55: ("R1", n_cr, 48), 41: ("R3", 5, 48), 2: ("R2", 5, 136),
        3: ("R6", n_cr, 48), 9: ("R2", n_cr, 136), 13: ("R1", n_cr, 48),
        7: ("R1b", n_cr, 48),
    }
    await bus.command(0, 0)
    for index, arg in ((8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0), (41, 0x40300000),
                       (2, 0), (3, 0), (9, RCA << 16), (13, RCA << 16), (7, RCA << 16)):
        sent = await bus.command(index, arg)
        kind, n, length = expected[index]
        assert sent.command.clocks == 48  # start, direction, index, argument, CRC7, end
        assert sent.response is not None and sent.response.type == kind
        assert gap(sent.command, sent.response) == n  # N_CR, or N_ID = 5 for CMD2/ACMD41
        assert sent.response.clocks == length
        assert sent.response.index == (0x3F if kind in ("R2", "R3") else index)


async def test_next_command_waits_n_rc_after_a_response_and_n_cc_after_none(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = make_bus(h)
    await init_bus(bus)
    commands = of(bus, CommandToken)
    responses = {t.for_index: t for t in of(bus, ResponseToken)}
    tokens = sorted([*commands, *of(bus, ResponseToken)], key=lambda t: t.start)
    for before, after in zip(tokens, tokens[1:], strict=False):
        if isinstance(before, ResponseToken) and isinstance(after, CommandToken):
            assert gap(before, after) >= 8  # N_RC
    cmd0, cmd8 = commands[0], commands[1]
    assert 0 not in responses and gap(cmd0, cmd8) >= 8  # N_CC after a command without one
    assert commands[0].start >= 74 * commands[0].period  # >= 74 power-up clocks


async def test_clock_change_shows_in_the_token_periods(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = make_bus(h)
    slow = (await bus.command(0, 0)).command
    bus.clock.set_frequency(DS_HZ)
    fast = (await bus.command(8, 0x1AA)).command
    assert (slow.period, fast.period) == (2_500_000, 40_000)  # ps
    assert (slow.end - slow.start, fast.end - fast.start) == (48 * 2_500_000, 48 * 40_000)


# --- DAT lines (§3.6.1, §4.3.3, §4.3.4) -----------------------------------------------------


@pytest.mark.parametrize(("width", "index", "app", "nbytes"),
                         [(1, 17, False, 512), (4, 17, False, 512), (1, 51, True, 8),
                          (4, 13, True, 64), (4, 6, False, 64)],
                         ids=["cmd17_1bit", "cmd17_4bit", "acmd51_1bit", "acmd13_4bit",
                              "cmd6_4bit"])
async def test_read_data_token(width: int, index: int, app: bool, nbytes: int,
                               make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = make_bus(h, DS_HZ)
    await init_bus(bus)
    if width == 4:
        await bus.command(55, RCA << 16)
        await bus.command(6, 2)
        bus.host_width = 4
    if app:
        await bus.command(55, RCA << 16)
    command = (await bus.command(index, 0x00FFFFF1 if index == 6 else 0)).command
    data = await bus.read_block()
    assert data is not None and len(data) == nbytes
    token = of(bus, DataToken)[-1]
    assert isinstance(token, DataToken) and not token.to_card and token.width == width
    assert token.clocks == 1 + nbytes * 8 // width + 16 + 1  # start, data, CRC16, end
    assert list(token.crcs) == crc16_lanes(data, width) and token.crc_ok
    assert gap(command, token) >= 2  # N_AC min
    assert h.card.state is S.TRAN


async def test_multiple_block_read_keeps_n_ac_between_blocks(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = make_bus(h, DS_HZ)
    await init_bus(bus)
    await bus.command(18, 0)
    for _ in range(3):
        assert await bus.read_block() is not None
    await bus.command(12, 0)
    blocks = of(bus, DataToken)
    assert all(gap(a, b) >= 2 for a, b in zip(blocks, blocks[1:], strict=False))


@pytest.mark.parametrize("n_crc", [2, 8])
async def test_write_crc_status_and_busy_follow_the_block(
        n_crc: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(timing=CardTiming(n_crc=n_crc))
    bus = make_bus(h, DS_HZ, free_wall_s=1.0)  # storage counts as instant: nominal busy
    await init_bus(bus)
    response = (await bus.command(24, 0)).response
    data = bytes(range(256)) * 2
    assert await bus.write_block(data) is CrcStatus.ACCEPTED
    assert await bus.wait_busy()
    block = of(bus, DataToken)[-1]
    status = of(bus, CrcStatusToken)[-1]
    busy = of(bus, BusyToken)[-1]
    assert isinstance(block, DataToken) and block.to_card and block.clocks == 4114
    assert response is not None and gap(response, block) >= 2  # N_WR
    assert list(block.crcs) == crc16_lanes(data, 1)
    assert isinstance(status, CrcStatusToken) and status.status == 0b010
    assert gap(block, status) == n_crc and status.clocks == 5  # 0, 3 status bits, 1
    assert busy.start == status.end and busy.clocks == h.card.options.timing.program_clocks


def dat0(bus: SdBus, start: int, clocks: int) -> str:
    """DAT0 as a timing string, one character per clock from ``start``: ``-`` high
    (driven 1 or pulled up), ``_`` low. Covers the end of a write block onwards."""
    period = bus.clock.period
    levels = []
    for n in range(clocks):
        t = start + n * period
        level = "-"
        for token in bus.trace.window(t, t + period):
            if isinstance(token, CrcStatusToken):
                bit = (t - token.start) // period  # 0, status (3 bits), 1
                level = "-" if (token.status << 1 | 1) >> (4 - bit) & 1 else "_"
            elif isinstance(token, BusyToken):
                level = "_"
        levels.append(level)
    return "".join(levels)


async def test_write_as_a_timing_string(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = make_bus(h, DS_HZ, free_wall_s=1.0)
    await init_bus(bus)
    await bus.command(24, 0)
    await bus.write_block(bytes(BLOCK))
    await bus.wait_busy()
    block = of(bus, DataToken)[-1]
    #                      end, N_CRC, CRC status 0 010 1, busy (8 clocks), released
    assert dat0(bus, block.end - block.period, 1 + 2 + 5 + 8 + 2) == "---" "__-_-" "________" "--"


async def test_crc_error_status_token(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    bus = make_bus(h, DS_HZ)
    await init_bus(bus)
    await bus.command(25, 0)
    assert await bus.write_block(bytes(BLOCK), crc_ok=False) is CrcStatus.CRC_ERROR
    assert of(bus, CrcStatusToken)[-1].status == 0b101
    sent = of(bus, DataToken)[-1]
    assert isinstance(sent, DataToken) and not sent.crc_ok
    assert list(sent.crcs) != crc16_lanes(bytes(BLOCK), 1)
    assert await bus.write_block(bytes(BLOCK)) is None  # ignored: no CRC status
    assert len(of(bus, CrcStatusToken)) == 1


async def test_a_busy_the_host_did_not_wait_for_stays_separate(
        make_card: Callable[..., CardHarness]) -> None:
    """CMD7's short R1b busy, not waited for, must not swallow a later write's busy."""
    h = make_card()
    bus = make_bus(h, DS_HZ, free_wall_s=1.0)
    for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0),
                       (41, 0x40300000), (2, 0), (3, 0), (7, RCA << 16)):
        await bus.command(index, arg)
    cmd7 = of(bus, ResponseToken)[-1]
    await bus.command(24, 0)
    await bus.write_block(bytes(BLOCK))
    assert await bus.wait_busy()
    r1b, program = of(bus, BusyToken)
    assert (r1b.start, r1b.clocks) == (cmd7.end + 2 * cmd7.period,
                                       h.card.options.timing.r1b_clocks)
    assert program.start == of(bus, CrcStatusToken)[-1].end


# --- the Linux initialisation sequence (reference §8) ----------------------------------------


@dataclass(frozen=True)
class Step:
    index: int
    arg: int | str  # "rca": the published RCA in [31:16]
    resp: str
    value: int | str | None  # None: not checked here; a string names a register
    app: bool = False
    data: int = 0  # bytes of the data block that follows


OCR_READY = {"SDSC": 0x80FF8000, "SDHC": 0xC0FF8000}
LINUX_INIT = (
    Step(0, 0, "none", None),
    Step(8, 0x1AA, "R7", 0x1AA),
    Step(55, 0, "R1", 0x120),
    Step(41, 0, "R3", 0x00FF8000, app=True),  # inquiry
    Step(0, 0, "none", None),
    Step(8, 0x1AA, "R7", 0x1AA),
    Step(55, 0, "R1", 0x120),
    Step(41, 0x40300000, "R3", 0x00FF8000, app=True),  # busy
    Step(55, 0, "R1", 0x120),
    Step(41, 0x40300000, "R3", "ocr", app=True),  # ready
    Step(2, 0, "R2", "cid"),
    Step(3, 0, "R6", RCA << 16 | 0x0500),
    Step(9, "rca", "R2", "csd"),
    Step(7, "rca", "R1b", 0x700),
    Step(55, "rca", "R1", 0x920),
    Step(51, 0, "R1", 0x920, app=True, data=8),
    Step(55, "rca", "R1", 0x920),
    Step(13, 0, "R1", 0x920, app=True, data=64),
    Step(6, 0x00FFFFF0, "R1", 0x900, data=64),
    Step(6, 0x80FFFFF1, "R1", 0x900, data=64),
    Step(55, "rca", "R1", 0x920),
    Step(6, 2, "R1", 0x920, app=True),
)


@pytest.mark.parametrize("kind", ["SDSC", "SDHC"])
async def test_linux_initialisation_sequence(kind: str,
                                             make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    bus = make_bus(h)
    registers = {"ocr": OCR_READY[kind], "cid": h.card.cid, "csd": h.card.csd}
    for step in LINUX_INIT:
        arg = RCA << 16 if step.arg == "rca" else int(step.arg)
        sent = await bus.command(step.index, arg)
        assert sent.reply.app is step.app
        token = sent.response
        if step.resp == "none":
            assert token is None
        else:
            assert token is not None and token.type == step.resp
            expected = registers[step.value] if isinstance(step.value, str) else step.value
            assert token.value == expected, f"{sent.reply.name}: {token.value:#x}"
        if step.data:
            assert len(await bus.read_block() or b"") == step.data
        if step.resp == "R1b":
            assert await bus.wait_busy()
        if step.index == 9:
            bus.clock.set_frequency(DS_HZ)  # the CSD is read: leave identification speed
        if step.index == 6 and arg >> 31:
            bus.clock.set_frequency(HS_HZ)  # switched to high speed
    bus.host_width = 4
    await bus.command(17, 0)
    assert await bus.read_block() == h.file_blocks(0)
    block = of(bus, DataToken)[-1]
    assert isinstance(block, DataToken)
    assert (block.width, block.period, block.clocks) == (4, 20_000, 1042)
    assert h.card.state is S.TRAN
