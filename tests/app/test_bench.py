"""`sdscope bench`: JSON lines with a "bench" key, and a readable table."""

from __future__ import annotations

import json

import pytest

from app.bench import BENCHMARKS
from app.cli import main
from app.cli.bench import default_selection


def test_quick_json_has_one_line_per_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", "--quick"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # every benchmark, except one that measures a file when there is no default file
    assert [r["bench"] for r in lines] == [name for name, _ in default_selection()]
    for result in lines:
        assert result[BENCHMARKS[result["bench"]].metric] > 0
    by_name = {r["bench"]: r for r in lines}
    assert by_name["image-open"]["ms"] > 0
    assert by_name["image-open"]["image_bytes"] == 64 * 1024**3
    assert 0 < by_name["startup"]["s"] < 30
    stall = by_name["ui-stall"]
    assert {"async_max_ms", "async_p99_ms", "legacy_max_ms", "ratio"} <= stall.keys()
    assert stall["ratio"] == pytest.approx(stall["async_max_ms"] / stall["legacy_max_ms"],
                                           rel=1e-3, abs=1e-4)
    # the legacy phase includes the hang inside the event loop: it must show as a freeze
    assert stall["legacy_max_ms"] > stall["async_max_ms"]
    simulate = by_name["simulate"]
    assert simulate["transaction_mb_s"] > 0 and simulate["waveform_mb_s"] > 0


def test_table_names_the_benchmark_and_its_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "image-open", "--quick"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["bench", "result", "details"]
    assert row.split()[0] == "image-open"
    assert row.split()[2] == "ms"
    assert "runs=5" in row
