"""The benchmark registry. Each module in ``_MODULES`` defines one ``BENCHMARK``; add a
benchmark by writing its module and appending it here."""

from __future__ import annotations

from pathlib import Path

from app.bench import decode, image_open, render, scale, simulate, startup, ui_stall
from app.bench.base import BenchInput, Benchmark, Result

__all__ = ["BENCHMARKS", "Benchmark", "BenchInput", "Result", "run_benchmark"]

_MODULES = (image_open, startup, ui_stall, simulate, decode, render, scale)

BENCHMARKS: dict[str, Benchmark] = {m.BENCHMARK.name: m.BENCHMARK for m in _MODULES}


def run_benchmark(
    name: str, *, quick: bool = False, path: Path | None = None, repeat: int | None = None
) -> Result:
    """Run one benchmark; the result's ``bench`` key names it. ``path`` and ``repeat`` are
    for benchmarks that measure a file (``Benchmark.input``); others ignore them."""
    bench = BENCHMARKS[name]
    if bench.input is None or (path is None and repeat is None):
        return {"bench": name, **bench.run(quick)}
    count = repeat if repeat is not None else 1 if quick else bench.input.repeat
    return {"bench": name, **bench.input.measure(path, count)}
