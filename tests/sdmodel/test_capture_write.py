"""Exporting waveforms: sigrok ``.sr`` and VCD writers, read back by our readers, by
sigrok-cli and by GTKWave.

Waves are written as ``_-`` strings, one character per step (``?``: a bit whose payload
the trace dropped); ``WaveSource`` serves them through the edge-source contract of
``sdmodel.waveform`` (``edges(signal, t0, t1)`` with ``times[0] == t0``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tracemalloc
import zipfile
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pytest

import sdmodel.capture.sr_write as sr_write
from sdmodel.capture import (
    ExportError,
    default_samplerate,
    format_samplerate,
    parse_samplerate,
    read_sr,
    read_vcd,
    write_sr,
    write_vcd,
)
from sdmodel.card import Card
from sdmodel.clock import SimClock
from sdmodel.crc import command_frame, crc7, crc16
from sdmodel.decode import decode_capture
from sdmodel.sdbus import SdBus
from sdmodel.spi import SpiCard
from sdmodel.tokens import CommandToken, DataToken, ResponseToken, SpiToken, Token
from sdmodel.trace import Trace
from sdmodel.waveform import SD_SIGNALS, SPI_SIGNALS, UNKNOWN

if TYPE_CHECKING:
    from conftest import CardHarness

needs_sigrok = pytest.mark.skipif(shutil.which("sigrok-cli") is None,
                                  reason="sigrok-cli is not installed")
needs_gtkwave = pytest.mark.skipif(
    shutil.which("gtkwave") is None or shutil.which("xvfb-run") is None,
    reason="gtkwave and xvfb-run (for a headless display) are not installed")
LEVEL = {"_": 0, "-": 1, "?": UNKNOWN}
STEP = 1000  # ps per character


class ArrayEdges(NamedTuple):
    times: np.ndarray
    levels: np.ndarray


class WaveSource:
    """An edge source over explicit change lists, one per signal."""

    def __init__(self, waves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.waves = waves

    @classmethod
    def from_text(cls, step: int = STEP, t0: int = 0, **text: str) -> WaveSource:
        waves = {}
        for name, wave in text.items():
            levels = np.array([LEVEL[c] for c in wave], dtype=np.uint8)
            keep = np.flatnonzero(np.diff(levels, prepend=255) != 0)
            waves[name] = (t0 + keep.astype(np.int64) * step, levels[keep])
        return cls(waves)

    def edges(self, signal: str, t0: int, t1: int) -> ArrayEdges:
        times, levels = self.waves[signal]
        first = max(int(np.searchsorted(times, t0, side="right")) - 1, 0)
        stop = max(int(np.searchsorted(times, t1, side="left")), first + 1)
        return ArrayEdges(np.concatenate(([t0], times[first + 1:stop])).astype(np.int64),
                          levels[first:stop])


def sr_samples(path: Path) -> np.ndarray:
    return np.concatenate(list(read_sr(path).chunks()))


def text_levels(wave: str) -> np.ndarray:
    return np.array([LEVEL[c] for c in wave], dtype=np.uint8)


WAVES = {"CLK": "_-_-_-_-_-_-_-_-", "CMD": "---____----__---", "DAT0": "------______--__"}


# --- .sr ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("t0", "start", "stop", "samplerate"), [
    (0, 0, 16, 1_000_000_000),  # one sample per character
    (7000, 0, 16, 2_000_000_000),  # two per character, the waves start at 7 ns
    (7000, 3, 11, 4_000_000_000),  # a window inside the waves
    (0, 1, 16, 3_000_000_000),  # 333.3 ps per sample: times round down to whole ps
])
def test_sr_sample_k_is_the_level_at_t0_plus_k_periods(tmp_path: Path, t0: int, start: int,
                                                       stop: int, samplerate: int) -> None:
    source = WaveSource.from_text(t0=t0, **WAVES)
    w0, w1 = t0 + start * STEP, t0 + stop * STEP
    count = write_sr(tmp_path / "out.sr", source, list(WAVES), w0, w1, samplerate)
    assert count == (w1 - w0) * samplerate // 10**12
    samples = sr_samples(tmp_path / "out.sr")
    assert len(samples) == count
    step = Fraction(10**12, samplerate) / STEP  # characters per sample
    chars = [start + int(k * step) for k in range(count)]
    for bit, wave in enumerate(WAVES.values()):
        assert np.array_equal((samples >> bit) & 1, text_levels(wave)[chars])


def test_sr_metadata_is_what_sigrok_writes(tmp_path: Path) -> None:
    write_sr(tmp_path / "out.sr", WaveSource.from_text(**WAVES), list(WAVES), 0, 16 * STEP,
             1_000_000_000)
    with zipfile.ZipFile(tmp_path / "out.sr") as z:
        assert z.namelist() == ["version", "metadata", "logic-1-1"]
        assert z.read("version") == b"2"
        assert z.read("metadata").decode() == (
            "[global]\nsigrok version=0.5.2\n\n[device 1]\ncapturefile=logic-1\n"
            "total probes=3\nsamplerate=1 GHz\ntotal analog=0\n"
            "probe1=CLK\nprobe2=CMD\nprobe3=DAT0\nunitsize=1\n")
    capture = read_sr(tmp_path / "out.sr")
    assert (capture.samplerate, capture.unitsize, capture.names) == (
        1_000_000_000, 1, {0: "CLK", 1: "CMD", 2: "DAT0"})


def test_sr_samples_are_split_into_numbered_chunks(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sr_write, "CHUNK_BYTES", 24)
    monkeypatch.setattr(sr_write, "WINDOW_SAMPLES", 5)
    source = WaveSource.from_text(**WAVES)
    assert write_sr(tmp_path / "out.sr", source, list(WAVES), 0, 16 * STEP,
                    4_000_000_000) == 64
    capture = read_sr(tmp_path / "out.sr")
    assert capture.members == ("logic-1-1", "logic-1-2", "logic-1-3")
    assert capture.sizes == (24, 24, 16)
    assert np.array_equal(sr_samples(tmp_path / "out.sr") & 1,
                          np.repeat(text_levels(WAVES["CLK"]), 4))


def test_sr_more_than_eight_signals_take_two_bytes_a_sample(tmp_path: Path) -> None:
    waves = {f"S{n}": "_-"[n % 2] * 3 + "-_"[n % 2] for n in range(10)}
    write_sr(tmp_path / "out.sr", WaveSource.from_text(**waves), list(waves), 0, 4 * STEP,
             1_000_000_000)
    assert read_sr(tmp_path / "out.sr").unitsize == 2
    assert sr_samples(tmp_path / "out.sr").tolist() == [0b1010101010] * 3 + [0b0101010101]


def test_sr_memory_stays_bounded_for_a_long_export(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sr_write, "WINDOW_SAMPLES", 1 << 16)
    clock = WaveSource.from_text(step=5_000, CLK="_-" * 800_000)  # 8 ms at 100 MHz
    tracemalloc.start()
    try:
        count = write_sr(tmp_path / "long.sr", clock, ["CLK"], 0, 8_000_000_000, 1_000_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 8_000_000
    assert peak < 4 << 20  # 8 MiB of samples written, never all in memory


@pytest.mark.parametrize("write", ["sr", "vcd"])
def test_a_dropped_payload_is_refused_and_nothing_is_written(tmp_path: Path,
                                                             write: str) -> None:
    source = WaveSource.from_text(CLK="_-_-_-_-", CMD="--??????")
    path = tmp_path / f"out.{write}"
    with pytest.raises(ExportError, match=r"CMD at 0\.000000002 s: payload dropped; "
                                          r"raise the trace budget"):
        if write == "sr":
            write_sr(path, source, ["CLK", "CMD"], 0, 8 * STEP, 1_000_000_000)
        else:
            write_vcd(path, source, ["CLK", "CMD"], 0, 8 * STEP)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("signals", "t0", "t1", "message"), [
    (["CLK"], 5000, 5000, "empty time window"),
    (["CLK", "CLK"], 0, 5000, "signal names repeat"),
    ([], 0, 5000, "signals"),
])
@pytest.mark.parametrize("write", ["sr", "vcd"])
def test_bad_export_requests_are_export_errors(tmp_path: Path, signals: list[str], t0: int,
                                               t1: int, message: str, write: str) -> None:
    source = WaveSource.from_text(CLK="_-_-_-_-")
    with pytest.raises(ExportError, match=message):
        if write == "sr":
            write_sr(tmp_path / "x.sr", source, signals, t0, t1, 1_000_000_000)
        else:
            write_vcd(tmp_path / "x.vcd", source, signals, t0, t1)


@pytest.mark.parametrize(("period_ps", "rate"), [
    (40_000, 200_000_000),  # 25 MHz: 8 x 25 MHz = 200 MHz exactly
    (20_000, 500_000_000),  # 50 MHz: 400 MHz rounds up to 500 MHz
    (2_500_000, 5_000_000),  # 400 kHz: 3.2 MHz -> 5 MHz
    (4_000_000, 2_000_000),  # 250 kHz: 2 MHz exactly
    (1_000_000, 10_000_000),  # 1 MHz: 8 MHz -> 10 MHz
])
def test_default_samplerate_takes_eight_samples_a_clock_on_a_round_rate(period_ps: int,
                                                                         rate: int) -> None:
    assert default_samplerate(period_ps) == rate


@pytest.mark.parametrize(("rate", "text"), [
    (100_000_000, "100 MHz"), (1_000_000_000, "1 GHz"), (24_000_000, "24 MHz"),
    (1_500_000, "1.5 MHz"), (500, "500 Hz"), (2_000, "2 kHz"), (3_125_000_000, "3.125 GHz"),
])
def test_samplerate_is_spelled_like_sigrok_and_reads_back(rate: int, text: str) -> None:
    assert format_samplerate(rate) == text
    assert parse_samplerate(text) == rate


# --- VCD ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "t0", "timescale"), [
    (1000, 0, Fraction(1000)),  # 1 ns
    (20_000, 40_000, Fraction(10_000)),  # 10 ns
    (1000, 7, Fraction(1)),  # t0 at 7 ps: only 1 ps is exact
    (10**9, 0, Fraction(10**9)),  # 1 ms
])
def test_vcd_reads_back_as_the_same_changes_on_the_coarsest_exact_timescale(
        tmp_path: Path, step: int, t0: int, timescale: Fraction) -> None:
    source = WaveSource.from_text(step=step, t0=t0, **WAVES)
    t1 = t0 + 16 * step
    changes = write_vcd(tmp_path / "out.vcd", source, list(WAVES), t0, t1)
    capture = read_vcd(tmp_path / "out.vcd")
    assert (capture.timescale_ps, capture.end_ps) == (timescale, t1)
    assert list(capture.names.values()) == list(WAVES)
    for signal in capture.signals:
        times, levels = source.waves[signal.name]
        assert np.array_equal(signal.times, times) and np.array_equal(signal.values, levels)
    assert changes == sum(len(s.times) - 1 for s in capture.signals)


def test_vcd_is_the_same_whatever_the_window(tmp_path: Path) -> None:
    source = WaveSource.from_text(**WAVES)
    write_vcd(tmp_path / "one.vcd", source, list(WAVES), 0, 16 * STEP)
    write_vcd(tmp_path / "many.vcd", source, list(WAVES), 0, 16 * STEP, window_ps=3 * STEP)
    assert (tmp_path / "one.vcd").read_text() == (tmp_path / "many.vcd").read_text()


def test_vcd_has_scalar_wires_and_only_changes(tmp_path: Path) -> None:
    write_vcd(tmp_path / "out.vcd", WaveSource.from_text(CLK="_-_-", CMD="--__"),
              ["CLK", "CMD"], 0, 4 * STEP)
    text = (tmp_path / "out.vcd").read_text()
    assert "$timescale 1 ns $end" in text
    assert re.findall(r"\$var (\w+) (\d+) \S+ (\w+) \$end", text) == [
        ("wire", "1", "CLK"), ("wire", "1", "CMD")]
    body = text.split("$enddefinitions $end")[1].split()
    assert body == ["#0", "$dumpvars", "0!", '1"', "$end", "#1", "1!", "#2", "0!", '0"',
                    "#3", "1!", "#4"]


def test_vcd_with_a_timescale_an_edge_is_not_on_is_refused(tmp_path: Path) -> None:
    source = WaveSource.from_text(step=1500, CLK="_-_-")
    with pytest.raises(ExportError, match="an edge at 1500 ps is not on a timescale of 1 ns"):
        write_vcd(tmp_path / "out.vcd", source, ["CLK"], 0, 6000, timescale_ps=1000)
    assert not (tmp_path / "out.vcd").exists()


# --- sigrok-cli and GTKWave read what we write ---------------------------------------------

HALF = 1_250_000  # ps: half a 400 kHz identification clock


def frame_bits(data: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in data)


def response_frame(index: int, payload: int) -> bytes:
    """A 48-bit response (R1/R6/R7): start and transmission bits 0, index, payload, CRC7."""
    head = bytes([index & 0x3F]) + payload.to_bytes(4, "big")
    return head + bytes([(crc7(head) << 1) | 1])


def bus_text(*frames: bytes, gap: int = 8) -> dict[str, str]:
    """CLK and CMD as text: ``gap`` idle clocks, then each frame followed by ``gap`` more;
    CMD changes while CLK is low and is sampled on the rising edge (§4.12)."""
    bits = "1" * gap + "".join(frame_bits(f) + "1" * gap for f in frames)
    return {"CLK": "_-" * len(bits), "CMD": "".join("_-"[int(b)] * 2 for b in bits)}


# CMD0; CMD8 and its R7 echo; CMD55 and its R1 (idle, APP_CMD): reference §8.
SESSION = bus_text(command_frame(0, 0), command_frame(8, 0x1AA), response_frame(8, 0x1AA),
                   command_frame(55, 0), response_frame(55, 0x120))
SESSION_COMMANDS = ["CMD0", "CMD8", "CMD55"]


def our_commands(path: Path) -> list[str]:
    return [t.name.split()[0] for t in decode_capture(path) if isinstance(t, CommandToken)]


# What sigrok's decoders print for a command: "sdcard_sd-1: CMD8 (SEND_IF_COND): ...",
# "sdcard_spi-1: Command: CMD8 (SEND_IF_COND)".
SIGROK_COMMAND = re.compile(r"^sdcard_(?:sd-1: |spi-1: Command: )(A?CMD\d+) ", re.M)


def sigrok_commands(*argv: str | Path) -> list[str]:
    done = subprocess.run(["sigrok-cli", *map(str, argv)], capture_output=True, text=True,
                          check=True, timeout=300)
    assert not re.search(r"^(cli|srd|sr):", done.stderr, re.M), done.stderr
    return SIGROK_COMMAND.findall(done.stdout)


@pytest.fixture
def session_files(tmp_path: Path) -> tuple[Path, Path]:
    source = WaveSource.from_text(step=HALF, **SESSION)
    t1 = len(SESSION["CLK"]) * HALF
    write_sr(tmp_path / "session.sr", source, ["CLK", "CMD"], 0, t1,
             default_samplerate(2 * HALF))
    write_vcd(tmp_path / "session.vcd", source, ["CLK", "CMD"], 0, t1)
    return tmp_path / "session.sr", tmp_path / "session.vcd"


def test_our_decoder_reads_the_written_session(session_files: tuple[Path, Path]) -> None:
    for path in session_files:
        tokens = list(decode_capture(path))
        assert our_commands(path) == SESSION_COMMANDS
        assert [(t.type, t.value, t.crc_ok) for t in tokens if isinstance(t, ResponseToken)] \
            == [("R7", 0x1AA, True), ("R1", 0x120, True)]


@needs_sigrok
def test_sigrok_decodes_the_written_sr_like_we_do(session_files: tuple[Path, Path]) -> None:
    sr, _ = session_files
    assert sigrok_commands("-i", sr, "-P", "sdcard_sd:cmd=CMD:clk=CLK",
                           "-A", "sdcard_sd=cmd") == our_commands(sr) == SESSION_COMMANDS


@needs_sigrok
def test_sigrok_decodes_the_written_vcd_like_we_do(session_files: tuple[Path, Path]) -> None:
    _, vcd = session_files
    assert sigrok_commands("-I", "vcd", "-i", vcd, "-P", "sdcard_sd:cmd=CMD:clk=CLK",
                           "-A", "sdcard_sd=cmd") == our_commands(vcd) == SESSION_COMMANDS


GTKWAVE_UNIT_PS = {"p": 1, "n": 10**3, "u": 10**6, "m": 10**9, "s": 10**12}


def gtkwave_changes(vcd: Path, signals: list[str], tmp_path: Path) -> dict[str, list[int]]:
    """Each signal's changes as GTKWave loads them, ``[t_ps, level, t_ps, level, ...]``,
    from its Tcl interface on a virtual display."""
    script = tmp_path / "changes.tcl"
    script.write_text('puts "UNIT [gtkwave::getTimeDimension]"\n' + "".join(
        f'puts "CHANGES {s} [gtkwave::signalChangeList sdscope.{s} -max 1000000]"\n'
        for s in signals) + "gtkwave::/File/Quit\n")
    done = subprocess.run(["xvfb-run", "-a", "gtkwave", str(vcd), f"--script={script}"],
                          capture_output=True, text=True, timeout=120, check=False)
    unit = re.search(r"^UNIT (\w)", done.stdout, re.M)
    found = dict(re.findall(r"^CHANGES (\S+) (.*)$", done.stdout, re.M))
    assert unit is not None and set(found) == set(signals), done.stdout + done.stderr
    unit_ps = GTKWAVE_UNIT_PS[unit.group(1)]
    changes = {}
    for signal in signals:
        # GTKWave ends every list with two sentinels at the end of time ("x", then "z").
        values = [int(v) for v in found[signal].split()[:-4]]
        changes[signal] = [v * unit_ps if i % 2 == 0 else v for i, v in enumerate(values)]
    return changes


@needs_gtkwave
def test_gtkwave_loads_the_written_vcd_with_every_change(
        session_files: tuple[Path, Path], tmp_path: Path) -> None:
    _, vcd = session_files
    source = WaveSource.from_text(step=HALF, **SESSION)
    expected = {name: [int(v) for pair in zip(*source.waves[name], strict=True) for v in pair]
                for name in ("CLK", "CMD")}
    assert gtkwave_changes(vcd, ["CLK", "CMD"], tmp_path) == expected


# --- simulated sessions, end to end ----------------------------------------------------------
# The real card on a real image, through SdBus (SD mode) or SpiCard (SPI mode): init, one
# block read, one block written. The trace is the truth: its commands and data blocks must
# come back from the exported files, through our decoder and through sigrok's.

ACMD41_HCS = 0x40300000
HCS = 1 << 30
ID_HZ, DS_HZ, SPI_HZ = 400_000, 25_000_000, 1_000_000
FF = b"\xff"
WRITTEN = bytes(range(256)) * 2


async def sd_session(h: CardHarness, trace: Trace) -> Trace:
    """Reference §8: CMD0, CMD8, ACMD41 until ready, CMD2, CMD3, CMD9, CMD7 at 400 kHz;
    then 25 MHz, CMD17 and its block, CMD24 with a block and its busy, CMD13."""
    bus = SdBus(h.card, SimClock(ID_HZ, free_wall_s=1.0), trace)
    bus.power_up()
    await bus.command(0, 0)
    await bus.command(8, 0x1AA)
    for _ in range(10):
        await bus.command(55, 0)
        if (await bus.command(41, ACMD41_HCS)).reply.value >> 31:
            break
    await bus.command(2, 0)
    rca = (await bus.command(3, 0)).reply.value & 0xFFFF0000
    await bus.command(9, rca)
    await bus.command(7, rca)
    assert await bus.wait_busy()
    bus.clock.set_frequency(DS_HZ)
    await bus.command(17, h.addr(1))
    assert await bus.read_block() is not None
    await bus.command(24, h.addr(2))
    assert await bus.write_block(WRITTEN) is not None
    assert await bus.wait_busy()
    await bus.command(13, rca)
    return trace


async def spi_session(card: Card, trace: Trace) -> Trace:
    """Reference A.6: 80 clocks with CS# high, CMD0, CMD8, ACMD41 until ready, CMD58; CMD17
    and its block; CMD24, a block, its data response and busy; CMD13."""
    spi = SpiCard(card, trace, SimClock(SPI_HZ, free_wall_s=1.0))

    async def command(index: int, arg: int = 0, extra: int = 0) -> bytes:
        return (await spi.transfer(command_frame(index, arg) + FF * (2 + extra)))[7:]

    async def until(done: int | None) -> int:
        for _ in range(100_000):
            byte = (await spi.transfer(FF))[0]
            if byte == done if done is not None else byte != 0xFF:
                return byte
        raise AssertionError("the card never answered")

    await spi.transfer(FF * 10)
    spi.select(True)
    assert await command(0) == b"\x01"
    assert await command(8, 0x1AA, 4) == bytes.fromhex("01 00 00 01 AA")
    for _ in range(10):
        await command(55)
        if await command(41, HCS) == b"\x00":
            break
    await command(58, 0, 4)
    assert await command(17, 1) == b"\x00"
    assert await until(None) == 0xFE
    await spi.transfer(FF * 514)
    assert await command(24, 2) == b"\x00"
    response = await spi.transfer(b"\xfe" + WRITTEN + crc16(WRITTEN).to_bytes(2, "big") + FF)
    assert response[-1] & 0x1F == 0x05  # data accepted
    await until(0xFF)
    await command(13, 0, 1)
    await spi.transfer(FF * 2)
    spi.select(False)
    spi.close()
    return trace


def export(trace: Trace, signals: tuple[str, ...], tmp_path: Path) -> tuple[Path, Path]:
    t0, t1 = trace.span()
    fastest = min(t.period for t in trace if t.period)
    write_sr(tmp_path / "sim.sr", trace, signals, t0, t1, default_samplerate(fastest))
    write_vcd(tmp_path / "sim.vcd", trace, signals, t0, t1)
    return tmp_path / "sim.sr", tmp_path / "sim.vcd"


def trace_commands(trace: Trace) -> list[str]:
    names = [t.name for t in trace if isinstance(t, CommandToken)]
    names += [t.info["name"] for t in trace if isinstance(t, SpiToken) and t.what == "cmd"]
    return [name.split()[0] for name in names]


def blocks(tokens: Iterable[Token]) -> list[bytes | None]:
    return [t.data for t in tokens if isinstance(t, DataToken)]


SIGROK_DECODERS = {
    "sd": ["-P", "sdcard_sd:cmd=CMD:clk=CLK", "-A", "sdcard_sd=cmd"],
    "spi": ["-P", "spi:clk=SCLK:mosi=MOSI:miso=MISO:cs=CS,sdcard_spi", "-A", "sdcard_spi"],
}


class Session(NamedTuple):
    mode: str
    trace: Trace
    sr: Path
    vcd: Path
    read: bytes  # the block the session read, from the image file


@pytest.fixture(params=["sd", "spi"])
def simulated(request: pytest.FixtureRequest, make_card: Callable[..., CardHarness],
              tmp_path: Path) -> Session:
    """A simulated session in each mode, exported whole to .sr and VCD."""
    h = make_card("SDHC")
    if request.param == "sd":
        trace = asyncio.run(sd_session(h, Trace()))
        signals = SD_SIGNALS
    else:
        trace = asyncio.run(spi_session(h.card, Trace()))
        signals = SPI_SIGNALS
    return Session(request.param, trace, *export(trace, signals, tmp_path), h.file_blocks(1))


def test_our_decoder_reads_back_the_simulated_session(simulated: Session) -> None:
    commands = trace_commands(simulated.trace)
    assert commands[:2] == ["CMD0", "CMD8"] and "CMD24" in commands
    for path in (simulated.sr, simulated.vcd):
        tokens = list(decode_capture(path))
        assert our_commands(path) == commands
        assert blocks(tokens) == [simulated.read, WRITTEN]
        assert all(t.crc_ok for t in tokens if isinstance(t, CommandToken | DataToken))


@needs_sigrok
@pytest.mark.parametrize("fmt", ["sr", "vcd"])
def test_sigrok_decodes_the_simulated_session_like_we_do(simulated: Session,
                                                         fmt: str) -> None:
    source = ["-i", simulated.sr] if fmt == "sr" else ["-I", "vcd", "-i", simulated.vcd]
    assert sigrok_commands(*source, *SIGROK_DECODERS[simulated.mode]) \
        == our_commands(simulated.sr) == trace_commands(simulated.trace)


@needs_gtkwave
def test_gtkwave_loads_the_simulated_vcd_with_every_edge(simulated: Session,
                                                         tmp_path: Path) -> None:
    trace = simulated.trace
    t0, t1 = trace.span()
    signals = list(SD_SIGNALS if simulated.mode == "sd" else SPI_SIGNALS)
    expected = {}
    for signal in signals:
        edges = trace.edges(signal, t0, t1)
        expected[signal] = [int(v) for pair in zip(edges.times, edges.levels, strict=True)
                            for v in pair]
    assert gtkwave_changes(simulated.vcd, signals, tmp_path) == expected


async def test_a_trace_that_dropped_a_block_is_not_exported(
        make_card: Callable[..., CardHarness], tmp_path: Path) -> None:
    trace = await sd_session(make_card("SDHC"), Trace(payload_budget=512))
    assert blocks(trace) == [None, WRITTEN]  # the read block's payload was dropped
    t0, t1 = trace.span()
    with pytest.raises(ExportError, match="DAT0 at .* s: payload dropped; raise the trace "
                                          "budget"):
        write_sr(tmp_path / "sim.sr", trace, SD_SIGNALS, t0, t1, 200_000_000)
    assert list(tmp_path.glob("sim.sr*")) == []
