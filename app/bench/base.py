"""What a benchmark is: a name, its headline metric and a function that measures it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdmodel.errors import SdscopeError

__all__ = ["BenchError", "Benchmark", "BenchInput", "Result", "child_report", "last_error_line"]

# figures, their units in the key names; lists are series (per size, per 100 ms bin...)
Result = dict[str, float | int | str | None | list[Any]]


@dataclass(frozen=True)
class BenchInput:
    """The file a benchmark measures: ``sdscope bench NAME [FILE] [--repeat N]``."""

    metavar: str  # how the command line names the file ("CAPTURE")
    default: Callable[[], Path | None]  # the file used when none is given; None: no default
    measure: Callable[[Path | None, int], Result]  # (file or None for the default, repeat)
    repeat: int = 3  # repetitions without --repeat (1 with --quick)


@dataclass(frozen=True)
class Benchmark:
    name: str  # what `sdscope bench NAME` takes and the "bench" key of its JSON line
    summary: str
    metric: str  # key of the headline number in the result, named after its unit ("ms", "s")
    run: Callable[[bool], Result]  # quick -> measurements (without the "bench" key)
    digits: int = 2  # decimals shown in the table
    input: BenchInput | None = None  # set for benchmarks that measure a user's file


class BenchError(SdscopeError):
    """A benchmark could not measure what it should."""


def child_report(stdout: str) -> dict[str, Any] | None:
    """The last JSON object a benchmark's child process printed on a line of its own."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            report: dict[str, Any] = json.loads(line)
            return report
    return None


def last_error_line(stderr: str) -> str:
    """What a failed child said last, for a one-line error."""
    return (stderr.strip().splitlines() or ["no output"])[-1]
