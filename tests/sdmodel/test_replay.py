"""Replaying a host's commands against the card model (issue: replay of real captures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdmodel.replay import Exchange, replay_capture, replay_exchanges
from sdmodel.tokens import CommandToken, ResponseToken

RCA = 0xB368


def cmd(index: int, arg: int = 0, app: bool = False, crc_ok: bool = True) -> CommandToken:
    return CommandToken(0, 0, index=index, arg=arg, app=app, crc_ok=crc_ok)


def rsp(kind: str, value: int) -> ResponseToken:
    return ResponseToken(0, 0, type=kind, value=value)


def test_linux_identification_start_agrees_with_the_model() -> None:
    # The i.MX6 capture: CMD0, CMD8/R7, CMD55/R1 0x120, ACMD41 0x70FF8000 -> busy OCR.
    report = replay_exchanges([
        Exchange(cmd(0), None),
        Exchange(cmd(8, 0x1AA), rsp("R7", 0x1AA)),
        Exchange(cmd(55), rsp("R1", 0x120)),
        Exchange(cmd(41, 0x70FF8000, app=True), rsp("R3", 0x00FF8000)),
    ])
    assert [r.verdict for r in report.rows] == ["agree"] * 4
    assert report.agreement == 1.0


def test_capture_starting_in_tran_brings_the_model_there_first() -> None:
    report = replay_exchanges([Exchange(cmd(13, RCA << 16), rsp("R1", 0x900))])
    (row,) = report.rows
    assert row.verdict == "agree"
    assert any("brought to tran" in note for note in row.notes)


def test_register_read_ends_its_data_phase_so_the_next_command_sees_tran() -> None:
    report = replay_exchanges([
        Exchange(cmd(55, RCA << 16), rsp("R1", 0x920)),
        Exchange(cmd(51, app=True), rsp("R1", 0x920)),
        Exchange(cmd(13, RCA << 16), rsp("R1", 0x900)),
    ])
    assert [r.verdict for r in report.rows] == ["agree"] * 3


@pytest.mark.parametrize(
    ("real", "expected_note"),
    [
        (rsp("R1", 0x920), "CURRENT_STATE: real tran, model stby"),  # state disagrees
        (rsp("R1", 0x400700), "ILLEGAL_COMMAND: real 1, model 0"),  # an error bit disagrees
        (rsp("R2", 0), "response type: real R2, model R1b"),
    ],
)
def test_disagreements_are_reported_field_by_field(real: ResponseToken, expected_note: str) -> None:
    # CMD7 selects the card: its R1b reports stby (state when received).
    report = replay_exchanges([
        Exchange(cmd(3), rsp("R6", RCA << 16 | 0x0500)),
        Exchange(cmd(7, RCA << 16), real),
    ])
    row = report.rows[-1]
    assert row.verdict == "differ"
    assert expected_note in row.notes


def test_card_specific_contents_are_reported_not_judged() -> None:
    report = replay_exchanges([
        Exchange(cmd(2), rsp("R2", 0x094150414653444910267806_7B008775)),
        Exchange(cmd(3), rsp("R6", 0x12340500)),
    ])
    assert report.rows[0].verdict == "reported"
    assert report.rows[1].verdict == "agree"
    assert any("RCA real 0x1234" in n for n in report.rows[1].notes)
    assert report.compared == 1 and report.agree == 1


def test_a_command_with_a_bad_crc_is_ignored_like_the_card_does() -> None:
    report = replay_exchanges([
        Exchange(cmd(0), None),
        Exchange(cmd(8, 0x1AA, crc_ok=False), None),
        Exchange(cmd(55), rsp("R1", 0x800120)),  # COM_CRC_ERROR shows in the next R1
    ])
    assert report.rows[1].verdict == "skipped"
    assert report.rows[2].verdict == "agree"


def test_json_report_has_the_documented_keys() -> None:
    report = replay_exchanges([Exchange(cmd(0), None)])
    data = report.to_json()
    assert {"commands", "compared", "agree", "agreement", "rows"} <= data.keys()
    assert data["commands"] == 1 and data["agreement"] == 1.0


# --- the real captures (shared/captures): the card_reader set, the i.MX6 snippet, SPI ---

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
REAL = sorted(CAPTURES.glob("*/*.sr")) if CAPTURES.is_dir() else []


@pytest.mark.skipif(not REAL, reason=f"real captures not found in {CAPTURES}")
@pytest.mark.parametrize("capture", REAL, ids=lambda p: p.name)
def test_every_real_capture_agrees_with_the_model(capture: Path) -> None:
    report = replay_capture(capture)
    assert report.commands >= 1
    differing = [(r.command, r.notes) for r in report.rows if r.verdict == "differ"]
    assert not differing
    # R2 contents are only reported; everything else with a response is compared.
    assert report.compared + sum(r.verdict in ("reported", "skipped") for r in report.rows) \
        == report.commands


@pytest.mark.skipif(not REAL, reason=f"real captures not found in {CAPTURES}")
def test_imx6_snippet_replays_linux_identification_and_notes_the_cut_end() -> None:
    report = replay_capture(CAPTURES / "sd_mode" / "imx6_working_snippet.sr")
    assert [r.command.split()[0] for r in report.rows] == ["CMD0", "CMD8", "CMD55", "ACMD41",
                                                           "CMD55"]
    assert report.rows[-1].verdict == "skipped"
    assert "capture ends" in report.rows[-1].notes[0]
    assert report.agreement == 1.0


@pytest.mark.skipif(not REAL, reason=f"real captures not found in {CAPTURES}")
def test_xmore_spi_init_is_modelled_as_an_sdsc_card_from_its_csd() -> None:
    # CMD0 -> 01, CMD55/ACMD41(0) -> 01, CMD1 -> 00: a v1 card leaving idle through CMD1.
    report = replay_capture(CAPTURES / "spi_mode" / "xmore_get_csd.sr")
    assert report.mode == "spi"
    assert [r.real for r in report.rows[:4]] == ["01", "01", "01", "00"]
    assert report.agree == report.compared == 9
