"""``decode``: sdscope's capture decoder against ``sigrok-cli`` on the same file.

sdscope decodes the CMD and DAT lines (SPI: MOSI, MISO, CS#) in this process: the whole
token stream of ``decode_capture``, nothing printed. sigrok-cli decodes the CMD line only
(``sdcard_sd``; SPI captures: ``spi`` stacked with ``sdcard_spi``), as a child process, so
its time includes starting that process. Channels are passed to sigrok by their names in
the file, resolved by sdscope's channel mapping. Each side runs ``repeat`` times; the
result holds the medians and ``ratio = sdscope_s / sigrok_s`` (below 1: sdscope is faster).

The default capture is the shared capture with the most samples
(``<repo>/../shared/captures/**/*.sr``), when that folder exists.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections import deque
from pathlib import Path

from app.bench.base import BenchInput, Benchmark, Result
from sdmodel.capture import Capture, Mode, SrCapture, read_sr
from sdmodel.decode import DecodePlan, decode_capture, plan_decode
from sdmodel.errors import CaptureError, SdscopeError

__all__ = [
    "BENCHMARK",
    "CAPTURES",
    "DecodeBenchError",
    "default_capture",
    "measure",
    "sigrok_command",
    "time_sdscope",
    "time_sigrok",
]

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
SIGROK = "sigrok-cli"
_TIMEOUT_S = 600.0
_NOT_IN_OPTIONS = (":", "=", ",")  # separators of sigrok-cli's -P syntax

# sigrok decoder stack per mode: (-P decoder with its channel options, -A annotations).
# Channel options are sigrok's names (`sigrok-cli -P sdcard_sd --show`, `-P spi --show`)
# mapped to sdscope's roles; `sdcard_sd` reads CMD and CLK only, it ignores DAT0-3.
_SIGROK_DECODERS: dict[Mode, tuple[str, dict[str, str], str, str]] = {
    Mode.SD: ("sdcard_sd", {"cmd": "CMD", "clk": "CLK"}, "", "sdcard_sd=cmd"),
    Mode.SPI: ("spi", {"clk": "SCK", "mosi": "MOSI", "miso": "MISO", "cs": "CS"},
               ",sdcard_spi", "sdcard_spi"),
}


class DecodeBenchError(SdscopeError):
    """The decode benchmark has no capture to measure, or sigrok-cli failed on it."""


def _samples(capture: Capture) -> int:
    """Samples in a ``.sr``; value changes in a VCD (it has no samples)."""
    if isinstance(capture, SrCapture):
        return capture.total_samples
    return sum(len(signal.times) for signal in capture.signals)


def default_capture(folder: Path | None = None) -> Path | None:
    """The ``.sr`` file under ``folder`` (default ``CAPTURES``) with the most samples, or
    None without one."""
    folder = CAPTURES if folder is None else folder
    best: tuple[int, Path] | None = None
    for path in sorted(folder.rglob("*.sr")) if folder.is_dir() else ():
        try:
            samples = read_sr(path).total_samples
        except CaptureError:
            continue
        if best is None or samples > best[0]:
            best = (samples, path)
    return None if best is None else best[1]


def _sigrok_channel(plan: DecodePlan, role: str) -> str:
    index = plan.channels.roles[role]
    name = plan.channels.names.get(index) or str(index)  # sigrok names unnamed probes "N"
    if any(sep in name for sep in _NOT_IN_OPTIONS):
        raise DecodeBenchError(f"channel name {name!r} cannot be passed to sigrok-cli")
    return name


def sigrok_command(plan: DecodePlan, executable: str = SIGROK) -> list[str]:
    """The sigrok-cli command decoding ``plan``'s capture with the same channels."""
    decoder, channels, stacked, annotations = _SIGROK_DECODERS[plan.mode]
    options = "".join(f":{option}={_sigrok_channel(plan, role)}"
                      for option, role in channels.items())
    command = [executable, "-i", str(plan.capture.path)]
    if not isinstance(plan.capture, SrCapture):
        command += ["-I", "vcd"]
    return [*command, "-P", f"{decoder}{options}{stacked}", "-A", annotations]


def time_sdscope(plan: DecodePlan, repeat: int) -> float:
    """Median seconds of decoding the whole capture (every token, nothing printed)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        deque(decode_capture(plan.capture.path), maxlen=0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_sigrok(command: list[str], repeat: int) -> float:
    """Median seconds of running ``command``; raises DecodeBenchError if sigrok reports an
    error."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=_TIMEOUT_S, check=False)
        times.append(time.perf_counter() - start)
        # sigrok-cli exits 0 even when a channel or decoder is wrong; its errors say so.
        errors = [line for line in done.stderr.splitlines()
                  if line.startswith(("cli:", "srd:", "sr:"))]
        if done.returncode != 0 or errors:
            reason = (errors or done.stderr.strip().splitlines() or ["no output"])[0]
            raise DecodeBenchError(f"sigrok-cli failed (exit {done.returncode}): {reason}")
    return statistics.median(times)


def measure(path: Path | None, repeat: int) -> Result:
    """Decode ``path`` (default: ``default_capture()``) ``repeat`` times with each tool."""
    if repeat < 1:
        raise DecodeBenchError(f"repeat must be at least 1, not {repeat}")
    if path is None:
        path = default_capture()
        if path is None:
            raise DecodeBenchError(
                f"no capture given and no shared captures at {CAPTURES}; "
                "pass one: sdscope bench decode CAPTURE"
            )
    plan = plan_decode(path)
    result: Result = {"file": str(path), "samples": _samples(plan.capture)}
    sdscope_s = round(time_sdscope(plan, repeat), 6)
    executable = shutil.which(SIGROK)
    if executable is None:
        return {**result, "sdscope_s": sdscope_s, "sigrok_s": None, "ratio": None,
                "note": f"{SIGROK} is not installed; only sdscope was timed"}
    sigrok_s = round(time_sigrok(sigrok_command(plan, executable), repeat), 6)
    return {**result, "sdscope_s": sdscope_s, "sigrok_s": sigrok_s,
            "ratio": round(sdscope_s / sigrok_s, 4)}


def run(quick: bool) -> Result:
    return measure(None, 1 if quick else INPUT.repeat)


INPUT = BenchInput(metavar="CAPTURE", default=default_capture, measure=measure, repeat=3)

BENCHMARK = Benchmark(
    name="decode",
    summary="decode CAPTURE (default: the largest shared capture) vs sigrok-cli, median",
    metric="sdscope_s",
    run=run,
    digits=4,
    input=INPUT,
)
