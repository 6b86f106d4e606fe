"""``sdscope bench``: run the benchmarks of ``app.bench``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.bench import BENCHMARKS, run_benchmark
from app.cli.parser import UsageError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    listing = ", ".join(f"{b.name} ({b.summary})" for b in BENCHMARKS.values())
    parser = subparsers.add_parser(
        "bench",
        help="measure performance",
        description=f"Run benchmarks and print their results. Available: {listing}.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per benchmark and line"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        raise UsageError(
            f"bench: unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}"
        )
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    if not args.json:
        print(f"{'bench':<12} {'result':>12}  details")
    for name in names:
        result = run_benchmark(name, quick=args.quick)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(format_result(result), flush=True)
    return 0


def format_result(result: dict[str, Any]) -> str:
    """One table row: name, headline metric with its unit, the other fields."""
    bench = BENCHMARKS[result["bench"]]
    value = result[bench.metric]
    details = ", ".join(
        f"{k}={v}" for k, v in result.items() if k not in ("bench", bench.metric)
    )
    return f"{bench.name:<12} {value:>9.{bench.digits}f} {bench.metric:<2}  {details}"
