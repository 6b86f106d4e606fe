"""`sdscope bench scale` and docs/perf/plots.py, on results of real quick benchmark runs."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.bench.scale import QUICK_SIZES, SAMPLERATE, run_child
from app.bench.startup import BenchError
from app.cli import build_parser, main
from app.cli.bench import format_result
from sdmodel.units import parse_frequency

PLOTS = Path(__file__).resolve().parents[2] / "docs" / "perf" / "plots.py"
PNGS = ("decode-scaling.png", "decode-memory.png", "render-zoom.png", "ui-stall.png")
SIZE_TOLERANCE = 0.05
PNG_WIDTH = 900


class Runs:
    """One quick run of the benchmarks the plots read: JSON lines and stderr."""

    def __init__(self, lines: list[str], stderr: str, path: Path) -> None:
        self.by_name: dict[str, dict[str, Any]] = {
            r["bench"]: r for r in (json.loads(line) for line in lines)}
        self.stderr = stderr
        self.path = path  # the JSON lines, as `sdscope bench --json > FILE` writes them

    @property
    def scale(self) -> dict[str, Any]:
        return self.by_name["scale"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["bench", "scale", "render", "ui-stall", "--json", "--quick"]) == 0
    path = tmp_path_factory.mktemp("results") / "results.jsonl"
    path.write_text(out.getvalue())
    return Runs(out.getvalue().splitlines(), err.getvalue(), path)


def plots(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PLOTS), *map(str, args)], capture_output=True,
                          text=True, timeout=120, check=False)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_quick_scale_measures_captures_of_1m_and_10m_samples(runs: Runs) -> None:
    result = runs.scale
    assert len(result["samples"]) == len(QUICK_SIZES)
    for samples, target in zip(result["samples"], QUICK_SIZES, strict=True):
        assert abs(samples - target) <= SIZE_TOLERANCE * target
    for key in ("generate_s", "sdscope_s", "file_mib", "generate_peak_mib"):
        assert all(value > 0 for value in result[key]), key
    assert all(peak >= base > 0 for peak, base in
               zip(result["sdscope_peak_mib"], result["sdscope_base_mib"], strict=True))
    assert result["largest_samples"] == result["samples"][-1]
    assert result["sdscope_ns_per_sample"] == pytest.approx(
        result["sdscope_s"][-1] * 1e9 / result["samples"][-1], abs=0.01)
    assert result["data_blocks"][0] < result["data_blocks"][1]


def test_sigrok_columns_are_measured_or_null_with_a_note(runs: Runs) -> None:
    result = runs.scale
    if shutil.which("sigrok-cli") is None:
        assert result["sigrok_s"] == [None] * len(QUICK_SIZES)
        assert "sigrok-cli is not installed" in result["note"]
    else:
        assert all(s > 0 for s in result["sigrok_s"])
        assert all(peak > 0 for peak in result["sigrok_peak_mib"])
        assert result["sigrok_ns_per_sample"] > 0


def test_decode_memory_does_not_grow_with_the_capture(runs: Runs) -> None:
    # 10x the samples: the streaming decoder's peak stays within half again of the smaller
    assert runs.scale["memory_growth"] < 1.5


def test_each_capture_comes_from_a_printed_simulate_command_line(runs: Runs) -> None:
    lines = [line.removeprefix("scale: ") for line in runs.stderr.splitlines()
             if line.startswith("scale: sdscope simulate ")]
    assert len(lines) == len(QUICK_SIZES)
    for line in lines:
        args = build_parser().parse_args(shlex.split(line)[1:])
        assert args.command == "simulate"
        assert args.sr.suffix == ".sr"
        assert args.samplerate == parse_frequency(SAMPLERATE)
        assert args.workload.startswith("init; write 0 ")


def test_table_row_shows_the_headline_and_scalar_fields(runs: Runs) -> None:
    row = format_result(runs.scale)
    assert row.split()[:3] == ["scale", f"{runs.scale['sdscope_ns_per_sample']:.1f}",
                               "sdscope_ns_per_sample"]
    assert "memory_growth=" in row and "largest_samples=" in row


def test_each_child_reports_its_own_peak_not_an_earlier_ones() -> None:
    allocate = [sys.executable, "-c", "import sys; b = b'x' * (300 << 20); print(len(b))"]
    big = run_child(allocate)
    small = run_child([sys.executable, "-c", "print('{}')"])
    assert big.peak_mib >= 300
    assert small.peak_mib < 50  # not the 300 MiB before it, nor this test process's peak
    assert big.stdout.strip() == str(300 << 20) and small.report() == {}


def test_a_failing_child_is_a_bench_error_with_its_last_line() -> None:
    with pytest.raises(BenchError, match="exited with 3 .*disk on fire"):
        run_child([sys.executable, "-c", "import sys; print('disk on fire', file=sys.stderr);"
                   " sys.exit(3)"])


def test_a_child_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    sleeper = (f"import os, pathlib, time; pathlib.Path({str(pid_file)!r})"
               ".write_text(str(os.getpid())); time.sleep(60)")
    with pytest.raises(BenchError, match="did not finish in 2 s"):
        run_child([sys.executable, "-c", sleeper], timeout_s=2)
    status = Path(f"/proc/{pid_file.read_text()}/status")
    deadline = time.monotonic() + 5
    while status.exists() and "State:\tZ" not in status.read_text() and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert not status.exists() or "State:\tZ" in status.read_text()  # killed with the launcher


def test_plots_writes_each_png_from_real_results(runs: Runs, tmp_path: Path) -> None:
    done = plots(runs.path, "--out", tmp_path / "png")
    assert done.returncode == 0, done.stderr
    for name in PNGS:
        path = tmp_path / "png" / name
        assert f"wrote {path}" in done.stdout
        width, height = png_size(path)
        assert width == PNG_WIDTH and 400 <= height <= 600


def test_plots_skips_a_benchmark_missing_from_the_file(runs: Runs, tmp_path: Path) -> None:
    only_scale = tmp_path / "scale.jsonl"
    only_scale.write_text(json.dumps(runs.scale) + "\n")
    done = plots(only_scale, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["decode-memory.png",
                                                              "decode-scaling.png"]
    assert done.stderr.splitlines() == ["plots: no render result; skipped render-zoom.png",
                                        "plots: no ui-stall result; skipped ui-stall.png"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("", "no benchmark results"),
    ("{\"bench\": \"scale\"\n", "line 1: not JSON"),
    ("[1, 2]\n", "line 1: not a result"),
    ("{\"samples\": [1]}\n", "line 1: not a result"),
    ("{\"bench\": \"scale\", \"samples\": \"many\"}\n", "no list of numbers 'samples'"),
    ("{\"bench\": \"scale\", \"samples\": [1, 2], \"sdscope_s\": [1]}\n",
     "2 x values but 1 y values"),
    ("{\"bench\": \"ui-stall\", \"async_series_ms\": [[0.1]], \"legacy_series_ms\": []}\n",
     "no [t, ms] pairs 'async_series_ms'"),
])
def test_plots_exits_2_with_one_line_on_a_bad_file(tmp_path: Path, content: str | None,
                                                   message: str) -> None:
    results = tmp_path / "results.jsonl"
    if content is not None:
        results.write_text(content)
    done = plots(results, "--out", tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("plots: ") and message in line
