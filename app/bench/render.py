"""``render``: frames of the waveform view on a 100 M-sample trace (offscreen, 1600x900).

The trace: a simulated SD session (4-bit bus at 50 MHz on a FAT card image: ``init``,
then ``BODY``'s reads and writes) whose post-init part is repeated, shifted in time, until
the trace holds ``SAMPLES`` samples. Samples are counted as a ``.sr`` export would write
them: the span of the trace at the export's default rate (8 samples per period of the
fastest clock: 50 MHz -> 500 MHz, so 100 M samples = 0.2 s of bus time).

A frame is a range change followed by ``QWidget.grab()`` (range -> edges/tiles -> paint);
the view is set up (fonts, glyph caches) by one untimed frame before the trace is set.
Windows go from the whole trace down to 3 clock periods, by factors of 10, at several
positions each. Every timed frame starts from what earlier frames left cached: it
computes tiles within its budget and shows the rest as pending; then (untimed) the
missing tiles are computed, as the view's background timer would, and the complete
picture is timed too. ``overview_s`` is the time that background work took for the
whole-trace view.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.bench.base import Benchmark, Result
from sdmodel.capture.sr_write import default_samplerate
from sdmodel.images import create_image
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import PS_PER_S
from sdmodel.trace import Trace
from sdmodel.waveform import is_bus_token

if TYPE_CHECKING:
    from widgets.waveform import WaveformView

__all__ = ["BENCHMARK", "SAMPLES", "QUICK_SAMPLES", "build_trace", "trace_samples", "measure"]

SAMPLES = 100_000_000
QUICK_SAMPLES = 10_000_000  # the 400 kHz init alone is ~10 M samples
SIZE = (1600, 900)
BODY = "read 0 64; write 64 32 pattern=random; read 1000 8; read 2000 1"
IMAGE_BYTES = 64 * 1024**2
GAP_PS = 100_000  # between repetitions of the body
POSITIONS = (0.1, 0.3, 0.5, 0.7, 0.9)  # window centres, as fractions of the trace
QUICK_POSITIONS = (0.2, 0.7)
SMALLEST_CLOCKS = 3  # the narrowest window, in clock periods


def trace_samples(trace: Trace) -> int:
    """Samples of the trace's bus span at the ``.sr`` export's default rate."""
    bus = [t for t in trace if is_bus_token(t) and t.period]
    if not bus:
        return 0
    start, end = trace.span()
    rate = default_samplerate(min(t.period for t in bus))
    return (end - start) * rate // PS_PER_S


async def _simulate(image: Path) -> tuple[Trace, int]:
    sim = Simulator(image, SimOptions(mode="sd", bus_width=4))
    try:
        await sim.run("init")
        split = len(sim.trace)
        await sim.run(BODY)
    finally:
        await sim.aclose()
    return sim.trace, split


def build_trace(samples: int) -> Trace:
    """A simulated session with its post-init part repeated up to ``samples`` samples."""
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        session, split = asyncio.run(_simulate(create_image(Path(tmp) / "card.img",
                                                            IMAGE_BYTES, fat=True)))
    body = session.tokens[split:]
    trace = Trace(tokens=session.tokens[:split])
    first, end = body[0].start, session.span()[1]
    rate = default_samplerate(min(t.period for t in body if is_bus_token(t) and t.period))
    target = trace.span()[0] + -(-samples * PS_PER_S // rate)
    shift = 0
    while trace.span()[1] < target:
        for token in body:
            trace.append(dataclasses.replace(token, start=token.start + shift,
                                             end=token.end + shift))
        shift += end - first + GAP_PS
    return trace


def _label(ps: int) -> str:
    """A window width as a key suffix: 200ms, 20us, 60ns."""
    for unit, scale in (("s", PS_PER_S), ("ms", 10**9), ("us", 10**6), ("ns", 10**3)):
        if ps >= scale:
            return f"{ps / scale:.3g}{unit}"
    return f"{ps}ps"


def _frame(view: WaveformView, cpu: list[float]) -> float:
    """Wall milliseconds of one grab(); its thread CPU milliseconds go to ``cpu`` (on a
    shared machine the difference is time other processes took)."""
    start, start_cpu = time.perf_counter(), time.thread_time()
    view.grab()
    cpu.append((time.thread_time() - start_cpu) * 1000.0)
    return (time.perf_counter() - start) * 1000.0


_APP: list[object] = []  # a QApplication this module created, alive until exit


def _view() -> WaveformView:
    """A view painted once (fonts and axes set up), never shown on a screen."""
    from widgets.qt import QApplication, Qt

    if QApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _APP.append(QApplication([]))
    from widgets.waveform import WaveformView

    view = WaveformView()
    view.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    view.resize(*SIZE)
    view.show()
    view.grab()
    return view


def measure(trace: Trace, positions: tuple[float, ...]) -> Result:
    """Frame times of a WaveformView showing ``trace``, from the whole trace down to
    SMALLEST_CLOCKS clock periods."""
    view = _view()
    try:
        start, end = trace.span()
        period = min(t.period for t in trace if is_bus_token(t) and t.period)
        # one untimed frame of labelled boxes loads the fonts and glyph caches
        view.set_trace(trace)
        view.show_range(end - 1000 * period, end)
        view.grab()
        gc.collect()  # the trace's construction, not a frame, pays for its garbage
        view.set_trace(trace)  # again: empty caches, zoomed to fit
        frames: list[float] = []
        cpu: list[float] = []
        result: Result = {}
        pending = 0
        width = end - start
        overview_s = 0.0
        while True:
            width = max(width, SMALLEST_CLOCKS * period)
            level: list[float] = []
            for fraction in positions if width < end - start else (0.5,):
                centre = start + round((end - start) * fraction)
                view.show_range(centre - width // 2, centre - width // 2 + width)
                level.append(_frame(view, cpu))
                pending += view.pending()
                began = time.perf_counter()
                view.settle()
                if width >= end - start:
                    overview_s = time.perf_counter() - began
                level.append(_frame(view, cpu))
            frames += level
            result[f"max_ms_{_label(width)}"] = round(max(level), 2)
            if width == SMALLEST_CLOCKS * period:
                break
            width //= 10
    finally:
        view.close()
        del view
        gc.collect()  # pyqtgraph's cycles go while Qt is still up
    return {
        "max_frame_ms": round(max(frames), 2),
        "median_frame_ms": round(statistics.median(frames), 2),
        "max_frame_cpu_ms": round(max(cpu), 2),
        "frames": len(frames),
        "pending_frames": pending,
        "overview_s": round(overview_s, 3),
        **result,
    }


def run(quick: bool) -> Result:
    began = time.perf_counter()
    trace = build_trace(QUICK_SAMPLES if quick else SAMPLES)
    built = time.perf_counter() - began
    return {"samples": trace_samples(trace), "tokens": len(trace),
            **measure(trace, QUICK_POSITIONS if quick else POSITIONS),
            "trace_s": round(built, 3)}


BENCHMARK = Benchmark(
    name="render",
    summary="waveform frames (range change -> paint) on a 100 M-sample trace, worst",
    metric="max_frame_ms",
    run=run,
    digits=2,
)
