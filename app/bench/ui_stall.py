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

from app.bench.base import Benchmark, Result
from app.bench.startup import BenchError

__all__ = ["BENCHMARK", "PHASES"]

IMAGE_BYTES = 256 * 1024 * 1024
LATENCY = "0-500ms"
# (phase seconds, hang starts after, hang lasts) per size
PHASES = {"full": (14.0, 2.0, 10.0), "quick": (3.0, 0.5, 1.0)}
_TIMEOUT_S = 300.0
# more statements than any phase can finish (each block waits 0-500 ms for storage)
_WORKLOAD = "; ".join(["init"] + [f"write {n * 8} 8; read {n * 8} 8" for n in range(100)])


def run(quick: bool) -> Result:
    command = [sys.executable, "-m", "app.bench.ui_stall", *(["--quick"] if quick else [])]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=_TIMEOUT_S, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise BenchError(f"ui-stall: the child exited with {done.returncode} ({last})")


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

    async def phase(window: MainWindow, image: Path, legacy: bool) -> tuple[float, float]:
        session = window.session
        session.open(image, SimOptions(latency=LATENCY, legacy_sync=legacy))
        assert session.sim is not None
        faults = session.sim.storage.faults
        session.start(_WORKLOAD)
        heartbeat = Heartbeat(interval_ms=5)
        heartbeat.start()
        await asyncio.sleep(hang_at)
        faults.hang()
        threading.Timer(hang_for, faults.release).start()  # the loop may be stuck
        await asyncio.sleep(length - hang_at)
        heartbeat.stop()
        session.close()
        return heartbeat.max_gap_ms, heartbeat.p99_ms

    async def both() -> Result:
        with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
            image = Path(tmp) / "card.img"
            with image.open("wb") as f:
                f.truncate(IMAGE_BYTES)
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            window = MainWindow(settings)
            window.show()
            await asyncio.sleep(0.5)  # first layout and paint are not part of the phases
            async_max, async_p99 = await phase(window, image, legacy=False)
            legacy_max, legacy_p99 = await phase(window, image, legacy=True)
            window.close()
        return {
            "async_max_ms": round(async_max, 1),
            "async_p99_ms": round(async_p99, 1),
            "legacy_max_ms": round(legacy_max, 1),
            "legacy_p99_ms": round(legacy_p99, 1),
            "ratio": round(async_max / legacy_max, 5) if legacy_max else None,
            "latency": LATENCY,
            "hang_s": hang_for,
            "phase_s": length,
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
