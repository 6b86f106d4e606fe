"""``sdscope simulate``: run a workload on the simulated card, controller and driver.

JSON Lines (``--jsonl FILE`` or ``-``) carry every trace item as it happens, with the
token schema of ``sdscope decode --jsonl`` plus ``reg``, ``irq`` and ``state`` events,
and a last ``summary`` object. ``--sr`` / ``--vcd`` export the waveform afterwards.
Exit status: 0 when every workload statement succeeded, 1 when some failed (the
summary says which), 2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from sdmodel.capture.export import export_trace
from sdmodel.capture.sr_write import ExportError
from sdmodel.driver.workload import StepResult
from sdmodel.images import resolve_image
from sdmodel.sim.breakpoints import BREAKPOINT_KINDS
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import PS_PER_S, Token
from sdmodel.units import parse_frequency, parse_size

__all__ = ["register", "run", "DEFAULT_WORKLOAD"]

DEFAULT_WORKLOAD = "init; read 0 8"
EXIT_WORKLOAD_FAILED = 1


def register(subparsers: Any) -> None:
    kinds = "; ".join(k.syntax for k in BREAKPOINT_KINDS.values())
    parser = subparsers.add_parser(
        "simulate",
        help="run a workload on the simulated card, SDHCI controller and host driver",
        description="Run a host workload against a simulated SD card backed by a disk image, "
        "in SD mode (SDHCI controller + Linux-like driver) or SPI mode (an elm-chan-like SPI "
        "host). Prints a summary; --jsonl streams every token, register access, interrupt "
        "and card state change; --sr/--vcd export the waveform for sigrok, PulseView or "
        "GTKWave. Exit status 0 if every statement succeeded, 1 if some failed.",
        epilog="Workload statements (';' or newline separated): init | read LBA COUNT | "
        "write LBA COUNT [pattern=0xNN|random|counter] | erase LBA COUNT | wait MS. "
        f"Breakpoints: {kinds}.",
    )
    parser.add_argument("--image", metavar="IMG", default="demo",
                        help="disk image backing the card ('demo' for the demo card; default)")
    parser.add_argument("--mode", choices=("sd", "spi"), default="sd", help="bus mode")
    parser.add_argument("--bus-width", type=int, choices=(1, 4), default=4,
                        help="SD mode: DAT lines after ACMD6 (default 4)")
    parser.add_argument("--clock", metavar="HZ", type=_frequency,
                        help="card clock after initialisation, e.g. 25MHz (default: the "
                        "fastest the card offers: 50 MHz High Speed in SD mode, 25 MHz SPI)")
    parser.add_argument("--workload", metavar="TEXT", default=DEFAULT_WORKLOAD,
                        help=f"driver requests (default: {DEFAULT_WORKLOAD!r})")
    parser.add_argument("--latency", metavar="SPEC", default="0",
                        help="storage latency per operation: 300ms, 0-500ms (random), 0")
    parser.add_argument("--fault", metavar="SPEC", action="append", default=[],
                        help="storage fault, repeatable: hang, eio=FIRST-LAST, "
                        "short-read=FIRST-LAST, disk-full[=SIZE]")
    parser.add_argument("--legacy-sync", action="store_true",
                        help="do storage I/O synchronously in the event loop (the old freeze)")
    parser.add_argument("--durable", action="store_true",
                        help="fsync each write before the card acknowledges it")
    parser.add_argument("--read-only", action="store_true",
                        help="open the image read-only: a write-protected card")
    parser.add_argument("--pio", action="store_true",
                        help="SD mode: move data through the buffer data port, not SDMA")
    parser.add_argument("--time-scale", metavar="X", type=float, default=1.0,
                        help="simulated seconds per wall second while storage is pending")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of random patterns and random latency (default 0)")
    parser.add_argument("--trace-budget", metavar="SIZE", type=parse_size, default="64MiB",
                        help="data payload the trace keeps (default 64MiB; older payloads "
                        "are dropped, their tokens kept)")
    parser.add_argument("--break", dest="breakpoints", metavar="SPEC", action="append",
                        default=[], help="stop at the first hit of this breakpoint "
                        "(repeatable), e.g. cmd=17, irq=DATA_TIMEOUT, state=prg")
    parser.add_argument("--jsonl", metavar="FILE", help="write JSON Lines ('-' for stdout)")
    parser.add_argument("--sr", metavar="FILE", type=Path,
                        help="export the waveform as a sigrok session (.sr)")
    parser.add_argument("--vcd", metavar="FILE", type=Path, help="export the waveform as VCD")
    parser.add_argument("--samplerate", metavar="HZ", type=_frequency,
                        help="sample rate of the .sr export (default: 8 samples per period "
                        "of the fastest clock)")
    parser.set_defaults(handler=run)


def _frequency(text: str) -> int:
    try:
        return parse_frequency(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _options(args: argparse.Namespace) -> SimOptions:
    return SimOptions(
        mode=args.mode, bus_width=args.bus_width, clock_hz=args.clock,
        use_dma=not args.pio, latency=args.latency, faults=tuple(args.fault),
        legacy_sync=args.legacy_sync, durable=args.durable, read_only=args.read_only,
        time_scale=args.time_scale, seed=args.seed, trace_budget=args.trace_budget,
        breakpoints=tuple(args.breakpoints),
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_simulate(args))


async def _simulate(args: argparse.Namespace) -> int:
    for target in (args.sr, args.vcd):  # fail before a long run, not after it
        if target is not None and not target.parent.is_dir():
            raise ExportError(f"{target}: {target.parent}: no such folder")
    sim = Simulator(resolve_image(args.image), _options(args))
    report: IO[str] = sys.stderr if args.jsonl == "-" else sys.stdout
    with ExitStack() as stack:
        jsonl = _open_jsonl(args.jsonl, stack)
        writer = None
        if jsonl is not None:
            writer = sim.trace.events.appended.connect(
                lambda item: _write_line(jsonl, item.to_json()))
        try:
            stopped = await _run_to_end_or_break(sim, args.workload, report)
        finally:
            if writer is not None:
                sim.trace.events.appended.disconnect(writer)  # the file may close next
            await sim.aclose()
        summary = sim.summary()
        if jsonl is not None:
            _write_line(jsonl, summary.to_json())
        _export(sim, args, stopped)
        print(summary.table(), file=report)
    failed = sim.result is not None and not sim.result.ok
    return EXIT_WORKLOAD_FAILED if failed else 0


def _open_jsonl(target: str | None, stack: ExitStack) -> IO[str] | None:
    if target is None:
        return None
    if target == "-":
        return sys.stdout
    # line-buffered: a reader (or a crash) sees every event that was reported
    return stack.enter_context(open(target, "w", encoding="utf-8", buffering=1))


def _write_line(stream: IO[str], obj: dict[str, Any]) -> None:
    stream.write(json.dumps(obj) + "\n")


async def _run_to_end_or_break(sim: Simulator, workload: str, report: IO[str]) -> int | None:
    """Run the workload; with breakpoints, stop at the first hit. Returns the horizon
    (simulated ps) the run stopped at, or None when it ran to the end."""

    def progress(result: StepResult) -> None:
        status = "ok" if result.ok else "; ".join(result.errors)
        print(f"statement {result.step.number} ({result.step.text}): {status}", file=report)

    task = asyncio.ensure_future(sim.run(workload, on_step=progress))
    hit = asyncio.Event()
    sim.scheduler.events.breakpoint.connect(lambda *_: hit.set())
    waiter = asyncio.ensure_future(hit.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # Ctrl-C: stop the workload before anything closes
        sim.storage.faults.release()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    finally:
        waiter.cancel()
    if task.done():
        task.result()  # bad workloads and driver bugs surface here
        return None
    await sim.scheduler.wait_parked()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sim.scheduler.hit is not None
    breakpoint_, item = sim.scheduler.hit
    print(f"stopped at breakpoint {breakpoint_}: {_describe(item)} at "
          f"{item.start / PS_PER_S * 1e3:.6f} ms", file=report)
    return sim.scheduler.horizon


def _describe(item: Token) -> str:
    return f"{item.kind} {item.label()}"


def _export(sim: Simulator, args: argparse.Namespace, stopped: int | None) -> None:
    if args.sr is None and args.vcd is None:
        return
    first, last = sim.trace.span()
    end = last if stopped is None else min(last, stopped)
    for path, fmt in ((args.sr, "sr"), (args.vcd, "vcd")):
        if path is not None:
            export_trace(sim.trace, path, fmt, t0=first, t1=end, samplerate=args.samplerate)
