"""``startup``: cold start of ``python -m app gui`` to the first painted window.

The child runs offscreen and quits at once (``--quit-after 0``); ``app.startup`` says how
it reports its first paint. Process creation and interpreter start are included.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from app.bench.base import BenchError, Benchmark, Result, child_report, last_error_line
from app.startup import STARTUP_ENV
from sdmodel.images import ensure_demo_image

__all__ = ["BENCHMARK", "measure_once"]

_TIMEOUT_S = 60.0


def measure_once() -> float:
    """Seconds from spawning the GUI process to its first painted window."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", STARTUP_ENV: repr(time.time())}
    command = [sys.executable, "-m", "app", "gui", "--image", "demo", "--quit-after", "0"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    report = child_report(done.stdout)
    if report is not None and "startup_s" in report and done.returncode == 0:
        return float(report["startup_s"])
    raise BenchError(f"startup: the GUI exited with {done.returncode} and no timing "
                     f"({last_error_line(done.stderr)})")


def run(quick: bool) -> Result:
    ensure_demo_image()  # created once, outside the measurement
    runs = 1 if quick else 5
    times = [measure_once() for _ in range(runs)]
    return {"s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "runs": runs}


BENCHMARK = Benchmark(
    name="startup",
    summary="cold start to the first painted window (offscreen), median",
    metric="s",
    run=run,
    digits=3,
)
