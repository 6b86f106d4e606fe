"""``scale``: decode time and peak memory against capture size, sdscope and sigrok-cli.

Each capture is a simulated 4-bit SD session written as a sigrok ``.sr`` file by the
command line (printed to stderr for every size)

    sdscope simulate --image CARD --clock 2.5MHz --trace-budget B --sr FILE
        --samplerate 20MHz --workload "init; write 0 N pattern=random; read 0 N"

``CARD`` is a sparse 4 GiB SDHC image; N is chosen from short in-process calibration runs
(samples = a + b N) so the file holds about 10^6 ... 10^9 samples; the result lists the
exact counts. 20 MHz is 8 samples per period of the 2.5 MHz card clock, the ``.sr``
export's default rate for that clock; the 400 kHz initialisation is then 0.4 M samples,
so 10^6 samples are possible with data still in the majority (at 50 MHz the
initialisation alone is 10 M samples at the default rate).

Per size: the generation (that command line), sdscope's decode (``decode.time_sdscope``:
the whole CMD + DAT token stream, nothing printed, in ``python -m app.bench.scale FILE``)
and sigrok-cli's (``decode.sigrok_command`` run by ``decode.time_sigrok``) each run as a
child, one run each (10^9 samples take minutes). Every child is started by a small
launcher (``_LAUNCHER``) that times it and reads its peak RSS with ``os.wait4``: a process
starts with the peak of the process it was spawned from (Linux records the old memory's
high-water mark at ``exec``), so children of this process would all report at least its
own peak; the launcher's is ~8 MiB, the floor of every figure. The generation and
sigrok-cli are timed by the launcher from spawn to exit (process start included, as in
``bench decode``); sdscope's decode is timed inside its child (the decode alone).

``*_time_exponent`` is the log-log slope of time against samples between the two largest
sizes (1.0: linear); ``memory_growth`` is sdscope's peak RSS at the largest size over the
smallest (1.0: constant).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.bench.base import BenchError, Benchmark, Result, child_report, last_error_line
from app.bench.decode import SIGROK, sigrok_command, time_sdscope, time_sigrok
from sdmodel.capture import read_sr
from sdmodel.decode import plan_decode
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import PS_PER_S
from sdmodel.units import parse_frequency

__all__ = [
    "BENCHMARK",
    "QUICK_SIZES",
    "SIZES",
    "Calibration",
    "ChildRun",
    "SizeRun",
    "calibrate",
    "decode_sdscope",
    "decode_sigrok",
    "generate",
    "measure",
    "measure_size",
    "run_child",
    "simulate_args",
    "workload",
]

SIZES = (10**6, 10**7, 10**8, 10**9)
QUICK_SIZES = (10**6, 10**7)
CLOCK = "2.5MHz"  # card clock after init: an exact SDHCI divisor (400 ns period)
SAMPLERATE = "20MHz"  # 8 samples per card clock period
WORKLOAD = "init; write 0 {n} pattern=random; read 0 {n}"  # n write+read block pairs
IMAGE_BYTES = 4 * 1024**3  # SDHC; sparse
BLOCK_BYTES = 512
CALIBRATION_PAIRS = (32, 288)
# A storage operation slower than 20 ms of wall time (a busy machine) adds simulated time
# (SimClock.wait) and never removes any: each calibration point is the shortest of these runs.
CALIBRATION_RUNS = 2
CHILD_TIMEOUT_S = 3600.0
MIB = 1024 * 1024
_MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024  # unit of ru_maxrss

# `python -I -S -c _LAUNCHER REPORT COMMAND...`: runs COMMAND, writes "wall_s maxrss exit"
# to REPORT and exits with COMMAND's status. PR_SET_PDEATHSIG (Linux) ends COMMAND when
# the launcher is killed (a timeout), so no orphan keeps decoding.
_LAUNCHER = """\
import ctypes, os, signal, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(1, signal.SIGKILL)
    os.execvp(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {code}")
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True)
class ChildRun:
    """A finished child: its stdout, seconds from spawn to exit and its own peak RSS."""

    stdout: str
    wall_s: float
    peak_mib: float

    def report(self) -> dict[str, Any]:
        """The last JSON line the child printed."""
        report = child_report(self.stdout)
        if report is None:
            raise BenchError("scale: a decode child printed no result")
        return report


@dataclass(frozen=True)
class Calibration:
    """Samples of a capture of ``pairs`` write+read block pairs: ``base + per_pair * pairs``."""

    base: float
    per_pair: float

    def pairs_for(self, samples: int) -> int:
        return max(1, round((samples - self.base) / self.per_pair))


@dataclass(frozen=True)
class SizeRun:
    """The measurements of one capture size (a column each in the result)."""

    samples: int  # exact, as written to the file
    data_blocks: int  # written + read
    file_mib: float  # the .sr (zip) on disk
    generate_s: float  # the `sdscope simulate` child, interpreter start included
    generate_peak_mib: float
    sdscope_s: float
    sdscope_peak_mib: float
    sdscope_base_mib: float  # that child's peak before decoding (imports, capture opened)
    sigrok_s: float | None
    sigrok_peak_mib: float | None


def workload(pairs: int) -> str:
    return WORKLOAD.format(n=pairs)


def _mib(maxrss: int) -> float:
    return maxrss * _MAXRSS_BYTES / MIB


def _launched(command: list[str], report: Path) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *command]


def _read_report(report: Path, stdout: str) -> ChildRun:
    wall, maxrss, _ = report.read_text().split()
    return ChildRun(stdout, float(wall), _mib(int(maxrss)))


def run_child(command: list[str], timeout_s: float = CHILD_TIMEOUT_S) -> ChildRun:
    """Run ``command`` under the launcher; BenchError when it fails or times out."""
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        report = Path(tmp) / "rusage"
        try:
            done = subprocess.run(_launched(command, report), capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise BenchError(f"scale: {shlex.join(command[1:4])} ... did not finish in "
                             f"{timeout_s:.0f} s") from None
        if done.returncode != 0 or not report.exists():
            raise BenchError(f"scale: {shlex.join(command[1:4])} ... exited with "
                             f"{done.returncode} ({last_error_line(done.stderr)})")
        return _read_report(report, done.stdout)


async def _span_samples(image: Path, pairs: int) -> int:
    sim = Simulator(image, SimOptions(clock_hz=parse_frequency(CLOCK)))
    try:
        result = await sim.run(workload(pairs))
    finally:
        await sim.aclose()
    if not result.ok:
        raise BenchError(f"scale: calibration workload failed: {result.errors}")
    first, last = sim.trace.span()
    return -(-(last - first) * parse_frequency(SAMPLERATE) // PS_PER_S)  # as write_sr counts


def calibrate(image: Path) -> Calibration:
    """Samples per write+read pair and of the rest, from short runs in this process (the
    simulator options of ``simulate_args``)."""
    low, high = CALIBRATION_PAIRS
    at_low, at_high = (min(asyncio.run(_span_samples(image, n)) for _ in range(CALIBRATION_RUNS))
                       for n in (low, high))
    per_pair = (at_high - at_low) / (high - low)
    return Calibration(base=at_low - per_pair * low, per_pair=per_pair)


def simulate_args(image: Path, target: Path, pairs: int) -> list[str]:
    """The ``sdscope`` arguments that write a capture of ``pairs`` write+read pairs."""
    data = 2 * pairs * BLOCK_BYTES
    budget_mib = max(64, -(-2 * data // MIB))  # the export needs every payload bit kept
    return ["simulate", "--image", str(image), "--clock", CLOCK,
            "--trace-budget", f"{budget_mib}MiB", "--sr", str(target),
            "--samplerate", SAMPLERATE, "--workload", workload(pairs)]


def _check_disk(folder: Path, samples: int, pairs: int) -> None:
    """Room for the capture (bound: 1 byte per sample, uncompressed) and the image data."""
    needed = samples + pairs * BLOCK_BYTES
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise BenchError(f"scale: {samples:.0e} samples need up to {needed / 1e9:.1f} GB free "
                         f"in {folder}, only {free / 1e9:.1f} GB left")


def generate(image: Path, target: Path, pairs: int) -> ChildRun:
    """Run ``sdscope simulate ... --sr target`` as a child (printed to stderr)."""
    args = simulate_args(image, target, pairs)
    print(f"scale: {shlex.join(['sdscope', *args])}", file=sys.stderr, flush=True)
    return run_child([sys.executable, "-m", "app", *args])


def decode_sdscope(path: Path) -> tuple[float, float, float]:
    """(seconds, peak MiB, MiB before decoding) of sdscope decoding ``path`` in a child;
    the seconds are the decode alone, timed inside the child."""
    child = run_child([sys.executable, "-m", "app.bench.scale", str(path)])
    report = child.report()
    return float(report["s"]), child.peak_mib, float(report["base_mib"])


def decode_sigrok(path: Path) -> tuple[float, float] | str:
    """(seconds, peak MiB) of sigrok-cli decoding ``path``, or a note when it did not
    finish within ``decode.time_sigrok``'s timeout (its errors raise DecodeBenchError)."""
    executable = shutil.which(SIGROK) or SIGROK
    command = sigrok_command(plan_decode(path), executable)
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        report = Path(tmp) / "rusage"
        try:
            time_sigrok(_launched(command, report), 1)
        except subprocess.TimeoutExpired as timeout:
            return f"{SIGROK} did not finish {path.name} in {timeout.timeout:.0f} s"
        child = _read_report(report, "")
    return child.wall_s, child.peak_mib


def measure_size(folder: Path, image: Path, pairs: int, *, sigrok: bool
                 ) -> tuple[SizeRun, str | None]:
    """Generate a capture of ``pairs`` pairs in ``folder``, decode it with each tool and
    delete it; returns the measurements and a note about sigrok-cli, if any."""
    capture = folder / f"scale-{pairs}.sr"
    try:
        generated = generate(image, capture, pairs)
        samples = read_sr(capture).total_samples
        size = capture.stat().st_size
        sdscope_s, peak, base = decode_sdscope(capture)
        theirs = decode_sigrok(capture) if sigrok else None
    finally:
        capture.unlink(missing_ok=True)
    sigrok_s, sigrok_peak = theirs if isinstance(theirs, tuple) else (None, None)
    return SizeRun(
        samples=samples,
        data_blocks=2 * pairs,
        file_mib=round(size / MIB, 2),
        generate_s=round(generated.wall_s, 3),
        generate_peak_mib=round(generated.peak_mib, 1),
        sdscope_s=round(sdscope_s, 4),
        sdscope_peak_mib=round(peak, 1),
        sdscope_base_mib=round(base, 1),
        sigrok_s=None if sigrok_s is None else round(sigrok_s, 4),
        sigrok_peak_mib=None if sigrok_peak is None else round(sigrok_peak, 1),
    ), theirs if isinstance(theirs, str) else None


def _exponent(runs: list[SizeRun], seconds: list[float | None]) -> float | None:
    """Log-log slope of time against samples between the two largest sizes."""
    (n1, n2), (t1, t2) = (r.samples for r in runs[-2:]), seconds[-2:]
    if t1 is None or t2 is None or t1 <= 0 or t2 <= 0:
        return None
    return round(math.log(t2 / t1) / math.log(n2 / n1), 3)


def _growth(first: float | None, last: float | None) -> float | None:
    return None if first is None or last is None else round(last / first, 3)


def _ns_per_sample(seconds: float | None, samples: int) -> float | None:
    return None if seconds is None else round(seconds * 1e9 / samples, 2)


def measure(sizes: tuple[int, ...]) -> dict[str, Any]:
    """Generate, decode with both tools and delete one capture per size, smallest first."""
    if len(sizes) < 2:
        raise BenchError("scale: measure at least two sizes")
    sigrok = shutil.which(SIGROK) is not None
    notes = [] if sigrok else [f"{SIGROK} is not installed; only sdscope was measured"]
    runs: list[SizeRun] = []
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        image = Path(tmp) / "card.img"
        with image.open("wb") as f:
            f.truncate(IMAGE_BYTES)
        calibration = calibrate(image)
        for size in sizes:
            pairs = calibration.pairs_for(size)
            _check_disk(Path(tmp), size, pairs)
            run, note = measure_size(Path(tmp), image, pairs, sigrok=sigrok)
            runs.append(run)
            notes += [note] if note else []
    first, last = runs[0], runs[-1]
    result: dict[str, Any] = {
        "sdscope_ns_per_sample": _ns_per_sample(last.sdscope_s, last.samples),
        "sigrok_ns_per_sample": _ns_per_sample(last.sigrok_s, last.samples),
        "largest_samples": last.samples,
        "sdscope_time_exponent": _exponent(runs, [r.sdscope_s for r in runs]),
        "sigrok_time_exponent": _exponent(runs, [r.sigrok_s for r in runs]),
        "memory_growth": _growth(first.sdscope_peak_mib, last.sdscope_peak_mib),
        "sigrok_memory_growth": _growth(first.sigrok_peak_mib, last.sigrok_peak_mib),
        "clock": CLOCK,
        "samplerate": SAMPLERATE,
        "workload": WORKLOAD.format(n="N"),
    }
    result |= {f.name: [getattr(r, f.name) for r in runs] for f in fields(SizeRun)}
    if notes:
        result["note"] = "; ".join(dict.fromkeys(notes))
    return result


def run(quick: bool) -> Result:
    return measure(QUICK_SIZES if quick else SIZES)


def main(argv: list[str] | None = None) -> int:
    """``python -m app.bench.scale CAPTURE``: decode it once with sdscope and print
    ``{"s": seconds, "base_mib": peak RSS before decoding}``."""
    parser = argparse.ArgumentParser(prog="python -m app.bench.scale")
    parser.add_argument("capture", type=Path)
    path = parser.parse_args(argv).capture
    plan = plan_decode(path)
    base = _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps({"s": time_sdscope(plan, 1), "base_mib": round(base, 1)}))
    return 0


BENCHMARK = Benchmark(
    name="scale",
    summary="decode time and peak memory vs capture size (10^6-10^9 simulated samples), "
    "sdscope vs sigrok-cli",
    metric="sdscope_ns_per_sample",
    run=run,
    digits=1,
)

if __name__ == "__main__":
    sys.exit(main())
