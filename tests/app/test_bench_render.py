"""`sdscope bench render`: waveform frame times on a long simulated trace."""

from __future__ import annotations

import json

import pytest

from app.bench.render import QUICK_POSITIONS, QUICK_SAMPLES, trace_samples
from app.cli import main
from sdmodel.tokens import CommandToken
from sdmodel.trace import Trace


def test_quick_json_has_the_frame_times_of_a_10m_sample_trace(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "render", "--json", "--quick"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert result["bench"] == "render"
    assert isinstance(result["samples"], int) and result["samples"] >= QUICK_SAMPLES
    assert isinstance(result["max_frame_ms"], float)
    assert isinstance(result["median_frame_ms"], float)
    assert result["max_frame_ms"] >= result["median_frame_ms"] > 0
    levels = [key for key in result if key.startswith("max_ms_")]
    assert levels[-1] == "max_ms_60ns"  # down to 3 periods of the 50 MHz clock
    assert max(result[key] for key in levels) == result["max_frame_ms"]
    # the whole trace once, then each level at every position; each frame timed twice
    assert result["frames"] == 2 * (1 + (len(levels) - 1) * len(QUICK_POSITIONS))


def test_samples_are_the_span_at_the_default_sr_rate() -> None:
    # 50 MHz (20 000 ps) -> 8 samples per period -> 500 MHz; 1 ms -> 500 000 samples
    trace = Trace(tokens=[CommandToken(0, 960_000, 20_000),
                          CommandToken(10**9 - 960_000, 10**9, 20_000)])
    assert trace_samples(trace) == 500_000
