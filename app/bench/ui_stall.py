"""``ui-stall``: the window's largest event-loop gap while storage is slow and hangs.

One child process (offscreen Qt, one qasync loop, the real main window) runs the same
phase twice: a continuous write/read workload with 0-500 ms random storage latency and
a hang in the middle, first with asynchronous storage, then with legacy synchronous
storage (I/O in the loop thread: the old freeze). A 5 ms QTimer heartbeat records every
gap of the Qt event loop; the result compares the largest gaps. The hang is released by
a timer thread, because in legacy mode the loop itself is stuck in the hung read.

    python -m app.bench.ui_stall [--quick]     # what `sdscope bench ui-stall` spawns
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from app.bench.base import BenchError, Benchmark, Result, child_report, last_error_line
from sdmodel.heartbeat import percentile

__all__ = ["BENCHMARK", "PHASES"]

IMAGE_BYTES = 256 * 1024 * 1024
LATENCY = "0-500ms"
# (phase seconds, hang starts after, hang lasts) per size
PHASES = {"full": (14.0, 2.0, 10.0), "quick": (3.0, 0.5, 1.0)}
_TIMEOUT_S = 300.0
SERIES_BIN_S = 0.1  # the stall-over-time series: the largest gap per 100 ms of the phase
# more statements than any phase can finish (each block waits 0-500 ms for storage)
_WORKLOAD = "; ".join(["init"] + [f"write {n * 8} 8; read {n * 8} 8" for n in range(100)])


class GapRecord:
    """Every heartbeat gap of one phase with the time it ended (phase-relative seconds)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.ends: list[float] = []
        self.gaps_ms: list[float] = []

    def add(self, gap_ms: float) -> None:
        self.ends.append(time.perf_counter() - self._start)
        self.gaps_ms.append(gap_ms)

    @property
    def max_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def percentile_ms(self, q: float) -> float:
        return percentile(self.gaps_ms, q)

    def series(self, bin_s: float) -> list[list[float]]:
        """``[start of bin (s), largest gap ending in it (ms)]`` per non-empty bin; a gap
        counts in the bin where it ended (a 10 s freeze is one point at its end)."""
        bins: dict[int, float] = {}
        for end, gap in zip(self.ends, self.gaps_ms, strict=True):
            index = int(end / bin_s)
            bins[index] = max(bins.get(index, 0.0), gap)
        return [[round(i * bin_s, 2), round(g, 1)] for i, g in sorted(bins.items())]


def run(quick: bool) -> Result:
    command = [sys.executable, "-m", "app.bench.ui_stall", *(["--quick"] if quick else [])]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=_TIMEOUT_S, check=False)
    report = child_report(done.stdout)
    if report is not None:
        return report
    raise BenchError(f"ui-stall: the child exited with {done.returncode} "
                     f"({last_error_line(done.stderr)})")


def _child(quick: bool) -> Result:
    import asyncio

    import qasync

    from app.main_window import MainWindow
    from sdmodel.sim.simulator import SimOptions
    from widgets.heartbeat import Heartbeat
    from widgets.qt import QApplication, QSettings

    length, hang_at, hang_for = PHASES["quick" if quick else "full"]
    app = QApplication.instance() or QApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def phase(window: MainWindow, image: Path, legacy: bool) -> GapRecord:
        session = window.session
        session.open(image, SimOptions(latency=LATENCY, legacy_sync=legacy))
        assert session.sim is not None
        faults = session.sim.storage.faults
        session.start(_WORKLOAD)
        heartbeat = Heartbeat(interval_ms=5)
        record = GapRecord()
        heartbeat.sigGap.connect(record.add)
        heartbeat.start()
        await asyncio.sleep(hang_at)
        faults.hang()
        threading.Timer(hang_for, faults.release).start()  # the loop may be stuck
        await asyncio.sleep(length - hang_at)
        heartbeat.stop()
        session.close()
        return record

    async def both() -> Result:
        with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
            image = Path(tmp) / "card.img"
            with image.open("wb") as f:
                f.truncate(IMAGE_BYTES)
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            window = MainWindow(settings)
            window.show()
            await asyncio.sleep(0.5)  # first layout and paint are not part of the phases
            asynchronous = await phase(window, image, legacy=False)
            legacy = await phase(window, image, legacy=True)
            window.close()
        return {
            "async_max_ms": round(asynchronous.max_ms, 1),
            "async_p99_ms": round(asynchronous.percentile_ms(99.0), 1),
            "legacy_max_ms": round(legacy.max_ms, 1),
            "legacy_p99_ms": round(legacy.percentile_ms(99.0), 1),
            "ratio": round(asynchronous.max_ms / legacy.max_ms, 5) if legacy.max_ms else None,
            "latency": LATENCY,
            "hang_s": hang_for,
            "phase_s": length,
            "async_series_ms": asynchronous.series(SERIES_BIN_S),
            "legacy_series_ms": legacy.series(SERIES_BIN_S),
        }

    start = time.perf_counter()
    try:
        result = loop.run_until_complete(both())
    finally:
        loop.close()
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench.ui_stall")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps({"bench": "ui-stall", **_child(args.quick)}))
    return 0


BENCHMARK = Benchmark(
    name="ui-stall",
    summary=f"largest event-loop gap with {LATENCY} storage latency and a hang, async vs "
    "legacy-sync storage",
    metric="async_max_ms",
    run=run,
    digits=1,
)

if __name__ == "__main__":
    sys.exit(main())
