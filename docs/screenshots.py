"""Make the README's screenshots from the real window: ``make screenshots`` (under xvfb).

1. ``screenshot-cmd17.png``: a CMD17 read stopped by a breakpoint and stepped through its
   exchange, every panel showing that moment.
2. ``screenshot-capture.png``: the real i.MX6 capture, decoded.
3. ``screenshot-slow-storage.png``: a 300 ms backing store: the long N_AC of a read and the
   controller's data-timeout interrupt, then the driver's recovery.
4. ``lessons/<id>.png`` for lessons 3, 4 and 8, walked through the Lesson panel.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import qasync

from app.main_window import MainWindow
from app.session import SessionState
from sdmodel.images import create_image
from sdmodel.lessons import captures_dir, find_lesson
from sdmodel.sim.scheduler import StepUnit
from sdmodel.sim.simulator import SimOptions
from widgets.qt import QApplication, QSettings

DOCS = Path(__file__).resolve().parent
SIZE = (1600, 1000)


async def wait_for(condition: object, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > end:
            raise TimeoutError("the window did not get there")
        await asyncio.sleep(0.05)


async def settle(window: MainWindow) -> None:
    await asyncio.sleep(0.6)
    window.waveform.settle()
    QApplication.sendPostedEvents()
    await asyncio.sleep(0.2)


async def shoot(window: MainWindow, name: str) -> None:
    await settle(window)
    path = DOCS / name
    if not window.grab().save(str(path)):
        raise OSError(f"cannot write {path}")
    print(f"wrote {path}")


def zoom_on(window: MainWindow, t0: int, t1: int) -> None:
    window.waveform.set_following(False)
    margin = (t1 - t0) // 10
    window.waveform.show_range(t0 - margin, t1 + margin)


async def cmd17(window: MainWindow, image: Path) -> None:
    await window.open_image(image)
    window.breakpoints_dock.editor.set_specs(["cmd=17"])
    window.controls.workload.setText("init; read 0 1; read 8 1")
    window.controls.run()
    await wait_for(lambda: window.session.state == SessionState.PAUSED)
    window.breakpoints_dock.editor.clear()
    sim = window.session.sim
    assert sim is not None and sim.scheduler.hit is not None
    start = sim.scheduler.hit[1].start  # CMD17 (a step forgets the hit)
    await window.session.step(StepUnit.COMMAND)
    zoom_on(window, start, sim.scheduler.horizon)
    window.registers_dock.raise_()
    await shoot(window, "screenshot-cmd17.png")
    window.session.run()
    await wait_for(lambda: window.session.state == SessionState.IDLE)


async def capture(window: MainWindow) -> None:
    await window.open_capture(captures_dir() / "imx6_working_snippet.sr")
    window.waveform.zoom_to_fit()
    await shoot(window, "screenshot-capture.png")


async def slow_storage(window: MainWindow, image: Path) -> None:
    window.session.open(image, SimOptions(latency="0"))
    window.breakpoints_dock.editor.set_specs(["irq=DATA_TIMEOUT"])
    window.controls.workload.setText("init; read 100 1")
    sim = window.session.sim
    assert sim is not None

    def slow_after_init(request: object) -> None:
        if getattr(request, "op", "") == "init" and getattr(request, "done", False):
            sim.storage.faults.latency = 0.3  # a 300 ms backing store from here on

    sim.host.events.request.connect(slow_after_init)
    window.controls.run()
    await wait_for(lambda: window.session.state == SessionState.PAUSED)
    hit = sim.scheduler.hit
    assert hit is not None
    read = [t for t in sim.trace if t.kind == "cmd" and t.index == 17][-1]
    zoom_on(window, read.start, hit[1].end)
    window.irq_dock.raise_()
    await shoot(window, "screenshot-slow-storage.png")
    window.breakpoints_dock.editor.clear()
    sim.storage.faults.latency = 0.0
    window.session.run()
    await wait_for(lambda: window.session.state == SessionState.IDLE)


async def lesson(window: MainWindow, name: str) -> None:
    """Run every step of a lesson through the Lesson panel, then picture the last one."""
    chosen = find_lesson(name)
    window.start_lesson(chosen)
    for step in chosen.steps:
        window.lesson_dock.panel.go_to_step(step.index)
        task = window.lesson_dock.show_me(step)
        assert task is not None
        report = await task
        assert report is not None and report.ok, f"{chosen.id} step {step.number} failed"
    (DOCS / "lessons").mkdir(exist_ok=True)
    await shoot(window, f"lessons/{chosen.id}.png")


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sdscope-shots-") as tmp:
        image = create_image(Path(tmp) / "card.img", 1024**3, fat=True)
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings)
        window.resize(*SIZE)
        window.show()
        await asyncio.sleep(0.5)
        await cmd17(window, image)
        await capture(window)
        await slow_storage(window, image)
        for name in ("03", "04", "08"):
            await lesson(window, name)
        window.close()
    return 0


if __name__ == "__main__":
    app = QApplication.instance() or QApplication(sys.argv)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        code = loop.run_until_complete(main())
    finally:
        loop.close()  # stops the default executor's threads (capture decoding) before exit
    sys.exit(code)
