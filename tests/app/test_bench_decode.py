"""`sdscope bench decode`: sdscope's decoder timed against sigrok-cli on one capture."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import app.bench.decode as decode_bench
from app.cli import main
from app.cli.bench import default_selection, select
from sdmodel.capture import read_sr
from sdmodel.decode import plan_decode

CAPTURES = Path(__file__).parents[2].parent / "shared" / "captures"
needs_captures = pytest.mark.skipif(
    not CAPTURES.is_dir(), reason=f"real captures not found at {CAPTURES}"
)
needs_sigrok = pytest.mark.skipif(shutil.which("sigrok-cli") is None,
                                  reason="sigrok-cli is not installed")
KEYS = ["bench", "file", "samples", "sdscope_s", "sigrok_s", "ratio"]


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_sr(path: Path, samples: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("version", "2")
        z.writestr("metadata", "[device 1]\ncapturefile=logic-1\ntotal probes=2\n"
                   "samplerate=1 MHz\nunitsize=1\nprobe1=CLK\nprobe2=CMD\n")
        z.writestr("logic-1-1", bytes([3, 2]) * (samples // 2))
    return path


@needs_captures
@needs_sigrok
def test_json_is_one_object_timing_both_decoders_on_the_largest_capture(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "bench", "decode", "--json", "--repeat", "1")
    assert (code, err) == (0, "")
    (line,) = out.splitlines()
    result = json.loads(line)
    assert list(result) == KEYS and result["bench"] == "decode"
    largest = max(CAPTURES.rglob("*.sr"), key=lambda p: read_sr(p).total_samples)
    assert result["file"] == str(largest)
    assert result["samples"] == read_sr(largest).total_samples
    assert isinstance(result["samples"], int)
    assert all(isinstance(result[k], float) and result[k] > 0
               for k in ("sdscope_s", "sigrok_s", "ratio"))
    assert result["ratio"] == pytest.approx(result["sdscope_s"] / result["sigrok_s"], rel=1e-3)


@needs_captures
def test_without_sigrok_cli_only_sdscope_is_timed(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without sigrok-cli
    capture = CAPTURES / "sd_mode" / "cmd13_r1.sr"
    code, out, _ = run(capsys, "bench", "decode", capture, "--json", "--repeat", "1")
    result = json.loads(out)
    assert code == 0 and list(result) == [*KEYS, "note"]
    assert (result["sigrok_s"], result["ratio"]) == (None, None)
    assert result["sdscope_s"] > 0 and "sigrok-cli is not installed" in result["note"]


@needs_captures
@needs_sigrok
def test_table_row_names_the_file_and_both_times(capsys: pytest.CaptureFixture[str]) -> None:
    capture = CAPTURES / "sd_mode" / "imx6_working_snippet.sr"
    code, out, _ = run(capsys, "bench", "decode", capture, "--repeat", "1")
    header, row = out.splitlines()
    assert code == 0 and header.split() == ["bench", "result", "details"]
    assert row.split()[:3:2] == ["decode", "sdscope_s"]
    assert f"file={capture}, samples=524288, sigrok_s=" in row and "ratio=" in row


@needs_captures
@pytest.mark.parametrize(("name", "decoders"), [
    ("sd_mode/cmd13_r1.sr", ["-P", "sdcard_sd:cmd=CMD:clk=CLK", "-A", "sdcard_sd=cmd"]),
    # probes 1-4 are named "0".."3"; sigrok calls unnamed probes by their index too
    ("sd_mode/cmd55_r1_acmd41_r3.sr",
     ["-P", "sdcard_sd:cmd=CMD:clk=CLK", "-A", "sdcard_sd=cmd"]),
    ("spi_mode/xmore_get_csd.sr",
     ["-P", "spi:clk=CLK:mosi=MOSI:miso=MISO:cs=CS#,sdcard_spi", "-A", "sdcard_spi"]),
    ("spi_mode/cmd17_read_single_block.sr",
     ["-P", "spi:clk=CLK:mosi=MOSI:miso=MISO:cs=CS#,sdcard_spi", "-A", "sdcard_spi"]),
])
def test_sigrok_command_maps_our_channels_and_reproduces_the_reference(
        name: str, decoders: list[str]) -> None:
    path = CAPTURES / name
    command = decode_bench.sigrok_command(plan_decode(path))
    assert command == ["sigrok-cli", "-i", str(path), *decoders]
    if shutil.which("sigrok-cli") is None:
        pytest.skip("sigrok-cli is not installed")
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    reference = CAPTURES / "sigrok-reference" / Path(name).with_suffix(".txt").name
    assert done.stdout == reference.read_text()


@needs_captures
@needs_sigrok
def test_a_sigrok_error_is_reported_although_sigrok_cli_exits_0() -> None:
    command = ["sigrok-cli", "-i", str(CAPTURES / "sd_mode" / "cmd13_r1.sr"),
               "-P", "sdcard_sd:cmd=NOPE:clk=CLK"]
    with pytest.raises(decode_bench.DecodeBenchError,
                       match=r"sigrok-cli failed \(exit 0\): cli: No channel with name "
                             r'"NOPE" found'):
        decode_bench.time_sigrok(command, 1)


def test_default_capture_is_the_one_with_most_samples(tmp_path: Path) -> None:
    make_sr(tmp_path / "small.sr", 100)
    (tmp_path / "deeper").mkdir()
    big = make_sr(tmp_path / "deeper" / "big.sr", 400)
    (tmp_path / "broken.sr").write_text("not a zip")
    assert decode_bench.default_capture(tmp_path) == big
    assert decode_bench.default_capture(tmp_path / "absent") is None


def test_no_capture_and_no_shared_folder_asks_for_a_path(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(decode_bench, "CAPTURES", tmp_path / "absent")
    code, out, err = run(capsys, "bench", "decode", "--json")
    assert (code, out) == (2, "")
    assert err.startswith("sdscope: error: no capture given") and err.count("\n") == 1
    assert "sdscope bench decode CAPTURE" in err


@pytest.mark.parametrize(("content", "message"), [
    (None, "missing.sr: no such capture file"),
    ("not a capture", "missing.sr: not a sigrok .sr file (not a zip archive)"),
])
def test_bad_capture_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, content: str | None,
                                            message: str) -> None:
    path = tmp_path / "missing.sr"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "bench", "decode", path)
    assert (code, out) == (2, "")
    assert err.endswith(f"{message}\n") and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "expected"), [
    (["decode"], [("decode", None)]),
    (["decode", "a.sr"], [("decode", Path("a.sr"))]),
    (["decode", "a.sr", "image-open"], [("decode", Path("a.sr")), ("image-open", None)]),
    (["image-open", "image-open"], [("image-open", None)]),
])
def test_a_file_after_a_benchmark_name_is_its_input(argv: list[str],
                                                    expected: list[tuple[str, Path | None]]
                                                    ) -> None:
    assert select(argv) == expected


@pytest.mark.parametrize("argv", [
    ["bench", "image-open", "a.sr"],  # image-open measures no file
    ["bench", "decode", "a.sr", "b.sr"],  # one file per benchmark
    ["bench", "image-open", "--repeat", "2"],  # --repeat is for benchmarks of a file
    ["bench", "decode", "--repeat", "0"],
])
def test_misuse_is_a_usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "") and err.startswith("sdscope: error: bench")


def test_run_all_skips_decode_without_a_default_capture(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(decode_bench, "CAPTURES", tmp_path / "absent")
    names = [name for name, _ in default_selection()]
    assert "decode" not in names and {"image-open", "startup"} <= set(names)
    assert "skipping decode" in capsys.readouterr().err
