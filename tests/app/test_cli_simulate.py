"""``sdscope simulate``: summary, JSON Lines, breakpoints, exports read by the real
sigrok-cli, exit codes and one-line errors."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import app.cli
from sdmodel.decode import decode_capture

WORKLOAD = "init; read 0 16; write 64 8"
needs_sigrok = pytest.mark.skipif(shutil.which("sigrok-cli") is None,
                                  reason="sigrok-cli is not installed (CI installs it)")


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = app.cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "card.img"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # 1 GiB: an SDHC card
    return path


def test_summary_counts_commands_blocks_and_interrupts(capsys: pytest.CaptureFixture[str],
                                                       card: Path) -> None:
    code, out, err = run(capsys, "simulate", "--image", card, "--workload", WORKLOAD)
    assert (code, err) == (0, "")
    assert "statement 3 (write 64 8): ok" in out
    assert re.search(r"blocks written\s+8 \(4096 bytes\)", out)
    assert re.search(r"CMD25 WRITE_MULTIPLE_BLOCK\s+1", out)
    assert re.search(r"interrupts\s+\d+", out) and "simulated time" in out


def test_jsonl_on_stdout_has_tokens_registers_irqs_states_and_a_summary(
        capsys: pytest.CaptureFixture[str], card: Path) -> None:
    code, out, err = run(capsys, "simulate", "--image", card, "--workload", "init; read 0 2",
                         "--jsonl", "-")
    assert code == 0 and "blocks read" in err  # the table goes to stderr with --jsonl -
    rows = [json.loads(line) for line in out.splitlines()]
    kinds = {row["kind"] for row in rows}
    assert {"cmd", "rsp", "data", "busy", "reg", "irq", "state", "summary"} <= kinds
    reg = next(r for r in rows if r["kind"] == "reg")
    assert {"reg", "offset", "old", "new", "access"} <= reg.keys()
    irq = next(r for r in rows if r["kind"] == "irq")
    assert irq["level"] in (0, 1) and "status" in irq
    cmd = next(r for r in rows if r["kind"] == "cmd")
    assert {"t", "end", "line", "index", "app", "name", "arg", "crc_ok"} <= cmd.keys()
    assert rows[-1]["kind"] == "summary" and rows[-1]["blocks_read"] >= 2


def test_break_stops_the_run_and_says_where(capsys: pytest.CaptureFixture[str],
                                            card: Path) -> None:
    code, out, _ = run(capsys, "simulate", "--image", card, "--workload", WORKLOAD,
                       "--break", "cmd=25")
    assert code == 0
    assert re.search(r"stopped at breakpoint cmd=25: cmd CMD25 WRITE_MULTIPLE_BLOCK", out)
    assert "blocks written                0" in out.replace(" (0 bytes)", "")


def test_a_failing_statement_exits_1_and_names_it(capsys: pytest.CaptureFixture[str],
                                                  card: Path) -> None:
    code, out, _ = run(capsys, "simulate", "--image", card, "--workload",
                       "init; read 3000000 1")
    assert code == 1
    assert "statement 2 (read 3000000 1): blocks 3000000..3000000 are beyond the end" in out


@pytest.mark.parametrize("argv, message", [
    (["--workload", "init; reed 0 8"], 'statement 2 "reed 0 8": unknown action "reed"'),
    (["--clock", "fast"], "cannot read frequency 'fast'"),
    (["--clock", "100MHz"], "--clock must be 400000 to 50000000 Hz"),
    (["--latency", "soon"], "bad latency"),
    (["--break", "cmd=70"], "not 0..63"),
    (["--bus-width", "8"], "invalid choice"),
    (["--sr", "missing/out.sr"], "missing: no such folder"),
])
def test_bad_options_are_one_line_errors_with_exit_2(capsys: pytest.CaptureFixture[str],
                                                     card: Path, tmp_path: Path,
                                                     argv: list[str], message: str) -> None:
    argv = [str(tmp_path / a) if a.endswith(".sr") else a for a in argv]
    code, out, err = run(capsys, "simulate", "--image", card, *argv)
    assert code == 2
    assert err.startswith("sdscope: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_a_missing_image_is_a_one_line_error(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    code, _, err = run(capsys, "simulate", "--image", tmp_path / "nope.img")
    assert code == 2 and "nope.img" in err and len(err.splitlines()) == 1


def _our_commands(jsonl: Path) -> list[str]:
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return [("A" if r["app"] else "") + f"CMD{r['index']}" for r in rows if r["kind"] == "cmd"]


def _sigrok_commands(*argv: str) -> list[str]:
    out = subprocess.run(["sigrok-cli", *argv], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return re.findall(r"^sdcard_\w+-1: (A?CMD\d+)", out, re.MULTILINE)


@needs_sigrok
@pytest.mark.parametrize("width", ["1", "4"])
def test_exported_sr_and_vcd_decode_in_sigrok_to_the_same_commands(
        capsys: pytest.CaptureFixture[str], card: Path, tmp_path: Path, width: str) -> None:
    sr, vcd, jsonl = tmp_path / "out.sr", tmp_path / "out.vcd", tmp_path / "out.jsonl"
    code, _, _ = run(capsys, "simulate", "--image", card, "--workload", WORKLOAD,
                     "--bus-width", width, "--sr", sr, "--vcd", vcd, "--jsonl", jsonl)
    assert code == 0
    ours = _our_commands(jsonl)
    assert ours[:3] == ["CMD0", "CMD8", "CMD55"] and "CMD25" in ours
    decoder = ["-P", "sdcard_sd:cmd=CMD:clk=CLK", "-A", "sdcard_sd=cmd"]
    assert _sigrok_commands("-i", str(sr), *decoder) == ours
    assert _sigrok_commands("-I", "vcd", "-i", str(vcd), *decoder) == ours


@needs_sigrok
def test_spi_export_decodes_in_sigrok_spi_and_sdcard_spi(capsys: pytest.CaptureFixture[str],
                                                         card: Path, tmp_path: Path) -> None:
    """Our decoder reads the whole exported session back; sigrok's sdcard_spi agrees up to
    the register reads, where its decoder gives up: ``handle_cmd9`` re-announces CMD9 for
    each CSD byte ("TODO: Document or redo" in its source) and after ACMD51 it never
    leaves a data state, so only that prefix can be compared."""
    sr, jsonl = tmp_path / "spi.sr", tmp_path / "spi.jsonl"
    code, _, _ = run(capsys, "simulate", "--image", card, "--mode", "spi",
                     "--workload", "init; read 0 1; write 5 1", "--sr", sr, "--jsonl", jsonl)
    assert code == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    ours = [f"CMD{r['index']}" for r in rows if r["kind"] == "spi" and r["what"] == "cmd"]
    decoded = [f"CMD{t.index}" for t in decode_capture(sr) if t.kind == "cmd"]
    assert decoded == ours and ours[-3:] == ["CMD17", "CMD24", "CMD13"]
    theirs = _sigrok_commands("-i", str(sr), "-P",
                              "spi:clk=SCLK:mosi=MOSI:miso=MISO:cs=CS,sdcard_spi",
                              "-A", "sdcard_spi")
    collapsed = [c.removeprefix("A") for c, _ in itertools.groupby(theirs)]
    assert collapsed == ours[:len(collapsed)] and len(collapsed) >= 8
