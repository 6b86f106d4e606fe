"""Reading sigrok .sr files (metadata, streamed chunks, malformed and hostile archives) and
mapping their channels to SD/SPI signals."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sdmodel.capture import Mode, map_channels, open_capture, parse_samplerate, read_sr
from sdmodel.capture.sr import MAX_SAMPLES
from sdmodel.decode import decode_capture
from sdmodel.errors import CaptureError

CAPTURES = Path(__file__).parents[2].parent / "shared" / "captures"
needs_captures = pytest.mark.skipif(
    not CAPTURES.is_dir(), reason=f"real captures not found at {CAPTURES}"
)
MIB = 1 << 20


def metadata(unitsize: object = 1, probes: int = 2, rate: str = "1 MHz",
             names: tuple[str, ...] = ("CLK", "CMD")) -> str:
    lines = ["[global]", "sigrok version=0.5.2", "", "[device 1]", "capturefile=logic-1",
             f"total probes={probes}", f"samplerate={rate}", f"unitsize={unitsize}"]
    lines += [f"probe{i + 1}={n}" for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"


def make_sr(path: Path, meta: str | None = None, members: dict[str, bytes] | None = None,
            declared: dict[str, int] | None = None,
            compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A .sr archive; ``declared`` overrides a member's size in the central directory,
    which is what a corrupt or hostile file does."""
    with zipfile.ZipFile(path, "w", compression) as z:
        if meta is not None:
            z.writestr("metadata", meta)
        for name, data in (members if members is not None else {"logic-1-1": b"\1\0" * 8}).items():
            z.writestr(name, data)
        for name, size in (declared or {}).items():
            z.getinfo(name).file_size = size
    return path


# --- the real captures -------------------------------------------------------------------


@needs_captures
@pytest.mark.parametrize(("name", "rate", "unitsize", "names", "samples"), [
    ("sd_mode/cmd2_r2.sr", 125_000_000, 5, {4: "CMD", 5: "CLK"}, 142_012),
    ("sd_mode/imx6_working_snippet.sr", 40_000_000, 2,
     {0: "CLK", 1: "DAT0", 2: "DAT1", 3: "DAT2", 4: "CMD", 5: "DAT3"}, 524_288),
    ("spi_mode/cmd17_read_single_block.sr", 24_000_000, 1,
     {0: "MOSI", 1: "MISO", 2: "CLK", 3: "CS#"}, 111_956),
    # sigrok 0.2: one 'logic-1' member and "key = value" metadata
    ("spi_mode/xmore_get_csd.sr", 4_000_000, 1, {0: "CS#", 1: "MOSI", 2: "CLK", 3: "MISO"},
     12_000_000),
])
def test_real_capture_metadata(name: str, rate: int, unitsize: int, names: dict[int, str],
                               samples: int) -> None:
    sr = read_sr(CAPTURES / name)
    assert (sr.samplerate, sr.unitsize, sr.total_samples) == (rate, unitsize, samples)
    assert {i: n for i, n in sr.names.items() if not n.isdigit()} == names
    assert sum(chunk.size for chunk in sr.chunks()) == samples


@needs_captures
def test_bit_n_is_probe_n_plus_1_and_imx6_dat3_is_stuck_low() -> None:
    sr = read_sr(CAPTURES / "sd_mode" / "imx6_working_snippet.sr")
    samples = np.concatenate(list(sr.chunks()))
    clk, dat3 = samples & 1, samples >> 5 & 1
    assert np.count_nonzero(np.diff(clk)) > 1000 and not dat3.any()


@pytest.mark.parametrize(("text", "hz"), [
    ("125 MHz", 125_000_000), ("24 MHz", 24_000_000), ("1 kHz", 1000), ("4MHz", 4_000_000),
    ("1.5 MHz", 1_500_000), ("100 Hz", 100), ("2 GHz", 2_000_000_000), ("24000000", 24_000_000),
])
def test_sample_rates_in_sigrok_spelling(text: str, hz: int) -> None:
    assert parse_samplerate(text) == hz


@pytest.mark.parametrize("text", ["fast", "-1 MHz", "0 Hz", "12 parsecs", ""])
def test_unreadable_sample_rates_are_refused(text: str) -> None:
    with pytest.raises(CaptureError, match="sample rate"):
        parse_samplerate(text)


@pytest.mark.parametrize("unitsize", [3, 5, 8])
def test_odd_unitsizes_are_padded_so_bit_n_stays_probe_n_plus_1(tmp_path: Path,
                                                                 unitsize: int) -> None:
    values = [1, 1 << (unitsize * 8 - 1), (1 << (unitsize * 8)) - 1]
    raw = b"".join(v.to_bytes(unitsize, "little") for v in values)
    path = make_sr(tmp_path / "x.sr", metadata(unitsize, probes=unitsize * 8, names=()),
                   {"logic-1-1": raw})
    assert [int(v) for v in np.concatenate(list(read_sr(path).chunks(2)))] == values


def test_chunks_are_read_in_number_order_not_name_order(tmp_path: Path) -> None:
    members = {f"logic-1-{n}": bytes([n]) for n in (10, 2, 1, 3, 4, 5, 6, 7, 8, 9)}
    path = make_sr(tmp_path / "x.sr", metadata(), members)
    assert np.concatenate(list(read_sr(path).chunks())).tolist() == list(range(1, 11))


# --- malformed and hostile files --------------------------------------------------------

GOOD = metadata()


@pytest.mark.parametrize(("meta", "members", "declared", "message"), [
    (None, None, None, "no 'metadata'"),
    ("\0\1 garbage without a section", None, None, "garbled metadata"),
    ("[global]\nx=1\n", None, None, r"no \[device 1\]"),
    (metadata(unitsize=0), None, None, "unitsize 0 is not between 1 and 8"),
    (metadata(unitsize=1000), None, None, "unitsize 1000 is not between 1 and 8"),
    (metadata(unitsize="two"), None, None, "'unitsize' is not a number"),
    (GOOD.replace("samplerate=1 MHz", ""), None, None, "no samplerate"),
    (GOOD.replace("1 MHz", "quick"), None, None, "unreadable sample rate"),
    (metadata(probes=9), None, None, "9 probes do not fit"),
    (metadata(unitsize=2), {"logic-1-1": b"\0" * 1001}, None, "not a multiple of unitsize 2"),
    (GOOD, {"logic-1-1": b"\0", "logic-1-3": b"\0"}, None, "logic-1-2 is missing"),
    (GOOD, {}, None, "no sample data"),
    # A deflated member cannot expand more than ~1032:1: 2^45 bytes is a lie (or a bomb).
    (GOOD, {"logic-1-1": b"\0" * 4096}, {"logic-1-1": 1 << 45}, "impossible"),
])
def test_malformed_sr_is_a_capture_error(tmp_path: Path, meta: str | None,
                                         members: dict[str, bytes] | None,
                                         declared: dict[str, int] | None, message: str) -> None:
    path = make_sr(tmp_path / "bad.sr", meta, members, declared)
    with pytest.raises(CaptureError, match=message):
        read_sr(path)


def test_absurd_declared_sample_count_is_refused_for_any_compression(tmp_path: Path) -> None:
    declared = MAX_SAMPLES + 1  # bzip2 has no fixed expansion bound, the sample limit holds
    path = make_sr(tmp_path / "bad.sr", GOOD, {"logic-1-1": b"\0" * 4096},
                   {"logic-1-1": declared}, compression=zipfile.ZIP_BZIP2)
    with pytest.raises(CaptureError, match="more than the limit"):
        read_sr(path)


def test_an_lzma_member_is_refused_before_its_dictionary_is_allocated(tmp_path: Path) -> None:
    path = make_sr(tmp_path / "lzma.sr", GOOD, {"logic-1-1": b"\0" * 4096}, None,
                   compression=zipfile.ZIP_LZMA)
    with pytest.raises(CaptureError, match="uses compression method 14"):
        read_sr(path)


@pytest.mark.parametrize("content", [b"hello, not a zip", b"PK\x03\x04 cut short"])
def test_a_file_that_is_not_a_zip_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.sr"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match="not a zip archive"):
        open_capture(path)


def test_truncated_archive_is_a_capture_error(tmp_path: Path) -> None:
    path = make_sr(tmp_path / "x.sr", GOOD, {"logic-1-1": bytes(range(256)) * 64})
    path.write_bytes(path.read_bytes()[:-40])  # the central directory is cut off
    with pytest.raises(CaptureError):
        open_capture(path)


def test_truncated_chunk_is_found_while_streaming(tmp_path: Path) -> None:
    path = make_sr(tmp_path / "x.sr", GOOD, {"logic-1-1": b"\1\0" * 500},
                   {"logic-1-1": 2000})  # declares twice what it holds
    with pytest.raises(CaptureError, match="truncated"):
        list(decode_capture(path))


def test_zip_bomb_chunk_stays_bounded(tmp_path: Path) -> None:
    # 64 MiB of zeros declared as 1 MiB: zipfile stops at the declared size, the CRC fails.
    path = make_sr(tmp_path / "bomb.sr", GOOD, {"logic-1-1": bytes(64 * MIB)},
                   {"logic-1-1": MIB})
    sr = read_sr(path)
    tracemalloc.start()
    try:
        with pytest.raises(CaptureError, match="corrupt sample data"):
            for _ in sr.chunks():
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB


def test_large_capture_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    path = make_sr(tmp_path / "big.sr", GOOD, {"logic-1-1": bytes(48 * MIB)})
    tracemalloc.start()
    try:
        tokens = list(decode_capture(path, mode="sd", mapping="CLK=0,CMD=1"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tokens == [] and peak < 16 * MIB


# --- channel mapping ---------------------------------------------------------------------


@needs_captures
@pytest.mark.parametrize(("name", "mode", "roles"), [
    ("sd_mode/cmd9_r2.sr", Mode.SD, {"CLK": 5, "CMD": 4}),
    ("sd_mode/cmd55_r1_acmd41_r3.sr", Mode.SD, {"CLK": 5, "CMD": 4}),
    # DAT3 (stuck at 0 in this capture) is a DAT line, never a reason for SPI mode
    ("sd_mode/imx6_working_snippet.sr", Mode.SD,
     {"CLK": 0, "CMD": 4, "DAT0": 1, "DAT1": 2, "DAT2": 3, "DAT3": 5}),
    ("spi_mode/cmd24_write_real.sr", Mode.SPI, {"SCK": 2, "MOSI": 0, "MISO": 1, "CS": 3}),
    ("spi_mode/cmd24_write_simulated.sr", Mode.SPI, {"SCK": 3, "MOSI": 1, "MISO": 2, "CS": 0}),
    ("spi_mode/xmore_get_csd.sr", Mode.SPI, {"SCK": 2, "MOSI": 1, "MISO": 3, "CS": 0}),
])
def test_mode_and_roles_come_from_the_channel_names(name: str, mode: Mode,
                                                    roles: dict[str, int]) -> None:
    sr = read_sr(CAPTURES / name)
    mapped = map_channels(sr.names, sr.nprobes)
    assert (mapped.mode, mapped.roles) == (mode, roles)


@pytest.mark.parametrize(("names", "mode", "roles"), [
    ({0: "sclk", 1: "Cmd", 2: "dat0"}, Mode.SD, {"CLK": 0, "CMD": 1, "DAT0": 2}),
    ({0: "nCS", 1: "DI", 2: "DO", 3: "SCK"}, Mode.SPI, {"SCK": 3, "MOSI": 1, "MISO": 2,
                                                      "CS": 0}),
    ({0: "cs#", 1: "mosi", 2: "miso", 3: "clk"}, Mode.SPI, {"SCK": 3, "MOSI": 1, "MISO": 2,
                                                          "CS": 0}),
])
def test_common_spellings_are_recognised_case_insensitively(
        names: dict[int, str], mode: Mode, roles: dict[str, int]) -> None:
    mapped = map_channels(names, 8)
    assert (mapped.mode, mapped.roles) == (mode, roles)


def test_user_mapping_by_index_or_name_overrides_the_file() -> None:
    names = {0: "A", 1: "B", 2: "CLK", 3: "CMD"}
    mapped = map_channels(names, 4, "auto", "CLK=A, cmd=1, DAT0=3")
    assert (mapped.mode, mapped.roles) == (Mode.SD, {"CLK": 0, "CMD": 1, "DAT0": 3})


def test_stuck_dat3_alone_does_not_select_spi() -> None:
    with pytest.raises(CaptureError, match="cannot tell SD from SPI"):
        map_channels({0: "CLK", 1: "DAT3", 2: "DAT0"}, 3)


@pytest.mark.parametrize(("mode", "mapping", "message"), [
    ("sd", "CLK=0", r"no channel for CMD .*channels 0=CLK, 1=X.*--map CMD=<index\|name>"),
    ("spi", None, "no channel for MOSI, MISO, CS"),
    ("sd", "CLK=9", "channel 9 does not exist"),
    ("sd", "CMD=Y", "no channel named 'Y'"),
    ("sd", "FOO=1", "unknown SD-mode signal 'FOO'"),
    ("sd", "CLK", "bad channel mapping 'CLK'"),
    ("jtag", None, "unknown mode 'jtag'"),
])
def test_mapping_errors_list_the_available_channels(mode: str, mapping: str | None,
                                                    message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        map_channels({0: "CLK", 1: "X"}, 4, mode, mapping)
