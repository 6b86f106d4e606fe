"""Every command in every state: the §4.8 state transition matrix (reference §4.3), the
status semantics of §4.10.1 (reference §5.1 "exact semantics") and the locked card.

The matrix below is transcribed from the reference, not read from ``sdmodel.commands``,
so the command table is checked against the spec instead of against itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from sdmodel.commands import SECURITY_APP_INDEXES
from sdmodel.registers import CardStatus
from sdmodel.states import CardState

if TYPE_CHECKING:
    from conftest import CardHarness

S = CardState
ALL = tuple(CardState)
ALL_BUT_INA = tuple(s for s in CardState if s is not S.INA)
ADDRESSED = (S.STBY, S.TRAN, S.DATA, S.RCV, S.PRG, S.DIS)  # CMD13/CMD15 states
OWN, OTHER, ZERO = "own RCA", "other RCA", "RCA 0"
ILLEGAL = CardStatus.ILLEGAL_COMMAND
CRC_ERROR = CardStatus.COM_CRC_ERROR
APP_CMD = CardStatus.APP_CMD
# §4.8 "operation complete": a prg whose work needs no storage (CMD20/28/29, CMD12 with
# nothing left to program) lasts only its R1b busy (CardTiming.r1b_clocks, shorter than the
# N_RC gap before the next command), so the card is already in the state that follows.
OPERATION_COMPLETE = {S.PRG: S.TRAN}


@dataclass(frozen=True)
class Row:
    """One row of the matrix: a command, its response type (reference §4.1/§4.2) and the
    states that accept it, each with the state it leads to; every other state is "-"."""

    label: str
    index: int
    resp: str  # "none", "R1", "R1b", "R2", "R3", "R6", "R7"
    legal: dict[CardState, CardState]
    arg: int | str = 0  # a number, or OWN / OTHER / ZERO for an RCA argument
    app: bool = False
    # Commands sent first when the card is in tran, so the row's command does its normal
    # job there (an erase needs its range; CMD33 needs CMD32).
    prelude: tuple[tuple[int, int], ...] = ()
    options: dict[str, object] = field(default_factory=dict)


def _to(target: CardState, *states: CardState) -> dict[CardState, CardState]:
    return dict.fromkeys(states, target)


def _same(*states: CardState) -> dict[CardState, CardState]:
    return {s: s for s in states}


ERASE_RANGE = ((32, 0), (33, 0))  # SDSC byte address 0: block 0
# §4.8 matrix (reference §4.3); response types from reference §4.1 / §4.2.
MATRIX: tuple[Row, ...] = (
    Row("cmd0", 0, "none", _to(S.IDLE, *ALL_BUT_INA)),
    Row("cmd2", 2, "R2", {S.READY: S.IDENT}),
    Row("cmd3", 3, "R6", {S.IDENT: S.STBY, S.STBY: S.STBY}),
    Row("cmd4", 4, "none", _same(S.STBY), arg=0x04040000, options={"dsr_imp": True}),
    Row("cmd6", 6, "R1", {S.TRAN: S.DATA}, arg=0x00FFFFF1),
    Row("cmd7_own_rca", 7, "R1b", {S.STBY: S.TRAN, S.DIS: S.PRG}, arg=OWN),
    # A card deselected by another RCA (or 0) changes state but does not answer.
    Row("cmd7_other_rca", 7, "none",
        {S.STBY: S.STBY, S.TRAN: S.STBY, S.DATA: S.STBY, S.PRG: S.DIS}, arg=OTHER),
    Row("cmd7_rca0", 7, "none",
        {S.STBY: S.STBY, S.TRAN: S.STBY, S.DATA: S.STBY, S.PRG: S.DIS}, arg=ZERO),
    Row("cmd8", 8, "R7", _same(S.IDLE), arg=0x1AA),
    Row("cmd9", 9, "R2", _same(S.STBY), arg=OWN),
    Row("cmd10", 10, "R2", _same(S.STBY), arg=OWN),
    # ready -> ready only after an R3 with S18A = 1; the model offers no UHS-I (no S18A).
    Row("cmd11", 11, "R1", {}),
    Row("cmd12", 12, "R1b", {S.DATA: S.TRAN, S.RCV: S.PRG}),
    Row("cmd13", 13, "R1", _same(*ADDRESSED), arg=OWN),
    Row("cmd15", 15, "none", _to(S.INA, *ADDRESSED), arg=OWN),
    Row("cmd16", 16, "R1", _same(S.TRAN), arg=512),
    Row("cmd17", 17, "R1", {S.TRAN: S.DATA}),
    Row("cmd18", 18, "R1", {S.TRAN: S.DATA}),
    Row("cmd19", 19, "R1", {}),  # tuning: SDR50/SDR104 only, not offered
    Row("cmd20", 20, "R1b", {S.TRAN: S.PRG}),
    Row("cmd23", 23, "R1", _same(S.TRAN), arg=4),
    Row("cmd24", 24, "R1", {S.TRAN: S.RCV}),
    Row("cmd25", 25, "R1", {S.TRAN: S.RCV}),
    Row("cmd27", 27, "R1", {S.TRAN: S.RCV}),
    Row("cmd28", 28, "R1b", {S.TRAN: S.PRG}),
    Row("cmd29", 29, "R1b", {S.TRAN: S.PRG}),
    Row("cmd30", 30, "R1", {S.TRAN: S.DATA}),
    Row("cmd32", 32, "R1", _same(S.TRAN)),
    Row("cmd33", 33, "R1", _same(S.TRAN), prelude=ERASE_RANGE[:1]),
    Row("cmd38", 38, "R1b", {S.TRAN: S.PRG}, prelude=ERASE_RANGE),
    Row("cmd42", 42, "R1", {S.TRAN: S.RCV}),
    Row("cmd55", 55, "R1", _same(S.IDLE, *ADDRESSED), arg=OWN),
    Row("cmd56_rd", 56, "R1", {S.TRAN: S.DATA}, arg=1),
    Row("cmd56_wr", 56, "R1", {S.TRAN: S.RCV}, arg=0),
    Row("acmd6", 6, "R1", _same(S.TRAN), arg=2, app=True),
    Row("acmd13", 13, "R1", {S.TRAN: S.DATA}, app=True),
    Row("acmd22", 22, "R1", {S.TRAN: S.DATA}, app=True),
    Row("acmd23", 23, "R1", _same(S.TRAN), arg=8, app=True),
    Row("acmd41", 41, "R3", {S.IDLE: S.READY}, arg=0x40300000, app=True),
    Row("acmd42", 42, "R1", _same(S.TRAN), arg=1, app=True),
    Row("acmd51", 51, "R1", {S.TRAN: S.DATA}, app=True),
    # Undefined in SD mode: SDIO probes (CMD5, CMD52), the MMC probe (CMD1), SPI-only
    # CMD58/59, ACMD41 without CMD55, reserved indexes.
    *(Row(f"cmd{i}", i, "none", {}) for i in (1, 5, 14, 21, 22, 26, 31, 41, 52, 58, 59, 63)),
    # SD security ACMDs: illegal even where the normal command of that index is legal.
    *(Row(f"acmd{i}", i, "none", {}, app=True) for i in (18, 25, 38, 43)),
)


def _case_id(row: Row, state: CardState) -> str:
    target = row.legal.get(state)
    if target is None:
        return f"{row.label}_in_{state.label}_is_illegal"
    return f"{row.label}_in_{state.label}_goes_to_{target.label}"


CASES = [pytest.param(row, state, id=_case_id(row, state)) for row in MATRIX for state in ALL]


def _arg(row: Row, h: CardHarness) -> int:
    if row.arg == OWN:
        return h.rca_arg
    if row.arg == OTHER:
        return ((h.card.rca ^ 0x5A5A) or 1) << 16
    if row.arg == ZERO:
        return 0
    assert isinstance(row.arg, int)
    return row.arg


def _current_state(status: int) -> CardState:
    return CardState((status >> 9) & 0xF)


@pytest.mark.parametrize(("row", "state"), CASES)
async def test_matrix(row: Row, state: CardState,
                      make_card: Callable[..., CardHarness]) -> None:
    # An SDSC card: class 6 (CMD28-30) exists only there. ACMD41 is ready at the first poll.
    h = make_card("SDSC", acmd41_busy_polls=0, **row.options)
    await h.to_state(state)
    if state is S.TRAN:
        for index, arg in row.prelude:
            assert not h.cmd(index, arg).errors
    if row.app:
        h.cmd(55, h.rca_arg)
    reply = h.cmd(row.index, _arg(row, h))
    expected = row.legal.get(state)

    if state is S.INA:  # ina ignores everything until a power cycle
        assert (reply.resp.value, reply.rejected, h.card.state) == ("none", "no_response", S.INA)
    elif expected is None:
        # §4.6.1: no response, no state change, ILLEGAL_COMMAND in the next response.
        assert reply.resp.value == "none"
        assert reply.rejected == "illegal"
        assert h.card.state is state
        assert h.status() & ILLEGAL
        assert not h.status() & ILLEGAL  # cleared once it was sent
    else:
        assert reply.resp.value == row.resp
        assert reply.rejected == ("not_addressed" if row.arg in (OTHER, ZERO) else "")
        if row.resp in ("R1", "R1b"):
            assert _current_state(reply.value) is state  # the state when it was received
        if expected in OPERATION_COMPLETE and not h.card.busy:
            assert reply.busy
            expected = OPERATION_COMPLETE[expected]
        assert h.card.state is expected
    await h.settle()


# --- CURRENT_STATE, CRC errors and APP_CMD (reference §5.1) ---------------------------------


async def test_cmd3_r6_reports_ident_and_cmd7_r1b_reports_stby(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.IDENT)
    r6 = h.cmd(3)
    assert r6.value & 0xFFFF == 0x0500  # ident, READY_FOR_DATA (real capture)
    r1b = h.cmd(7, h.rca_arg)
    assert r1b.value == 0x700  # stby, READY_FOR_DATA (real capture)
    assert h.card.state is S.TRAN
    assert _current_state(h.cmd(13, h.rca_arg).value) is S.TRAN


@pytest.mark.parametrize("state", [S.IDLE, S.STBY, S.TRAN, S.DATA, S.RCV],
                         ids=lambda s: s.label)
async def test_bad_crc7_is_ignored_and_reported_once(
        state: CardState, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(state)
    # CMD0 would leave every state; with a bad CRC it must do nothing.
    reply = h.cmd(0, 0, crc_ok=False)
    assert (reply.resp.value, reply.rejected) == ("none", "crc")
    assert h.card.state is state
    first = h.status()
    assert first & CRC_ERROR
    assert not first & ILLEGAL
    assert not h.status() & CRC_ERROR


async def test_cmd55_and_the_acmd_report_app_cmd(make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    assert h.cmd(55, 0).value == 0x120  # idle, READY_FOR_DATA, APP_CMD (real capture)
    assert h.cmd(41, 0).value == 0x00FF8000  # the ACMD41 inquiry: an R3
    await h.to_state(S.TRAN)
    assert h.cmd(55, h.rca_arg).value == 0x920  # tran (real capture)
    reply = h.cmd(51, 0)
    assert reply.app and reply.value == 0x920
    assert len((await h.read()).data or b"") == 8  # the SCR; then data -> tran
    assert h.cmd(13, h.rca_arg).value == 0x900  # APP_CMD cleared afterwards


@pytest.mark.parametrize(("index", "arg", "next_state"),
                         [(17, 0, S.DATA), (16, 512, S.TRAN), (55, "rca", S.TRAN)],
                         ids=["acmd17_is_cmd17", "acmd16_is_cmd16", "acmd55_is_cmd55"])
async def test_undefined_acmd_index_runs_the_normal_command(
        index: int, arg: int | str, next_state: CardState,
        make_card: Callable[..., CardHarness]) -> None:
    """§4.3.9: after CMD55 an index without an ACMD is the normal command (QEMU does the
    same; PLS Table 4-30: ACMD55 is CMD55). It is not taken as an ACMD: no APP_CMD."""
    h = make_card()
    await h.to_state(S.TRAN)
    reply = h.acmd(index, h.rca_arg if arg == "rca" else int(arg))
    assert reply.resp.value == "R1" and not reply.rejected and not reply.app
    assert reply.value == 0x900 | (APP_CMD if index == 55 else 0)  # ACMD55 expects again
    assert h.card.state is next_state


@pytest.mark.parametrize("index", sorted(SECURITY_APP_INDEXES))
async def test_security_acmd_is_illegal_in_tran(index: int,
                                                make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    reply = h.acmd(index, 0)
    assert reply.rejected == "illegal" and h.card.state is S.TRAN
    assert h.status() & ILLEGAL


@pytest.mark.parametrize("probe", [5, 52, 1], ids=["cmd5_sdio", "cmd52_sdio", "cmd1_mmc"])
async def test_probe_command_leaves_illegal_command_for_the_next_cmd55(
        probe: int, make_card: Callable[..., CardHarness]) -> None:
    """Reference §5.1 item 6: the bit shows in the CMD55 before ACMD41 (Linux probes)."""
    h = make_card()
    h.cmd(0)
    h.cmd(8, 0x1AA)
    assert h.cmd(probe, 0).resp.value == "none"
    assert h.cmd(55, 0).value == 0x120 | ILLEGAL
    assert h.cmd(41, 0).value == 0x00FF8000


async def test_acmd41_inquiry_does_not_start_initialisation(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(acmd41_busy_polls=0)
    for _ in range(3):
        reply = h.acmd(41, 0)
        assert reply.value == 0x00FF8000 and h.card.state is S.IDLE  # busy, no CCS
    reply = h.acmd(41, 0x00300000)  # a window: initialisation starts, ready at once
    assert reply.value == 0x80FF8000 and h.card.state is S.READY


@pytest.mark.parametrize("kind", ["SDHC", "SDXC"])
async def test_hcs0_on_a_high_capacity_card_never_gets_ready(
        kind: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    h.cmd(8, 0x1AA)
    for _ in range(20):
        reply = h.acmd(41, 0x00300000)
        assert reply.value == 0x00FF8000 and h.card.state is S.IDLE


async def test_sdsc_ignores_hcs(make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDSC")
    assert h.init(hcs=False).value == 0x80FF8000  # ready, CCS = 0


@pytest.mark.parametrize("vhs", [0b0000, 0b0010, 0b0100, 0b1000])
async def test_cmd8_with_an_unsupported_vhs_gets_no_response(
        vhs: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    reply = h.cmd(8, vhs << 8 | 0xAA)
    assert reply.resp.value == "none" and h.card.state is S.IDLE
    assert h.cmd(8, 0x1AA).value == 0x1AA  # the supported range is answered


async def test_acmd41_with_no_common_voltage_sends_the_card_to_ina(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    h.acmd(41, 0x00000080)  # low-voltage range only (OCR bit 7)
    assert h.card.state is S.INA
    assert h.cmd(0).rejected == "no_response"


# --- the locked card (§4.3.7.5, reference §4.3) ---------------------------------------------

PASSWORD = b"sdscope"


async def _locked_in_tran(h: CardHarness) -> None:
    await h.to_state(S.TRAN)
    block = bytes([0b0101, len(PASSWORD)]) + PASSWORD  # SET_PWD + LOCK_UNLOCK
    h.cmd(16, len(block))
    h.cmd(42)
    await h.write(block)
    assert h.status() & CardStatus.CARD_IS_LOCKED


LOCKED_CASES = [
    # (index, app, arg, accepted); "rca" = the card's own RCA
    pytest.param(13, False, "rca", True, id="cmd13_class0_is_accepted"),
    pytest.param(16, False, 512, True, id="cmd16_is_accepted"),
    pytest.param(42, False, 0, True, id="cmd42_class7_is_accepted"),
    pytest.param(55, False, "rca", True, id="cmd55_is_accepted"),
    pytest.param(17, False, 0, False, id="cmd17_is_illegal"),
    pytest.param(18, False, 0, False, id="cmd18_is_illegal"),
    pytest.param(24, False, 0, False, id="cmd24_is_illegal"),
    pytest.param(6, False, 0x00FFFFF1, False, id="cmd6_is_illegal"),
    pytest.param(23, False, 1, False, id="cmd23_is_illegal"),
    pytest.param(32, False, 0, False, id="cmd32_is_illegal"),
    pytest.param(6, True, 2, False, id="acmd6_is_illegal"),
    pytest.param(13, True, 0, False, id="acmd13_is_illegal"),
    pytest.param(42, True, 1, False, id="acmd42_is_illegal"),
    pytest.param(51, True, 0, False, id="acmd51_is_illegal"),
]


@pytest.mark.parametrize(("index", "app", "arg", "accepted"), LOCKED_CASES)
async def test_locked_card_accepts_only_class_0_7_cmd16_and_cmd55(
        index: int, app: bool, arg: int | str, accepted: bool,
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await _locked_in_tran(h)
    value = h.rca_arg if arg == "rca" else int(arg)
    reply = h.acmd(index, value) if app else h.cmd(index, value)
    if accepted:
        assert not reply.rejected and reply.value & CardStatus.CARD_IS_LOCKED
    else:
        assert reply.rejected == "illegal" and h.card.state is S.TRAN
        assert h.status() & ILLEGAL


async def test_locked_card_still_initialises(make_card: Callable[..., CardHarness]) -> None:
    """ACMD41 (and CMD55 before it) stay legal: a locked card powers up locked."""
    h = make_card()
    await _locked_in_tran(h)
    h.card.power_off()
    h.card.power_on()
    await h.to_state(S.STBY)  # CMD0, CMD8, CMD55 + ACMD41, CMD2, CMD3 all accepted
    assert h.status() & CardStatus.CARD_IS_LOCKED


# --- "operation complete" (first row of the §4.8 matrix) -----------------------------------


async def test_write_goes_rcv_prg_tran_when_programming_ends(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.storage.faults.hang()
    h.cmd(24, 0)
    assert h.card.state is S.RCV
    h.card.accept_block(bytes(512))
    assert h.card.state is S.PRG and h.card.busy
    await h.settle()
    assert h.card.state is S.TRAN


async def test_programming_that_ends_in_dis_leaves_the_card_in_stby(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.DIS)
    await h.settle()
    assert h.card.state is S.STBY
    assert _current_state(h.status()) is S.STBY


async def test_reselecting_a_card_in_dis_returns_it_to_prg_then_tran(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.DIS)
    reply = h.cmd(7, h.rca_arg)
    assert reply.value & 0x1E00 == S.DIS << 9 and h.card.state is S.PRG
    await h.settle()
    assert h.card.state is S.TRAN
