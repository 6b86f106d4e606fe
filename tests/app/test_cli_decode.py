"""``sdscope decode``: the token table, JSON Lines, the summary and one-line errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import app.cli
from app.cli import decode as decode_command

CAPTURES = Path(__file__).parents[2].parent / "shared" / "captures"
needs_captures = pytest.mark.skipif(
    not CAPTURES.is_dir(), reason=f"real captures not found at {CAPTURES}"
)
KINDS = {"cmd", "rsp", "data", "crc_status", "busy", "finding", "spi"}


@pytest.fixture(autouse=True)
def _decode_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subcommand list is the lead's; make sure ``decode`` is on it for these tests."""
    if decode_command not in app.cli.SUBCOMMANDS:
        monkeypatch.setattr(app.cli, "SUBCOMMANDS", (*app.cli.SUBCOMMANDS, decode_command))


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = app.cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@needs_captures
@pytest.mark.parametrize("name", ["sd_mode/imx6_working_snippet.sr",
                                  "spi_mode/cmd24_write_real.sr"])
def test_jsonl_is_one_token_object_per_line(capsys: pytest.CaptureFixture[str],
                                            name: str) -> None:
    code, out, err = run(capsys, "decode", CAPTURES / name, "--jsonl")
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all({"t", "end", "line", "kind"} <= row.keys() for row in rows)
    assert {row["kind"] for row in rows} <= KINDS
    assert {row["line"] for row in rows} <= {"CMD", "DAT", "SPI"}
    assert all("crc_ok" in row for row in rows if row["kind"] in ("cmd", "data"))
    assert [row["t"] for row in rows] == sorted(row["t"] for row in rows)


@needs_captures
def test_jsonl_carries_commands_and_register_fields(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "decode", CAPTURES / "sd_mode" / "cmd2_r2.sr", "--jsonl")
    cmd, rsp = (json.loads(line) for line in out.splitlines())
    assert (cmd["index"], cmd["app"], cmd["name"], cmd["arg"]) == (2, False, "CMD2 ALL_SEND_CID",
                                                                   "0x00000000")
    assert (rsp["type"], rsp["value"], rsp["crc_ok"]) == (
        "R2", "0x0941504146534449102678067B008775", True)
    assert (rsp["fields"]["MID"], rsp["fields"]["PNM"]) == ("0x09", '"AFSDI"')


@needs_captures
def test_table_shows_one_aligned_row_per_token(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "decode", CAPTURES / "sd_mode" / "cmd55_r1_acmd41_r3.sr")
    rows = out.splitlines()
    assert code == 0 and len(rows) == 4
    assert "ACMD41 SD_SEND_OP_COND arg=0x00FC0000" in rows[2]
    assert len({row.index(" CMD ") for row in rows}) == 1


@needs_captures
def test_summary_counts_commands_crc_and_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "decode", CAPTURES / "spi_mode" / "cmd24_write_simulated.sr",
                       "--summary")
    assert code == 0
    assert "mode:      spi" in out and "CMD24 WRITE_BLOCK       1" in out
    assert "data:      1 blocks, 512 bytes" in out
    assert "spi_data_response_misplaced       1" in out


@needs_captures
def test_summary_with_jsonl_ends_with_a_summary_object(
        capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "decode", CAPTURES / "sd_mode" / "imx6_working_snippet.sr",
                    "--jsonl", "--summary")
    summary = json.loads(out.splitlines()[-1])
    assert summary["kind"] == "summary" and summary["mode"] == "sd"
    assert summary["commands"]["CMD55 APP_CMD"] == 2 and summary["crc_errors"] == 0


@needs_captures
def test_channel_mapping_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    # cmd55_r1_acmd41_r3.sr names its first probes "0".."3"; map CMD and CLK explicitly.
    code, out, _ = run(capsys, "decode", CAPTURES / "sd_mode" / "cmd55_r1_acmd41_r3.sr",
                       "--mode", "sd", "--map", "CLK=5,CMD=4", "--summary")
    assert code == 0 and "CLK=5 (CLK), CMD=4 (CMD)" in out


def test_not_a_capture_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    path = tmp_path / "notes.sr"
    path.write_text("not a capture")
    code, out, err = run(capsys, "decode", path)
    assert (code, out) == (2, "")
    assert err == "sdscope: error: notes.sr: not a sigrok .sr file (not a zip archive)\n"


def test_malformed_sample_data_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    path = tmp_path / "short.sr"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata", "[device 1]\ntotal probes=2\nsamplerate=1 MHz\nunitsize=1\n"
                   "probe1=CLK\nprobe2=CMD\n")
        z.writestr("logic-1-1", b"\1\0" * 10)
        z.getinfo("logic-1-1").file_size = 40
    code, _, err = run(capsys, "decode", path)
    assert code == 2 and err.count("\n") == 1 and "truncated" in err


@needs_captures
def test_unmappable_channels_list_what_the_file_has(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "decode", CAPTURES / "sd_mode" / "cmd9_r2.sr", "--mode", "spi")
    assert code == 2 and err.count("\n") == 1
    assert "no channel for MISO, CS (SPI mode); channels 4=CMD, 5=CLK" in err
