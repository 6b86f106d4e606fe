"""Reading VCD files: timescales, scalar wires, decoding SD frames written by pyvcd, and
clear errors for malformed files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from vcd import VCDWriter

from sdmodel.capture import parse_timescale, read_vcd
from sdmodel.crc import command_frame, crc7
from sdmodel.decode import decode_capture
from sdmodel.errors import CaptureError
from sdmodel.tokens import CommandToken, ResponseToken


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


HEADER = """$date today $end
$timescale {ts} $end
$scope module top $end
$var wire 1 ! CLK $end
$var wire 1 " CMD $end
$var wire 8 # BUS [7:0] $end
$upscope $end
$enddefinitions $end
"""


def bits(frame: bytes) -> list[int]:
    return np.unpackbits(np.frombuffer(frame, np.uint8)).tolist()


@pytest.mark.parametrize(("text", "ps"), [
    ("1 ns", 1000), ("10ps", 10), ("1us", 1_000_000), ("100 ms", 10**11), ("1 s", 10**12),
    ("100 fs", Fraction(1, 10)),
])
def test_timescales(text: str, ps: Fraction | int) -> None:
    assert parse_timescale(text) == ps


@pytest.mark.parametrize("text", ["3 ns", "1 parsec", "ns", "1000 ps"])
def test_unknown_timescale_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="unknown VCD timescale"):
        read_vcd(write(tmp_path / "x.vcd", HEADER.format(ts=text) + "#0\n0!\n"))


def test_scalar_wires_become_channels_in_picoseconds(tmp_path: Path) -> None:
    body = "$dumpvars\n0!\nx\"\nb00000000 #\n$end\n#5\n1!\nb1 \"\n#10\n0!\nz\"\n#12\n0\"\n"
    vcd = read_vcd(write(tmp_path / "x.vcd", HEADER.format(ts="10 ns") + body))
    assert vcd.names == {0: "CLK", 1: "CMD"} and vcd.skipped == ("BUS",)
    clk, cmd = vcd.signals
    assert clk.times.tolist() == [0, 50_000, 100_000] and clk.values.tolist() == [0, 1, 0]
    assert cmd.times.tolist() == [0, 120_000] and cmd.values.tolist() == [1, 0]  # x, z -> 1
    assert vcd.end_ps == 120_000


def test_sd_frames_written_by_pyvcd_decode(tmp_path: Path) -> None:
    """CMD8 and its R7 at 25 MHz: CMD changes with the falling CLK edge (§1)."""
    command = command_frame(8, 0x1AA)
    head = bytes([8]) + (0x1AA).to_bytes(4, "big")
    response = head + bytes([(crc7(head) << 1) | 1])
    stream = [1] * 10 + bits(command) + [1] * 5 + bits(response) + [1] * 20
    path = tmp_path / "sd.vcd"
    with path.open("w") as f, VCDWriter(f, timescale="1 ns", date="today") as writer:
        clk = writer.register_var("sd", "CLK", "wire", size=1, init=0)
        cmd = writer.register_var("sd", "CMD", "wire", size=1, init=1)
        for n, bit in enumerate(stream):
            writer.change(cmd, 40 * n, bit)  # falling edge at 40 n ns
            writer.change(clk, 40 * n, 0)
            writer.change(clk, 40 * n + 20, 1)
    tokens = list(decode_capture(path))
    assert [(t.index, t.arg) for t in tokens if isinstance(t, CommandToken)] == [(8, 0x1AA)]
    rsp = [t for t in tokens if isinstance(t, ResponseToken)]
    assert [(r.type, r.value, r.crc_ok) for r in rsp] == [("R7", 0x1AA, True)]
    assert rsp[0].start - tokens[0].end == 5 * 40_000  # N_CR = 5 clocks of 40 ns


@pytest.mark.parametrize(("text", "message"), [
    ("hello world\n", "not a VCD file"),
    ("", "empty file"),
    ("$timescale 1 ns $end\n$var wire 1 ! CLK $end\n", "no \\$enddefinitions"),
    ("$timescale 1 ns $end\n$var wire 1 ! CLK", "ends inside \\$var"),
    ("$var wire 1 ! CLK $end\n$enddefinitions $end\n", "no \\$timescale"),
    ("$timescale 1 ns $end\n$var wire 1 ! $end\n$enddefinitions $end\n", "malformed \\$var"),
    ("$timescale 1 ns $end\n$var wire 4 ! BUS $end\n$enddefinitions $end\n#0\n",
     "no 1-bit signals"),
    ("$timescale 1 ns $end\nCLK 1\n", "bad header"),
])
def test_bad_header_is_a_capture_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        read_vcd(write(tmp_path / "x.vcd", text))


@pytest.mark.parametrize(("body", "message"), [
    ("#0\n1?\n", "undeclared identifier '\\?'"),
    ("#0\nb1\n", "truncated: vector value without identifier"),
    ("#10\n1!\n#5\n0!\n", "time goes backwards"),
    ("#0\n1\n", "truncated: value change without identifier"),
    ("#x\n", "bad timestamp"),
    ("#0\n$comment unfinished\n", "ends inside \\$comment"),
    ("#0\nq!\n", "bad value change"),
])
def test_bad_or_truncated_body_is_a_capture_error(tmp_path: Path, body: str,
                                                  message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        read_vcd(write(tmp_path / "x.vcd", HEADER.format(ts="1 ns") + body))


def test_missing_signals_name_the_channels_there_are(tmp_path: Path) -> None:
    path = write(tmp_path / "x.vcd", HEADER.format(ts="1 ns") + "#0\n0!\n")
    # CMD is pin 2 = MOSI (DI) in SPI mode; MISO and CS# are missing.
    with pytest.raises(CaptureError, match="no channel for MISO, CS .*0=CLK, 1=CMD"):
        list(decode_capture(path, mode="spi"))
