"""SDHCI command and data behaviour against a card on a real image (HCS chapter 3;
reference B.3 rules 5-12, B.4 driver sequences, B.5 interrupt sequences, Part C).

The controller is driven with the register sequences of B.4 by the test-local host in
conftest.py; times are simulated picoseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from sdmodel.sdhci.memory import HostMemoryError
from sdmodel.sdhci.registers import (
    CmdType,
    ErrorInt,
    HostControl,
    NormalInt,
    Offset,
    PresentState,
    RespSelect,
    SoftwareReset,
    TransferMode,
    make_command,
)
from sdmodel.states import CardState
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatusToken,
    DataToken,
    FindingToken,
    IdleToken,
    ResponseToken,
)
from sdmodel.trace import IrqEvent

if TYPE_CHECKING:
    from conftest import Host

MakeHost = Callable[..., "Host"]
T = TransferMode
PS = PresentState
CC, TC = NormalInt.CMD_COMPLETE, NormalInt.XFER_COMPLETE
BRR, BWR, DMA = NormalInt.BUF_RD_READY, NormalInt.BUF_WR_READY, NormalInt.DMA_INT
ERR = NormalInt.ERROR
READ_1 = T.READ | T.BLOCK_COUNT_ENABLE  # 0x0012, Linux CMD17
READ_N = T.READ | T.BLOCK_COUNT_ENABLE | T.MULTI
WRITE_1 = T.BLOCK_COUNT_ENABLE  # 0x0002, Linux CMD24
WRITE_N = T.BLOCK_COUNT_ENABLE | T.MULTI
DATA_INHIBITS = PS.DAT_INHIBIT | PS.DAT_ACTIVE | PS.READ_ACTIVE | PS.WRITE_ACTIVE
STATE_SHIFT = 9  # CURRENT_STATE in card status 12:9 (§4.10.1)
US = 1_000_000  # ps
S = CardState


def tokens(h: Host, kind: type) -> list[Any]:
    return [t for t in h.ctrl.bus.trace.tokens if isinstance(t, kind)]


def findings(h: Host) -> list[str]:
    return [t.message for t in tokens(h, FindingToken)]


def pattern(seed: int, blocks: int = 1) -> bytes:
    return bytes((seed * 31 + i * 7 + (i >> 9)) & 0xFF for i in range(512 * blocks))


def card_state(h: Host, response: int) -> CardState:
    return CardState(response >> STATE_SHIFT & 0xF)


# --- command issue and inhibit bits (rules 5, 6) ----------------------------------------------


async def test_command_complete_follows_the_response_and_clears_cmd_inhibit(
        make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.issue(13, h.rca << 16)
    assert h.rd(Offset.PRESENT_STATE) & PS.CMD_INHIBIT  # set by the write of 0x0F
    assert await h.wait_for(CC) == CC
    assert not h.rd(Offset.PRESENT_STATE) & PS.CMD_INHIBIT
    assert card_state(h, h.response()) is S.TRAN


async def test_command_write_is_ignored_while_cmd_inhibit(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    sent = len(tokens(h, CommandToken))
    h.issue(13, h.rca << 16)
    h.issue(55, h.rca << 16)  # the driver must wait for CMD inhibit; the model drops it
    await h.ctrl.idle()
    assert [t.index for t in tokens(h, CommandToken)[sent:]] == [13]
    assert findings(h) == ["CMD55 not issued: Command Inhibit (CMD) is set"]
    assert h.status() == CC  # one Command Complete, for CMD13


async def test_command_is_ignored_while_the_sd_clock_is_off(make_host: MakeHost) -> None:
    h = make_host()
    h.power_on()
    h.wr(Offset.CLOCK_CONTROL, 2, h.rd(Offset.CLOCK_CONTROL, 2) & ~0x4)  # SD Clock Enable off
    h.issue(0)
    await h.ctrl.idle()
    assert tokens(h, CommandToken) == [] and h.status() == 0
    assert findings(h) == ["CMD0 not issued: the SD clock is off"]


async def test_dat_inhibit_holds_data_commands_but_not_plain_ones(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.card.storage.faults.hang()  # the written block stays in programming: DAT0 busy
    h.prepare(1)
    h.issue(24, 3, mode=WRITE_1, data=True)
    await h.wait_for(CC)
    await h.write_buffer(pattern(3))
    while not h.card.card.busy:
        await asyncio.sleep(0.0005)
    state = h.rd(Offset.PRESENT_STATE)
    assert state & PS.DAT_INHIBIT and not state & PS.DAT0_LEVEL
    h.issue(17, 0, mode=READ_1, data=True)
    await asyncio.sleep(0)
    assert findings(h) == ["CMD17 not issued: Command Inhibit (DAT) is set"]
    status = await h.command(13, h.rca << 16)  # CMD line is free: status polling works
    assert status & CC and card_state(h, h.response()) is S.PRG
    h.card.storage.faults.release()
    assert await h.wait_for(TC) & TC
    assert h.card.file_blocks(3) == pattern(3)


# --- responses (rules 6, 7; B.2 "Response registers") -----------------------------------------


async def test_no_response_raises_command_timeout_without_command_complete(
        make_host: MakeHost) -> None:
    h = make_host()
    h.power_on()
    await h.command(0)
    status = await h.command(13)  # illegal in idle: the card stays silent
    assert status == 0x0001_8000  # ERR + CMD_TIMEOUT, no CC (B.5)
    no_response = tokens(h, IdleToken)[-1]
    assert (no_response.reason, no_response.clocks) == ("no response", 64)  # N_CR max
    assert not h.rd(Offset.PRESENT_STATE) & PS.CMD_INHIBIT


@pytest.mark.parametrize(("ready", "index", "app", "flags", "error"), [
    (False, 41, True, {"resp": RespSelect.R48, "crc_check": True}, ErrorInt.CMD_CRC),
    (True, 2, False, {"index_check": True}, ErrorInt.CMD_INDEX),
    (True, 2, False, {"resp": RespSelect.R48}, ErrorInt.CMD_END_BIT),
    (False, 8, False, {"resp": RespSelect.R136}, ErrorInt.CMD_END_BIT),
], ids=["r3_has_no_crc", "r2_index_is_111111", "r2_read_as_r48", "r7_read_as_r136"])
async def test_response_checks_raise_command_errors_with_command_complete(
        ready: bool, index: int, app: bool, flags: dict[str, Any], error: ErrorInt,
        make_host: MakeHost) -> None:
    h = make_host()
    if ready:
        await h.identify()
    else:
        h.power_on()
        await h.command(0)
        await h.command(55)
    status = await h.command(index, 0x1AA if index == 8 else 0x40300000 * app, app=app,
                             **flags)
    assert status == error << 16 | ERR | CC


async def test_r48_response_lands_in_response0_and_leaves_the_rest(make_host: MakeHost) -> None:
    h = make_host()
    await h.identify()
    await h.command(2)
    r2 = [h.response(n) for n in range(4)]
    await h.command(3)
    assert h.response() == 0xB368_0500  # R6: new RCA, status (ident, READY_FOR_DATA)
    assert [h.response(n) for n in (1, 2, 3)] == r2[1:]


async def test_r2_response_is_stored_without_crc(make_host: MakeHost) -> None:
    h = make_host()
    await h.identify()
    await h.command(2)
    words = [h.response(n) for n in range(4)]
    cid = h.card.card.cid
    assert sum(w << (32 * n) for n, w in enumerate(words)) == cid >> 8  # R[127:8] in 119:0
    assert words[3] >> 24 == 0
    # Linux sdhci_read_rsp_136: resp[i] = RESP[3-i] << 8 | RESP[2-i] >> 24
    linux = [(words[3 - i] << 8 | (words[2 - i] >> 24 if i < 3 else 0)) & 0xFFFFFFFF
             for i in range(4)]
    assert linux == [cid >> (96 - 32 * i) & 0xFFFFFFFF for i in range(3)] + [cid & ~0xFF
                                                                             & 0xFFFFFFFF]


async def test_r1b_raises_transfer_complete_when_the_busy_ends(make_host: MakeHost) -> None:
    h = make_host()
    await h.identify()
    await h.command(2)
    await h.command(3)
    h.wr(Offset.SIGNAL_ENABLE, 4, TC)  # the IRQ line rises when Transfer Complete latches
    h.issue(7, 0xB368 << 16)
    await asyncio.wait_for(h.ctrl.wait_irq(), 5)
    assert h.status() == CC | TC and not h.rd(Offset.PRESENT_STATE) & DATA_INHIBITS
    response, busy = tokens(h, ResponseToken)[-1], tokens(h, BusyToken)[-1]
    rise = [e for e in tokens(h, IrqEvent) if e.level][-1]
    assert busy.reason == "R1b" and response.end < busy.end <= rise.start
    assert h.card.card.state is S.TRAN


# --- PIO (rules 8, 9; B.5) ---------------------------------------------------------------------


async def test_pio_read_fires_buffer_read_ready_then_transfer_complete(
        make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(1)
    h.issue(17, 5, mode=READ_1, data=True)
    assert await h.wait_for(CC) & CC
    h.clear(CC)
    assert await h.wait_for(BRR) == BRR
    state = h.rd(Offset.PRESENT_STATE)
    assert state & (PS.BUF_RD_ENABLE | PS.READ_ACTIVE | PS.DAT_INHIBIT) == (
        PS.BUF_RD_ENABLE | PS.READ_ACTIVE | PS.DAT_INHIBIT)
    assert not state & PS.DAT_ACTIVE  # the last block's end bit has passed
    assert await h.read_buffer() == h.card.file_blocks(5)
    assert await h.wait_for(TC) == TC
    assert not h.rd(Offset.PRESENT_STATE) & (DATA_INHIBITS | PS.BUF_RD_ENABLE)


@pytest.mark.parametrize("width", [1, 2, 4])
async def test_buffer_port_reads_and_writes_at_any_width(width: int, make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(1)
    h.issue(24, 9, mode=WRITE_1, data=True)
    await h.write_buffer(pattern(9), width)
    await h.wait_for(TC)
    h.clear(h.status())
    h.issue(17, 9, mode=READ_1, data=True)
    assert await h.read_buffer(width=width) == pattern(9) == h.card.file_blocks(9)


async def test_non_sequential_buffer_read_is_rejected(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(1)
    h.issue(17, 2, mode=READ_1, data=True)
    await h.wait_for(BRR)
    assert h.rd(Offset.BUFFER + 1, 1) == 0  # lane 1 before lane 0 (QEMU rejects it)
    assert findings(h) == ["non-sequential BUFFER read at byte lane 1"]
    assert await h.read_buffer() == h.card.file_blocks(2)  # nothing was consumed


async def test_pio_write_fires_buffer_write_ready_then_transfer_complete_after_busy(
        make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(1)
    h.issue(24, 7, mode=WRITE_1, data=True)  # B.5: CC, BWR, 128 writes, TC after busy
    assert await h.wait_for(CC) & CC
    h.clear(CC)
    assert await h.wait_for(BWR) == BWR
    assert h.rd(Offset.PRESENT_STATE) & (PS.BUF_WR_ENABLE | PS.WRITE_ACTIVE)
    await h.write_buffer(pattern(7))
    assert await h.wait_for(TC) == TC
    assert not h.card.card.busy and h.card.file_blocks(7) == pattern(7)  # on disk at TC
    rise = [e for e in tokens(h, IrqEvent) if e.level][-1]
    assert rise.start >= tokens(h, BusyToken)[-1].end


@pytest.mark.parametrize("read", [True, False], ids=["read", "write"])
async def test_auto_cmd12_response_lands_in_response3(read: bool, make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(3)
    mode = (READ_N if read else WRITE_N) | T.AUTO_CMD12  # 0x0036 / 0x0026
    h.issue(18 if read else 25, 20, mode=mode, data=True)
    await h.wait_for(CC)
    for n in range(3):
        if read:
            assert await h.read_buffer() == h.card.file_blocks(20 + n)
        else:
            await h.write_buffer(pattern(20 + n))
    assert await h.wait_for(TC) & TC
    assert h.rd(Offset.BLOCK_COUNT, 2) == 0  # counted down block by block
    assert [t.index for t in tokens(h, CommandToken)[-2:]] == [18 if read else 25, 12]
    assert card_state(h, h.response(3)) is (S.DATA if read else S.RCV)  # CMD12's R1b
    assert card_state(h, h.response(0)) is S.TRAN  # the main command's R1, kept
    assert h.card.card.state is S.TRAN
    if not read:
        assert h.card.file_blocks(20, 3) == b"".join(pattern(20 + n) for n in range(3))


async def test_auto_cmd23_sends_argument2_before_the_command(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(2)
    h.wr(Offset.DMA_ADDRESS, 4, 2)  # Argument 2 (v3.00: shares 0x00 with the SDMA address)
    h.issue(25, 30, mode=WRITE_N | T.AUTO_CMD23, data=True)
    await h.write_buffer(pattern(30))
    await h.write_buffer(pattern(31))
    assert await h.wait_for(TC) & TC
    sent = tokens(h, CommandToken)[-2:]
    assert [(t.index, t.arg) for t in sent] == [(23, 2), (25, 30)]  # no CMD12 needed
    assert card_state(h, h.response(3)) is S.TRAN and h.card.card.state is S.TRAN
    assert h.card.file_blocks(30, 2) == pattern(30) + pattern(31)


# --- SDMA (rule 11) ---------------------------------------------------------------------------


@pytest.mark.parametrize("read", [True, False], ids=["read", "write"])
async def test_sdma_moves_blocks_through_host_memory(read: bool, make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    memory = h.ctrl.memory
    address = memory.alloc(4 * 512)
    if not read:
        memory.write(address, pattern(40, 4))
    h.prepare(4, address=address)
    mode = (READ_N if read else WRITE_N) | T.AUTO_CMD12 | T.DMA
    h.issue(18 if read else 25, 40, mode=mode, data=True)
    status = await h.wait_for(TC)
    assert status & (TC | DMA | BRR | BWR) == TC  # no buffer port, no boundary crossed
    assert h.rd(Offset.DMA_ADDRESS) == address + 4 * 512
    assert memory.read(address, 4 * 512) == h.card.file_blocks(40, 4)


async def test_sdma_stops_at_boundary_with_dma_interrupt(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    memory = h.ctrl.memory
    first, second = memory.alloc(4096), memory.alloc(4096)
    h.prepare(16, boundary=0, address=first)  # 4 KiB boundary: 8 blocks
    h.issue(18, 0, mode=READ_N | T.AUTO_CMD12 | T.DMA, data=True)
    status = await h.wait_for(DMA | TC)
    assert status & (DMA | TC) == DMA
    assert h.rd(Offset.DMA_ADDRESS) == first + 4096  # the next address, paused
    assert h.rd(Offset.BLOCK_COUNT, 2) == 8
    assert len(tokens(h, DataToken)) == 8
    h.clear(DMA)
    h.wr(Offset.DMA_ADDRESS, 4, second)  # writing byte 3 resumes (Linux's sequence)
    status = await h.wait_for(TC)
    assert status & (DMA | TC) == TC  # the end on a boundary gives no DMA Interrupt
    assert memory.read(first, 4096) == h.card.file_blocks(0, 8)
    assert memory.read(second, 4096) == h.card.file_blocks(8, 8)


async def test_sdma_outside_host_memory_surfaces_from_idle(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(1, address=h.ctrl.memory.size)
    h.issue(17, 0, mode=READ_1 | T.DMA, data=True)
    with pytest.raises(HostMemoryError, match="outside"):
        await h.ctrl.idle()


async def test_dma_select_other_than_sdma_raises_adma_error(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.wr(Offset.HOST_CONTROL, 1, 0b10 << 3)  # 32-bit ADMA2: not offered
    assert h.rd(Offset.HOST_CONTROL, 1) & HostControl.DMA_SELECT
    h.prepare(1, address=h.ctrl.memory.alloc(512))
    h.issue(17, 0, mode=READ_1 | T.DMA, data=True)
    await h.wait_for(TC)
    assert h.status() >> 16 == ErrorInt.ADMA and h.rd(Offset.ADMA_ERROR, 1) == 0b01


# --- data errors (rule 10; Part C) -------------------------------------------------------------


@pytest.mark.parametrize("read", [True, False], ids=["read", "write"])
async def test_slow_storage_past_timeout_raises_data_timeout(read: bool,
                                                             make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.wr(Offset.TIMEOUT_CONTROL, 1, 0)  # TMCLK 1 MHz x 2^13 = 8.192 ms
    h.card.storage.faults.latency = 0.1  # storage slower than that (wall = simulated time)
    h.prepare(1)
    if read:
        h.issue(17, 4, mode=READ_1, data=True)
    else:
        h.issue(24, 4, mode=WRITE_1, data=True)
        await h.write_buffer(pattern(4))
    h.wr(Offset.SIGNAL_ENABLE, 4, ErrorInt.DATA_TIMEOUT << 16)  # the line rises at the error
    await asyncio.wait_for(h.ctrl.wait_irq(), 5)
    assert h.status() == ErrorInt.DATA_TIMEOUT << 16 | ERR | CC  # no BRR, no TC (B.5)
    waited_from = (tokens(h, ResponseToken) if read else tokens(h, CrcStatusToken))[-1].end
    error_edge = [e for e in tokens(h, IrqEvent) if e.level][-1]
    assert error_edge.start == waited_from + 8_192 * US  # counted in simulated time
    assert h.rd(Offset.PRESENT_STATE) & PS.DAT_INHIBIT  # until the driver resets DAT
    # Recovery as Linux does it: reset CMD and DAT, stop the card, wait until it is ready.
    await h.reset(SoftwareReset.CMD | SoftwareReset.DATA)
    assert not h.rd(Offset.PRESENT_STATE) & DATA_INHIBITS
    h.clear(h.status())
    h.wr(Offset.TIMEOUT_CONTROL, 1, 0xE)
    h.enable_interrupts()
    if read:
        await h.r1b(12)
    await h.card.card.wait_ready()
    await h.command(13, h.rca << 16)
    assert card_state(h, h.response()) is S.TRAN
    if not read:
        assert h.card.file_blocks(4) == pattern(4)  # an accepted block is never lost


@pytest.mark.parametrize("read", [True, False], ids=["read", "write"])
async def test_data_crc_error_when_card_and_host_widths_differ(read: bool,
                                                               make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    await h.command(55, h.rca << 16)
    await h.command(6, 2, app=True)  # the card goes 4-bit; Host Control stays 1-bit
    h.prepare(1)
    if read:
        h.issue(17, 0, mode=READ_1, data=True)
    else:
        h.issue(24, 0, mode=WRITE_1, data=True)
        await h.write_buffer(pattern(0))
    status = await h.wait_for(TC | BRR)
    assert status == ErrorInt.DATA_CRC << 16 | ERR | CC


# --- software reset (HCS 2.2.16) ----------------------------------------------------------------


async def test_software_reset_data_clears_transfer_state(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(3)
    h.issue(18, 0, mode=READ_N, data=True)
    await h.wait_for(BRR)
    assert h.rd(Offset.PRESENT_STATE) & (PS.BUF_RD_ENABLE | PS.READ_ACTIVE | PS.DAT_INHIBIT)
    h.wr(Offset.SOFTWARE_RESET, 1, SoftwareReset.DATA)
    assert h.rd(Offset.SOFTWARE_RESET, 1) == SoftwareReset.DATA  # until the transfer ended
    assert not h.rd(Offset.PRESENT_STATE) & (DATA_INHIBITS | PS.BUF_RD_ENABLE)
    assert h.status() == CC  # Buffer Read Ready went with the data circuit
    await h.ctrl.idle()
    assert h.rd(Offset.SOFTWARE_RESET, 1) == 0  # self-cleared
    assert h.rd(Offset.BUFFER) == 0 and findings(h)[-1].startswith("BUFFER read while")
    h.clear(CC)
    await h.r1b(12)  # the card was still sending: stop it
    h.prepare(1)
    h.issue(17, 1, mode=READ_1, data=True)
    assert await h.read_buffer() == h.card.file_blocks(1)


async def test_software_reset_cmd_clears_command_complete_and_cmd_inhibit(
        make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.issue(13, h.rca << 16)
    assert await h.wait_for(CC) == CC
    sent = len(tokens(h, CommandToken))
    h.issue(13, h.rca << 16)
    h.wr(Offset.SOFTWARE_RESET, 1, SoftwareReset.CMD)  # before the command went out
    assert h.status() == 0 and not h.rd(Offset.PRESENT_STATE) & PS.CMD_INHIBIT
    await h.reset(SoftwareReset.CMD)
    assert len(tokens(h, CommandToken)) == sent  # the dropped command never reached the bus
    assert await h.command(13, h.rca << 16) == CC


# --- stopping a transfer ------------------------------------------------------------------------


async def test_stop_at_block_gap_and_continue(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(3)
    h.wr(Offset.BLOCK_GAP_CONTROL, 1, 0x01)  # Stop At Block Gap Request
    h.issue(18, 10, mode=READ_N | T.AUTO_CMD12, data=True)
    await h.wait_for(CC)
    h.clear(CC)
    assert await h.read_buffer() == h.card.file_blocks(10)
    status = await h.wait_for(NormalInt.BLOCK_GAP)
    assert status == NormalInt.BLOCK_GAP | TC  # HCS 2.2.17: stopped transfers complete
    assert not h.rd(Offset.PRESENT_STATE) & DATA_INHIBITS
    h.clear(status)
    h.wr(Offset.BLOCK_GAP_CONTROL, 1, 0x00)
    h.wr(Offset.BLOCK_GAP_CONTROL, 1, 0x02)  # Continue Request
    assert h.rd(Offset.BLOCK_GAP_CONTROL, 1) == 0
    assert await h.read_buffer() == h.card.file_blocks(11)
    assert await h.read_buffer() == h.card.file_blocks(12)
    assert await h.wait_for(TC) == TC and h.card.card.state is S.TRAN


async def test_abort_command_stops_a_running_transfer(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(0)
    h.issue(18, 0, mode=T.READ | T.MULTI, data=True)  # open-ended
    await h.wait_for(BRR)
    h.clear(h.status())
    abort = make_command(12, RespSelect.R48_BUSY, crc_check=True, index_check=True,
                         cmd_type=CmdType.ABORT)
    h.wr(Offset.COMMAND, 2, abort)  # allowed although DAT inhibit is set
    assert await h.wait_for(CC) & CC
    assert await h.wait_for(TC) & TC
    assert not h.rd(Offset.PRESENT_STATE) & (DATA_INHIBITS | PS.BUF_RD_ENABLE)
    assert h.card.card.state is S.TRAN


async def test_block_count_zero_moves_nothing(make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.prepare(0)
    h.issue(18, 0, mode=READ_N, data=True)  # B.2: count 0 with Block Count Enable
    assert await h.wait_for(TC) == CC | TC
    assert tokens(h, DataToken) == [] and not h.rd(Offset.PRESENT_STATE) & DATA_INHIBITS
    h.clear(CC | TC)
    await h.r1b(12)
    assert h.card.card.state is S.TRAN


async def test_data_error_with_auto_cmd12_reports_auto_cmd12_not_executed(
        make_host: MakeHost) -> None:
    h = make_host()
    await h.init_card()
    h.wr(Offset.TIMEOUT_CONTROL, 1, 0)
    h.card.storage.faults.latency = 0.1
    h.prepare(2)
    h.issue(18, 0, mode=READ_N | T.AUTO_CMD12, data=True)
    status = await h.wait_for(BRR)
    assert status >> 16 == ErrorInt.DATA_TIMEOUT | ErrorInt.AUTO_CMD
    assert h.rd(Offset.AUTO_CMD_STATUS, 2) == 0x01  # Auto CMD12 not executed (HCS 2.2.23)
    assert [t.index for t in tokens(h, CommandToken)][-1] == 18
