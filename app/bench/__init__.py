"""The benchmark registry. Each module in ``_MODULES`` defines one ``BENCHMARK``; add a
benchmark by writing its module and appending it here."""

from __future__ import annotations

from app.bench import image_open, startup
from app.bench.base import Benchmark, Result

__all__ = ["BENCHMARKS", "Benchmark", "Result", "run_benchmark"]

_MODULES = (image_open, startup)

BENCHMARKS: dict[str, Benchmark] = {m.BENCHMARK.name: m.BENCHMARK for m in _MODULES}


def run_benchmark(name: str, *, quick: bool = False) -> Result:
    """Run one benchmark; the result's ``bench`` key names it."""
    return {"bench": name, **BENCHMARKS[name].run(quick)}
