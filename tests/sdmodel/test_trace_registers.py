"""The card registers a trace carries: R3 OCR, R2 CID/CSD, SCR and SD Status blocks, and
the CURRENT_STATE of the newest R1 (§4.9, §4.10.1), from the model and from real captures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sdmodel.decode import decode_capture
from sdmodel.registers import CARD_STATUS
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.states import CardState
from sdmodel.tokens import CommandToken, ResponseToken
from sdmodel.trace_registers import registers_seen

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(),
                                    reason=f"real captures not found at {CAPTURES}")
STATE = CARD_STATUS.field("CURRENT_STATE")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    image = tmp_path_factory.mktemp("card") / "card.img"
    with image.open("wb") as f:
        f.truncate(64 << 20)
    sim = Simulator(image, SimOptions())

    async def run() -> None:
        await sim.run("init; read 0 1")
        await sim.aclose()

    asyncio.run(run())
    return sim


def test_the_model_trace_carries_the_ocr_cid_and_scr_the_card_holds(
        simulated: Simulator) -> None:
    seen = registers_seen(simulated.trace)
    card = simulated.card.register_values()
    assert seen.values["OCR"] == card["OCR"]
    assert seen.values["CID"] == card["CID"]
    assert int.from_bytes(seen.values["SCR"], "big") == card["SCR"]  # type: ignore[arg-type]
    assert seen.state is CardState.TRAN  # CMD17's R1: received in tran


def test_the_csd_is_the_one_cmd9_read_before_high_speed(simulated: Simulator) -> None:
    seen = registers_seen(simulated.trace)
    cmd9_r2 = next(t for t in simulated.trace
                   if isinstance(t, ResponseToken) and t.type == "R2" and t.for_index == 9)
    assert seen.values["CSD"] == cmd9_r2.value
    assert seen.times["CSD"] == cmd9_r2.start


def test_a_response_with_a_bad_crc_is_not_believed() -> None:
    tokens = [CommandToken(0, 48, index=13), ResponseToken(60, 108, type="R1", index=13,
                                                           value=4 << 9, crc_ok=False)]
    seen = registers_seen(tokens)
    assert seen.values == {} and seen.state is None


def test_a_reserved_current_state_is_no_state() -> None:
    status = STATE.put(0, 12)  # 12..14 are reserved in §4.10.1
    seen = registers_seen([CommandToken(0, 48, index=13),
                           ResponseToken(60, 108, type="R1", index=13, value=status)])
    assert seen.values["CARD_STATUS"] == status and seen.state is None


def test_an_r6_reports_the_state_in_its_status_bits() -> None:
    r6 = (0x1234 << 16) | (CardState.IDENT << 9)  # §4.9.5: bits 12:9 as in R1
    seen = registers_seen([CommandToken(0, 48, index=3),
                           ResponseToken(60, 108, type="R6", index=3, value=r6)])
    assert seen.state is CardState.IDENT


@needs_captures
@pytest.mark.parametrize(("capture", "register", "value"), [
    ("sd_mode/cmd2_r2.sr", "CID", 0x0941504146534449102678067B008775),
    ("sd_mode/cmd55_r1_acmd41_r3.sr", "OCR", 0x00FF8000),
])
def test_real_captures_carry_their_registers(capture: str, register: str, value: int) -> None:
    assert registers_seen(decode_capture(CAPTURES / capture)).values[register] == value


@needs_captures
def test_the_sd_mode_and_spi_mode_captures_read_the_same_csd() -> None:
    sd = registers_seen(decode_capture(CAPTURES / "sd_mode" / "cmd9_r2.sr"))
    spi = registers_seen(decode_capture(CAPTURES / "spi_mode" / "xmore_get_csd.sr"))
    assert sd.values["CSD"] == spi.values["CSD"] == 0x005E00325F5983D2EDB77F8F964000F7


@needs_captures
@pytest.mark.parametrize(("capture", "state"), [
    ("sd_mode/cmd13_r1.sr", CardState.TRAN),
    ("sd_mode/cmd13_r1_2.sr", CardState.DATA),
    ("sd_mode/cmd3_r6.sr", CardState.IDENT),
])
def test_real_captures_report_the_state_of_their_newest_status(capture: str,
                                                               state: CardState) -> None:
    assert registers_seen(decode_capture(CAPTURES / capture)).state is state
