"""What each command does (Physical Layer spec §4.7.4; reference §4.1, §4.2, §6, §7, §9).

Register contents are checked bit by bit against the reference's field positions (not
through ``sdmodel.registers``), and CRC7s are recomputed with ``sdmodel.crc.crc7``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.crc import crc7
from sdmodel.registers import CardStatus
from sdmodel.states import CardState
from sdmodel.tokens import CrcStatus

if TYPE_CHECKING:
    from conftest import CardHarness

S = CardState
BLOCK = 512
MIB = 1024 * 1024
PASSWORD = b"sdscope"


def bits(value: int, msb: int, lsb: int) -> int:
    return (value >> lsb) & ((1 << (msb - lsb + 1)) - 1)


def register_crc_ok(raw128: int) -> bool:
    """CID/CSD bits 7:1 are the CRC7 of bits 127:8 and bit 0 is 1 (§5.2, §5.3)."""
    return bits(raw128, 7, 1) == crc7((raw128 >> 8).to_bytes(15, "big")) and raw128 & 1 == 1


def with_crc(raw128: int) -> int:
    return (raw128 & ~0xFF) | crc7((raw128 >> 8).to_bytes(15, "big")) << 1 | 1


def csd_via_cmd9(h: CardHarness) -> int:
    """The CSD as the host reads it: deselect (tran -> stby), CMD9, select again."""
    h.cmd(7, 0)
    csd = h.cmd(9, h.rca_arg).value
    h.cmd(7, h.rca_arg)
    return csd


async def read_register(h: CardHarness, index: int, arg: int = 0, *, app: bool = False
                        ) -> bytes:
    reply = h.acmd(index, arg) if app else h.cmd(index, arg)
    assert not reply.rejected and reply.data.value == "read", reply
    result = await h.read()
    assert result.data is not None
    assert h.card.state is S.TRAN  # data -> tran after the one block
    return result.data


# --- identification registers (§5.2, §5.3, reference §6) ----------------------------------


async def test_cmd2_sends_the_cid_with_its_crc7(make_card: Callable[..., CardHarness]) -> None:
    h = make_card(psn=0x12345678)
    await h.to_state(S.READY)
    cid = h.cmd(2).value
    assert register_crc_ok(cid)
    assert bits(cid, 127, 120) == 0x1D  # MID
    assert bits(cid, 119, 104).to_bytes(2, "big") == b"SS"  # OID
    assert bits(cid, 103, 64).to_bytes(5, "big") == b"SDSCP"  # PNM
    assert bits(cid, 55, 24) == 0x12345678  # PSN
    assert bits(cid, 19, 12) == 24 and bits(cid, 11, 8) == 1  # MDT 2024-01
    h.cmd(3)
    assert h.cmd(10, h.rca_arg).value == cid  # CMD10 sends the same CID


async def test_cmd9_sends_the_csd_with_its_crc7(kind: str,
                                                make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.STBY)
    csd = h.cmd(9, h.rca_arg).value
    assert register_crc_ok(csd)
    assert bits(csd, 127, 126) == (0 if kind == "SDSC" else 1)  # CSD_STRUCTURE
    assert bits(csd, 103, 96) == 0x32  # TRAN_SPEED 25 MHz
    assert bits(csd, 76, 76) == 0  # DSR_IMP


async def test_cmd3_publishes_an_rca_and_a_repeat_publishes_a_new_one(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.IDENT)
    first = h.cmd(3)
    assert first.value == 0xB368_0500  # RCA of the real capture; ident, READY_FOR_DATA
    second = h.cmd(3)
    new_rca = second.value >> 16
    assert new_rca not in (0, 0xB368) and second.value & 0xFFFF == 0x0700  # stby
    assert h.cmd(13, 0xB368 << 16).rejected == "not_addressed"  # the old RCA is gone
    assert h.cmd(13, new_rca << 16).value == 0x700


# --- CMD6 (§4.3.10, reference §7) -----------------------------------------------------------


@pytest.mark.parametrize(("high_speed", "support", "result", "speed"),
                         [(True, 0x8003, 1, 0x5A), (False, 0x8001, 0xF, 0x32)],
                         ids=["hs_offered", "hs_not_offered"])
async def test_cmd6_query_and_switch_to_high_speed(
        high_speed: bool, support: int, result: int, speed: int,
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(high_speed=high_speed)
    await h.to_state(S.TRAN)
    query = await read_register(h, 6, 0x00FFFFF1)
    assert len(query) == 64
    assert int.from_bytes(query[12:14], "big") == support  # group 1 support
    assert query[16] & 0xF == result  # group 1: the function that would be selected
    assert (int.from_bytes(query[0:2], "big") == 0) is (result == 0xF)  # 0 mA = error
    assert bits(csd_via_cmd9(h), 103, 96) == 0x32  # a query switches nothing
    switch = await read_register(h, 6, 0x80FFFFF1)
    assert switch[16] & 0xF == result
    assert bits(csd_via_cmd9(h), 103, 96) == speed  # TRAN_SPEED
    await h.to_state(S.TRAN)  # CMD0 and a new initialisation: default speed again
    assert bits(csd_via_cmd9(h), 103, 96) == 0x32


async def test_cmd6_switch_back_to_default_speed(
        make_card: Callable[..., CardHarness]) -> None:
    """A mode-1 switch to group 1 function 0 leaves high speed (reference §7 says
    "mode-0 switch back", but mode 0 only checks)."""
    h = make_card()
    await h.to_state(S.TRAN)
    await read_register(h, 6, 0x80FFFFF1)
    assert (await read_register(h, 6, 0x00FFFFF0))[16] & 0xF == 0  # check: nothing changes
    assert bits(csd_via_cmd9(h), 103, 96) == 0x5A
    assert (await read_register(h, 6, 0x80FFFFF0))[16] & 0xF == 0
    assert bits(csd_via_cmd9(h), 103, 96) == 0x32


async def test_cmd6_linux_query_reports_group_results_and_support(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    status = await read_register(h, 6, 0x00FFFFF0)
    assert status[13] & 0x02  # Linux: HS supported
    assert status[16] == 0x00 and status[17] == 0x00  # results 0, structure version 0
    for group_bytes in (status[2:4], status[4:6], status[6:8], status[8:10], status[10:12]):
        assert group_bytes == b"\x80\x01"  # groups 2-6: functions 0 and 15


# --- CMD16 and CMD23 (§4.3.2, §4.3.3) ---------------------------------------------------------


@pytest.mark.parametrize("length", [0, 513, 1024, 0xFFFFFFFF])
async def test_cmd16_out_of_range_is_block_len_error_and_keeps_the_length(
        length: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    reply = h.cmd(16, length)
    assert reply.errors & CardStatus.BLOCK_LEN_ERROR and reply.value & CardStatus.BLOCK_LEN_ERROR
    assert h.card.state is S.TRAN
    assert len(await read_register(h, 17, 0)) == BLOCK


@pytest.mark.parametrize("length", [1, 100, 512])
async def test_cmd16_sets_the_sdsc_read_length(length: int,
                                               make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    assert not h.cmd(16, length).errors
    assert await read_register(h, 17, 0) == h.file_blocks(0)[:length]


INTERPOSED = {
    "nothing": (),
    "cmd13": ((13, "rca", False),),
    "acmd6": ((6, 0, True),),
}


@pytest.mark.parametrize("between", sorted(INTERPOSED))
async def test_cmd23_counts_only_the_next_cmd18(between: str,
                                                make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    assert h.cmd(23, 2).value == 0x900
    for index, arg, app in INTERPOSED[between]:
        value = h.rca_arg if arg == "rca" else int(arg)
        assert not (h.acmd(index, value) if app else h.cmd(index, value)).rejected
    h.cmd(18, 0)
    assert [(await h.read()).data for _ in range(2)] == [h.file_blocks(0), h.file_blocks(1)]
    if between == "nothing":
        assert h.card.state is S.TRAN  # the count ran out: data -> tran without CMD12
    else:
        assert h.card.state is S.DATA  # open-ended: until CMD12
        assert h.cmd(12).resp.value == "R1b" and h.card.state is S.TRAN


@pytest.mark.parametrize("between", sorted(INTERPOSED))
async def test_cmd23_counts_only_the_next_cmd25(between: str,
                                                make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.cmd(23, 2)
    for index, arg, app in INTERPOSED[between]:
        value = h.rca_arg if arg == "rca" else int(arg)
        (h.acmd(index, value) if app else h.cmd(index, value))
    h.cmd(25, 0)
    for data in (b"\x11" * BLOCK, b"\x22" * BLOCK):
        assert await h.write(data) is CrcStatus.ACCEPTED
    assert h.card.state is (S.TRAN if between == "nothing" else S.RCV)
    assert h.file_blocks(0, 2) == b"\x11" * BLOCK + b"\x22" * BLOCK


async def test_cmd23_is_illegal_without_scr_support(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(cmd23=False)
    await h.to_state(S.TRAN)
    assert h.cmd(23, 2).rejected == "illegal"
    scr = await read_register(h, 51, app=True)
    assert not scr[3] & 0x02  # SCR bit 33 (CMD_SUPPORT: CMD23)


# --- write protection, class 6 (§4.3.6) --------------------------------------------------------

GROUP = 8 * MIB  # SDSC CSD: SECTOR_SIZE 128 blocks x WP_GRP_SIZE 128 sectors


async def test_cmd28_protects_a_group_cmd30_reports_it_cmd29_clears_it(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDSC")
    await h.to_state(S.TRAN)
    reply = h.cmd(28, GROUP + 5 * BLOCK)  # any address inside group 1
    assert reply.resp.value == "R1b" and not reply.errors and h.card.state is S.TRAN
    assert await read_register(h, 30, 0) == (0b10).to_bytes(4, "big")  # group 0 in bit 0
    assert await read_register(h, 30, GROUP) == (0b1).to_bytes(4, "big")
    blocked = h.cmd(24, GROUP)
    assert blocked.errors & CardStatus.WP_VIOLATION and h.card.state is S.TRAN
    h.cmd(24, 0)  # group 0 is writable
    assert await h.write(b"\x33" * BLOCK) is CrcStatus.ACCEPTED
    h.cmd(29, GROUP)
    assert await read_register(h, 30, 0) == bytes(4)
    h.cmd(24, GROUP)
    assert await h.write(b"\x44" * BLOCK) is CrcStatus.ACCEPTED
    assert h.file_blocks(GROUP // BLOCK) == b"\x44" * BLOCK


async def test_multiple_block_write_into_a_protected_group_fails(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDSC")
    await h.to_state(S.TRAN)
    h.cmd(28, GROUP)
    first = GROUP // BLOCK - 1  # the last block of group 0, then group 1
    h.cmd(25, first * BLOCK)
    assert await h.write(b"\x55" * BLOCK) is CrcStatus.ACCEPTED
    assert await h.write(b"\x66" * BLOCK) is CrcStatus.WRITE_ERROR
    assert h.cmd(12).value & CardStatus.WP_VIOLATION  # type X: in the next response
    assert h.file_blocks(first, 2) == b"\x55" * BLOCK + bytes(BLOCK)


@pytest.mark.parametrize("index", [28, 29, 30])
@pytest.mark.parametrize("kind", ["SDHC", "SDXC"])
async def test_write_protect_groups_are_illegal_on_high_capacity_cards(
        kind: str, index: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    assert h.cmd(index, 0).rejected == "illegal"
    assert h.status() & CardStatus.ILLEGAL_COMMAND


# --- erase, class 5 (§4.3.5, reference §9 "Erase") ----------------------------------------


@pytest.mark.parametrize("erased", [0x00, 0xFF])
@pytest.mark.parametrize("kind", ["SDSC", "SDHC"])
async def test_erase_fills_the_range_with_the_scr_erased_value(
        kind: str, erased: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind, erased_byte=erased)
    await h.to_state(S.TRAN)
    scr = await read_register(h, 51, app=True)
    assert scr[1] >> 7 == (erased == 0xFF)  # DATA_STAT_AFTER_ERASE, SCR bit 55
    before = h.file_blocks(0, 8)
    assert not h.cmd(32, h.addr(2)).errors
    assert not h.cmd(33, h.addr(4)).errors
    reply = h.cmd(38, 0)
    assert reply.resp.value == "R1b" and not reply.errors and reply.busy
    await h.card.wait_ready()
    assert h.card.state is S.TRAN
    assert h.file_blocks(0, 8) == (before[:2 * BLOCK] + bytes([erased]) * 3 * BLOCK
                                   + before[5 * BLOCK:])
    assert await read_register(h, 17, h.addr(3)) == bytes([erased]) * BLOCK


ERASE_ORDER_ERRORS = {
    "cmd38_alone": ((38, 0),),
    "cmd33_first": ((33, 0),),
    "cmd38_without_end": ((32, 0), (38, 0)),
}


@pytest.mark.parametrize("sequence", sorted(ERASE_ORDER_ERRORS))
async def test_erase_commands_out_of_order_are_erase_seq_error(
        sequence: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    before = h.file_blocks(0, 2)
    *steps, (index, arg) = ERASE_ORDER_ERRORS[sequence]
    for step in steps:
        assert not h.cmd(*step).errors
    reply = h.cmd(index, arg)
    assert reply.errors & CardStatus.ERASE_SEQ_ERROR and h.card.state is S.TRAN
    assert h.cmd(38, 0).errors & CardStatus.ERASE_SEQ_ERROR  # the whole sequence was reset
    await h.card.wait_ready()
    assert h.file_blocks(0, 2) == before


async def test_another_command_between_erase_steps_is_erase_reset(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.cmd(32, 0)
    reply = h.cmd(16, BLOCK)  # reported in the interrupting command's own response
    assert reply.value & CardStatus.ERASE_RESET and not reply.errors & ~CardStatus.ERASE_RESET
    assert h.cmd(33, 0).errors & CardStatus.ERASE_SEQ_ERROR
    assert not h.cmd(13, h.rca_arg).value & CardStatus.ERASE_RESET  # cleared once sent


async def test_cmd13_between_erase_steps_keeps_the_sequence(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.cmd(32, 0)
    assert not h.cmd(13, h.rca_arg).value & CardStatus.ERASE_RESET
    h.cmd(33, 0)
    assert not h.cmd(13, h.rca_arg).value & CardStatus.ERASE_RESET
    assert not h.cmd(38, 0).errors
    await h.card.wait_ready()
    assert h.file_blocks(0) == bytes(BLOCK)


async def test_erase_end_before_start_is_erase_param(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.cmd(32, 4 * BLOCK)
    h.cmd(33, 2 * BLOCK)
    assert h.cmd(38, 0).errors & CardStatus.ERASE_PARAM and h.card.state is S.TRAN


async def test_discard_keeps_the_old_data(make_card: Callable[..., CardHarness]) -> None:
    """CMD38 argument 1 (Linux SD_DISCARD_ARG): the data may stay; the model keeps it."""
    h = make_card()
    await h.to_state(S.TRAN)
    before = h.file_blocks(0, 4)
    h.cmd(32, 0)
    h.cmd(33, 3 * BLOCK)
    reply = h.cmd(38, 1)
    assert reply.resp.value == "R1b" and not reply.errors
    await h.card.wait_ready()
    assert h.card.state is S.TRAN and h.file_blocks(0, 4) == before


# --- CMD42 lock/unlock (§4.3.7) --------------------------------------------------------------


async def lock_block(h: CardHarness, flags: int, password: bytes = PASSWORD) -> int:
    """Send a CMD42 block (CMD16 sets its length); the status seen afterwards."""
    block = bytes([flags, len(password)]) + password if flags != 0x08 else b"\x08"
    assert not h.cmd(16, len(block)).errors
    assert h.cmd(42).state_after is S.RCV
    assert await h.write(block) is CrcStatus.ACCEPTED
    return h.status()


SET_PWD, CLR_PWD, LOCK, UNLOCK, ERASE = 0x01, 0x02, 0x04, 0x00, 0x08


async def test_password_lock_and_unlock(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    status = await lock_block(h, SET_PWD)
    assert not status & (CardStatus.CARD_IS_LOCKED | CardStatus.LOCK_UNLOCK_FAILED)
    assert await lock_block(h, LOCK) & CardStatus.CARD_IS_LOCKED
    assert h.cmd(17, 0).rejected == "illegal"  # a locked card refuses data commands
    assert not await lock_block(h, UNLOCK) & CardStatus.CARD_IS_LOCKED
    assert not h.cmd(17, 0).rejected
    await h.read()
    assert not await lock_block(h, CLR_PWD) & CardStatus.LOCK_UNLOCK_FAILED
    assert await lock_block(h, LOCK) & CardStatus.LOCK_UNLOCK_FAILED  # no password any more


@pytest.mark.parametrize("flags", [LOCK, UNLOCK, CLR_PWD])
async def test_wrong_password_is_lock_unlock_failed(
        flags: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    await lock_block(h, SET_PWD | LOCK)
    status = await lock_block(h, flags, b"wrong")
    assert status & CardStatus.LOCK_UNLOCK_FAILED and status & CardStatus.CARD_IS_LOCKED


async def test_force_erase_clears_the_data_and_unlocks(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(size=1 * MIB)
    await h.to_state(S.TRAN)
    await lock_block(h, SET_PWD | LOCK)
    status = await lock_block(h, ERASE)
    assert not status & (CardStatus.CARD_IS_LOCKED | CardStatus.LOCK_UNLOCK_FAILED)
    assert h.file_blocks(0, 2048) == bytes(MIB)
    assert await lock_block(h, LOCK) & CardStatus.LOCK_UNLOCK_FAILED  # password gone


async def test_force_erase_of_an_unlocked_card_fails(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(size=1 * MIB)
    await h.to_state(S.TRAN)
    before = h.file_blocks(0, 4)
    assert await lock_block(h, ERASE) & CardStatus.LOCK_UNLOCK_FAILED
    assert h.file_blocks(0, 4) == before


# --- application commands (§4.3.9, reference §4.2) -----------------------------------------


@pytest.mark.parametrize(("arg", "width", "field"), [(2, 4, 0b10), (0, 1, 0b00)])
async def test_acmd6_sets_the_bus_width_shown_in_acmd13(
        arg: int, width: int, field: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.acmd(6, 2)
    reply = h.acmd(6, arg)
    assert reply.value == 0x920 and h.card.bus_width == width
    status = await read_register(h, 13, app=True)
    assert len(status) == 64 and status[0] >> 6 == field  # DAT_BUS_WIDTH, bits 511:510


async def test_acmd22_counts_the_blocks_of_the_last_write(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.cmd(25, 0)
    for n in range(3):
        await h.write(bytes([n]) * BLOCK)
    h.cmd(12)
    await h.card.wait_ready()
    assert await read_register(h, 22, app=True) == (3).to_bytes(4, "big")


async def test_acmd23_is_accepted_in_tran(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    reply = h.acmd(23, 16)
    assert reply.value == 0x920 and not reply.rejected and h.card.state is S.TRAN


@pytest.mark.parametrize(("kind", "security"), [("SDSC", 2), ("SDHC", 3), ("SDXC", 4)])
async def test_acmd51_sends_the_scr(kind: str, security: int,
                                    make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    scr = int.from_bytes(await read_register(h, 51, app=True), "big")
    assert bits(scr, 63, 60) == 0  # SCR_STRUCTURE (Linux rejects others)
    assert bits(scr, 59, 56) == 2 and bits(scr, 47, 47) == 1  # SD_SPEC 2, SPEC3: 3.0x
    assert bits(scr, 55, 55) == 0  # DATA_STAT_AFTER_ERASE: erased reads 0x00
    assert bits(scr, 54, 52) == security
    assert bits(scr, 51, 48) == 0b0101  # 1- and 4-bit
    assert bits(scr, 33, 32) == 0b11  # CMD23 and CMD20 supported
    assert bits(scr, 31, 0) == 0


# --- CMD27 PROGRAM_CSD (§4.3.4; reference §6.3 writable fields) ----------------------------

TMP_WP, PERM_WP, COPY = 1 << 12, 1 << 13, 1 << 14


async def program_csd(h: CardHarness, csd: int) -> int:
    """CMD27 with a 16-byte CSD image; the status seen afterwards."""
    assert h.cmd(27).state_after is S.RCV
    assert await h.write(with_crc(csd).to_bytes(16, "big")) is CrcStatus.ACCEPTED
    assert h.card.state is S.TRAN
    return h.status()


async def test_cmd27_tmp_write_protect_protects_the_card(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    csd = csd_via_cmd9(h)
    assert not await program_csd(h, csd | TMP_WP) & CardStatus.CSD_OVERWRITE
    assert csd_via_cmd9(h) & TMP_WP
    assert h.cmd(24, 0).errors & CardStatus.WP_VIOLATION
    assert not await program_csd(h, csd) & CardStatus.CSD_OVERWRITE  # TMP_WP is r/w
    h.cmd(24, 0)
    assert await h.write(b"\x77" * BLOCK) is CrcStatus.ACCEPTED


async def test_cmd27_after_the_high_speed_switch_accepts_the_csd_read_back(
        make_card: Callable[..., CardHarness]) -> None:
    """The CSD read with CMD9 shows TRAN_SPEED 0x5A after the HS switch (§4.3.10); writing
    that image back is no attempt to change a read-only field."""
    h = make_card()
    await h.to_state(S.TRAN)
    await read_register(h, 6, 0x80FFFFF1)
    csd = csd_via_cmd9(h)
    assert bits(csd, 103, 96) == 0x5A
    assert not await program_csd(h, csd | TMP_WP) & CardStatus.CSD_OVERWRITE
    assert csd_via_cmd9(h) == with_crc(csd | TMP_WP)


@pytest.mark.parametrize(("field", "msb", "lsb", "value"),
                         [("TAAC", 119, 112, 0x0E), ("C_SIZE", 73, 62, 5),
                          ("READ_BL_LEN", 83, 80, 10), ("CSD_STRUCTURE", 127, 126, 1)])
async def test_cmd27_changing_a_read_only_field_is_csd_overwrite(
        field: str, msb: int, lsb: int, value: int,
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    csd = csd_via_cmd9(h)
    mask = ((1 << (msb - lsb + 1)) - 1) << lsb
    assert await program_csd(h, (csd & ~mask) | value << lsb | TMP_WP) & CardStatus.CSD_OVERWRITE
    assert csd_via_cmd9(h) == csd  # nothing changed, not even TMP_WRITE_PROTECT


@pytest.mark.parametrize(("bit", "name"), [(COPY, "COPY"), (PERM_WP, "PERM_WRITE_PROTECT")])
async def test_cmd27_one_time_bits_cannot_be_cleared(
        bit: int, name: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    csd = csd_via_cmd9(h)
    assert not await program_csd(h, csd | bit) & CardStatus.CSD_OVERWRITE
    assert await program_csd(h, csd) & CardStatus.CSD_OVERWRITE
    assert csd_via_cmd9(h) & bit


# --- the rest of class 0 and the unsupported UHS-I commands ---------------------------------


async def test_cmd4_is_illegal_without_dsr_imp(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.STBY)
    assert h.cmd(4, 0x12340000).rejected == "illegal"
    assert h.status() & CardStatus.ILLEGAL_COMMAND


async def test_cmd4_sets_the_dsr_when_dsr_imp(make_card: Callable[..., CardHarness]) -> None:
    h = make_card(dsr_imp=True)
    await h.to_state(S.STBY)
    assert bits(h.cmd(9, h.rca_arg).value, 76, 76) == 1  # CSD DSR_IMP
    assert h.card.dsr == 0x0404  # §5.5 default
    reply = h.cmd(4, 0x12340000)
    assert reply.resp.value == "none" and not reply.rejected and h.card.state is S.STBY
    assert h.card.dsr == 0x1234


@pytest.mark.parametrize(("index", "state"), [(11, S.READY), (19, S.TRAN)],
                         ids=["cmd11_voltage_switch", "cmd19_tuning"])
async def test_uhs_commands_are_illegal(index: int, state: CardState,
                                        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(state)
    assert h.cmd(index, 0).rejected == "illegal" and h.card.state is state


async def test_cmd20_is_accepted_with_busy(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    reply = h.cmd(20, 0)
    assert reply.resp.value == "R1b" and reply.busy and reply.value == 0x900
    await h.card.wait_ready()
    assert h.card.state is S.TRAN


async def test_cmd15_makes_the_card_deaf_until_a_power_cycle(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    assert h.cmd(15, h.rca_arg).resp.value == "none"
    for index, arg in ((0, 0), (8, 0x1AA), (13, h.rca_arg), (55, 0), (7, h.rca_arg)):
        assert h.cmd(index, arg).rejected == "no_response"
        assert h.card.state is S.INA
    h.card.power_off()
    h.card.power_on()
    assert h.card.state is S.IDLE and h.cmd(8, 0x1AA).value == 0x1AA


async def test_cmd0_resets_rca_bus_width_speed_and_block_length(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    old_rca = h.card.rca
    h.acmd(6, 2)
    await read_register(h, 6, 0x80FFFFF1)
    h.cmd(16, 100)
    h.cmd(0)
    assert h.card.state is S.IDLE and h.card.rca == 0
    await h.to_state(S.TRAN)
    assert h.card.rca == old_rca  # the same first RCA is published again
    assert (await read_register(h, 13, app=True))[0] >> 6 == 0  # 1-bit bus
    assert bits(csd_via_cmd9(h), 103, 96) == 0x32  # default speed
    assert len(await read_register(h, 17, 0)) == BLOCK  # block length 512


async def test_register_values_are_what_the_card_would_send(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDHC")
    await h.to_state(CardState.TRAN)
    values = h.card.register_values()
    h.cmd(7, 0)  # to stby, where CMD9/CMD10 are legal
    assert h.cmd(9, h.rca_arg).value == values["CSD"]
    assert h.cmd(10, h.rca_arg).value == values["CID"]
    h.cmd(7, h.rca_arg)
    status = h.card.register_values()["CARD_STATUS"]
    assert h.cmd(13, h.rca_arg).value == status
    assert len(values["SD_STATUS"]) == 64 and values["OCR"] >> 31 == 1
