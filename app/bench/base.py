"""What a benchmark is: a name, its headline metric and a function that measures it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Benchmark", "Result"]

Result = dict[str, float | int | str]


@dataclass(frozen=True)
class Benchmark:
    name: str  # what `sdscope bench NAME` takes and the "bench" key of its JSON line
    summary: str
    metric: str  # key of the headline number in the result, named after its unit ("ms", "s")
    run: Callable[[bool], Result]  # quick -> measurements (without the "bench" key)
    digits: int = 2  # decimals shown in the table
