"""The IRQ timeline: lanes for the IRQ line and each status bit that latched in a run with
a data timeout, levels that rise when the status latches and fall at the driver's
write-1-to-clear of 0x30, "ack" ticks at those writes, live updates, the shared X axis
and cursors."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from sdmodel.sdhci.registers import ErrorInt, NormalInt
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import PS_PER_S
from sdmodel.trace import IrqEvent, RegisterEvent, Trace
from widgets.irq_timeline import IRQ_LANE, STATUS_BITS, IrqTimeline
from widgets.qt import QtGui, pg

GIB = 1 << 30
BIT = {f.name: bit for bit, f in STATUS_BITS.items()}  # lane name -> bit of the 32-bit 0x30
DATA_TIMEOUT = 16 + ErrorInt.DATA_TIMEOUT.bit_length() - 1


@pytest.fixture(scope="module")
def timeout_run(tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    """init; read 0 1 with storage slower than the data timeout for the first read (its
    latency x time scale = 1 s simulated, against the driver's 100 ms), then fast again."""
    path = tmp_path_factory.mktemp("irq") / "card.img"
    with path.open("wb") as f:
        f.truncate(4 * GIB)

    async def run() -> Simulator:
        sim = Simulator(path, SimOptions(time_scale=20.0))

        def slow_after_init(request: Any) -> None:
            if request.op == "init" and request.done:
                sim.storage.faults.latency = 0.05

        def fast_after_timeout(level: bool, status: int) -> None:
            if status >> 16 & ErrorInt.DATA_TIMEOUT:
                sim.storage.faults.latency = 0.0

        sim.host.events.request.connect(slow_after_init)
        assert sim.controller is not None
        sim.controller.events.irq.connect(fast_after_timeout)
        try:
            await sim.run("init; read 0 1")
        finally:
            await sim.aclose()
        return sim

    return asyncio.run(run())


@pytest.fixture
def timeline(qtbot: Any, timeout_run: Simulator) -> IrqTimeline:
    view = IrqTimeline(timeout_run.trace)
    qtbot.addWidget(view)
    return view


def w1c_writes(trace: Trace, bit: int) -> list[int]:
    """Times of the driver's writes to 0x30 that cleared ``bit`` (32-bit accesses)."""
    return [t.start for t in trace if isinstance(t, RegisterEvent) and t.access == "write"
            and t.offset == 0x30 and t.width == 4 and t.old >> bit & 1 and not t.new >> bit & 1]


def test_lanes_of_a_run_with_a_data_timeout(timeline: IrqTimeline) -> None:
    assert timeline.lanes() == [IRQ_LANE, "CMD_COMPLETE", "XFER_COMPLETE", "DATA_TIMEOUT"]


@pytest.mark.parametrize("name", ["CMD_COMPLETE", "XFER_COMPLETE", "DATA_TIMEOUT"])
def test_ack_ticks_sit_at_the_w1c_writes(timeline: IrqTimeline, timeout_run: Simulator,
                                         name: str) -> None:
    trace = timeout_run.trace
    end = trace.span()[1]
    expected = w1c_writes(trace, BIT[name])
    assert expected
    assert timeline.index.acks(BIT[name], 0, end).tolist() == expected


def test_a_status_bit_is_high_from_its_interrupt_to_its_ack(timeline: IrqTimeline,
                                                            timeout_run: Simulator) -> None:
    trace = timeout_run.trace
    raised = [t.start for t in trace if isinstance(t, IrqEvent) and "DATA_TIMEOUT" in t.bits]
    starts, ends = timeline.index.highs(DATA_TIMEOUT, 0, trace.span()[1])
    assert raised and starts.tolist() == raised
    assert ends.tolist() == w1c_writes(trace, DATA_TIMEOUT)


def test_the_irq_lane_follows_the_irq_events(timeline: IrqTimeline,
                                             timeout_run: Simulator) -> None:
    events = [t for t in timeout_run.trace if isinstance(t, IrqEvent)]
    starts, ends = timeline.index.highs(None, 0, timeout_run.trace.span()[1])
    assert starts.tolist() == [e.start for e in events if e.level]
    assert ends.tolist() == [e.start for e in events if not e.level]


def status_trace() -> list[Any]:
    """CMD_COMPLETE raises the IRQ at 100; XFER_COMPLETE latches while the line is high
    and shows in the handler's read at 150; one 32-bit W1C at 200 clears both."""
    cc, tc = int(NormalInt.CMD_COMPLETE), int(NormalInt.XFER_COMPLETE)
    return [
        IrqEvent(100, 100, level=1, status=cc, bits=("CMD_COMPLETE",)),
        RegisterEvent(150, 150, reg="INT_STATUS+ERR_INT_STATUS", offset=0x30, width=4,
                      old=cc | tc, new=cc | tc, access="read"),
        RegisterEvent(200, 200, reg="INT_STATUS+ERR_INT_STATUS", offset=0x30, width=4,
                      old=cc | tc, new=0, access="write"),
        IrqEvent(200, 200, level=0, status=0),
        RegisterEvent(300, 300, reg="ERR_INT_STATUS", offset=0x32, width=2, old=0,
                      new=0, access="write"),
    ]


@pytest.mark.parametrize("name, t0, t1, highs, acks", [
    ("CMD_COMPLETE", 0, 1000, [(100, 200)], [200]),
    ("XFER_COMPLETE", 0, 1000, [(150, 200)], [200]),
    ("XFER_COMPLETE", 160, 180, [(160, 180)], []),  # a window inside the pulse: clipped
    ("XFER_COMPLETE", 250, 1000, [], []),
    (IRQ_LANE, 0, 1000, [(100, 200)], []),
])
def test_levels_in_a_window(qtbot: Any, name: str, t0: int, t1: int,
                            highs: list[tuple[int, int]], acks: list[int]) -> None:
    view = IrqTimeline(Trace(tokens=status_trace()))
    qtbot.addWidget(view)
    bit = None if name == IRQ_LANE else BIT[name]
    starts, ends = view.index.highs(bit, t0, t1)
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == highs
    if bit is not None:
        assert view.index.acks(bit, t0, t1).tolist() == acks


def test_a_zero_width_pulse_is_kept(qtbot: Any) -> None:
    """The simulated driver handles an interrupt in the same picosecond it rises."""
    tokens = [IrqEvent(500, 500, level=1, status=1, bits=("CMD_COMPLETE",)),
              RegisterEvent(500, 500, offset=0x30, width=4, old=1, new=0, access="write"),
              IrqEvent(500, 500, level=0, status=0)]
    view = IrqTimeline(Trace(tokens=tokens))
    qtbot.addWidget(view)
    index = view.index
    assert [a.tolist() for a in index.highs(BIT["CMD_COMPLETE"], 0, 10**6)] == [[500], [500]]


def test_lanes_appear_as_the_trace_grows(qtbot: Any) -> None:
    trace = Trace()
    view = IrqTimeline(trace)
    qtbot.addWidget(view)
    assert view.lanes() == [IRQ_LANE]
    for token in status_trace():
        trace.append(token)
    assert view.lanes() == [IRQ_LANE]  # coalesced: nothing repainted per event
    qtbot.waitUntil(lambda: view.lanes() == [IRQ_LANE, "CMD_COMPLETE", "XFER_COMPLETE"])
    trace.clear()
    assert view.lanes() == [IRQ_LANE]


def test_x_axis_and_cursors_follow_the_waveform(qtbot: Any, timeline: IrqTimeline) -> None:
    waveform = pg.PlotWidget()
    qtbot.addWidget(waveform)
    for widget in (waveform, timeline):  # stacked in a dock: same width, same label column
        widget.resize(800, 300)
        widget.show()
    waveform.getPlotItem().getAxis("left").setWidth(120)
    timeline.set_label_width(120)
    timeline.set_x_link(waveform.getPlotItem())
    qtbot.waitUntil(lambda: timeline.plot_item.getViewBox().width()
                    == waveform.getPlotItem().getViewBox().width())
    waveform.getPlotItem().setXRange(0.150, 0.151, padding=0)
    x0, x1 = timeline.plot_item.viewRange()[0]
    assert (x0, x1) == pytest.approx((0.150, 0.151))
    timeline.set_cursor_times(150_200_000_000, None)
    assert timeline.cursor_times() == (150_200_000_000, None)


def test_it_paints_the_visible_window(qtbot: Any, timeline: IrqTimeline,
                                      timeout_run: Simulator) -> None:
    timeline.resize(900, 300)
    timeline.show()
    raised = next(t.start for t in timeout_run.trace
                  if isinstance(t, IrqEvent) and "DATA_TIMEOUT" in t.bits) / PS_PER_S
    timeline.plot_item.setXRange(raised - 20e-6, raised + 20e-6, padding=0)
    image = timeline.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(height, image.bytesPerLine())
    blue, green, red = (rows[:, : 4 * width].reshape(height, width, 4)[..., c] for c in range(3))
    error_lane = (red > 200) & (green < 120) & (blue < 120)  # the DATA_TIMEOUT lane colour
    assert error_lane.any()
    assert error_lane[:, width // 2 - 3: width // 2 + 4].any()  # the pulse, mid-window
