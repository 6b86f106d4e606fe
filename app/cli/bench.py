"""``sdscope bench``: run the benchmarks of ``app.bench``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.bench import BENCHMARKS, run_benchmark
from app.cli.parser import UsageError

__all__ = ["register", "run", "format_result", "select", "default_selection"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def register(subparsers: Any) -> None:
    listing = ", ".join(f"{b.name} ({b.summary})" for b in BENCHMARKS.values())
    with_input = [f"{b.name} {b.input.metavar}" for b in BENCHMARKS.values() if b.input]
    parser = subparsers.add_parser(
        "bench",
        help="measure performance",
        description=f"Run benchmarks and print their results. Available: {listing}. "
        f"A benchmark that measures a file takes it after its name: {', '.join(with_input)}.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per benchmark and line"
    )
    parser.add_argument("--quick", action="store_true",
                        help="the CI size: fewer repetitions, smaller traces and captures, "
                        "shorter phases")
    parser.add_argument("--repeat", type=_positive, metavar="N",
                        help="repetitions of benchmarks that measure a file (default 3; "
                        "the median is reported)")
    parser.set_defaults(handler=run, intermixed="names")


def select(names: list[str]) -> list[tuple[str, Path | None]]:
    """``["decode", "x.sr", "startup"]`` -> ``[("decode", Path("x.sr")), ("startup", None)]``:
    a word that names no benchmark is the file of the benchmark before it."""
    chosen: list[tuple[str, Path | None]] = []
    for word in names:
        if word in BENCHMARKS:
            chosen.append((word, None))
            continue
        if chosen and chosen[-1][1] is None and BENCHMARKS[chosen[-1][0]].input is not None:
            chosen[-1] = (chosen[-1][0], Path(word))
            continue
        raise UsageError(
            f"bench: unknown benchmark {word!r}; choose from {', '.join(BENCHMARKS)}"
        )
    return list(dict.fromkeys(chosen))


def default_selection() -> list[tuple[str, Path | None]]:
    """Every benchmark; one that needs a file and has no default is skipped with a note."""
    chosen: list[tuple[str, Path | None]] = []
    for bench in BENCHMARKS.values():
        if bench.input is not None and bench.input.default() is None:
            print(f"bench: skipping {bench.name} (no default {bench.input.metavar}; "
                  f"run 'sdscope bench {bench.name} {bench.input.metavar}')", file=sys.stderr)
            continue
        chosen.append((bench.name, None))
    return chosen


def run(args: argparse.Namespace) -> int:
    chosen = select(args.names) if args.names else default_selection()
    if args.repeat is not None and not any(BENCHMARKS[n].input for n, _ in chosen):
        takes = ", ".join(b.name for b in BENCHMARKS.values() if b.input)
        raise UsageError(f"bench: --repeat applies only to benchmarks that measure a file "
                         f"({takes})")
    for number, (name, path) in enumerate(chosen):
        result = run_benchmark(name, quick=args.quick, path=path, repeat=args.repeat)
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        if number == 0:  # after the first result, so an error is the only output
            print(f"{'bench':<12} {'result':>12}  details")
        print(format_result(result), flush=True)
    return 0


def format_result(result: dict[str, Any]) -> str:
    """One table row: name, headline metric with its unit, the other scalar fields (series
    such as the stall over time are for ``--json`` and the plots)."""
    bench = BENCHMARKS[result["bench"]]
    value = result[bench.metric]
    details = ", ".join(
        f"{k}={v}" for k, v in result.items()
        if k not in ("bench", bench.metric) and not isinstance(v, list | dict)
    )
    return f"{bench.name:<12} {value:>9.{bench.digits}f} {bench.metric:<2}  {details}"
