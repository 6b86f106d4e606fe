"""WaveformView: lanes of SD and SPI traces, following the live edge, the horizon, cursors,
keys, hover text, and lanes that paint only what is visible. Nothing here is timed; frame
times are measured by ``sdscope bench render``."""

from __future__ import annotations

import asyncio
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sdmodel.images import create_image
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import (
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    ResponseToken,
    SpiToken,
    Token,
)
from sdmodel.trace import Trace
from sdmodel.waveform import UNKNOWN, Edges
from widgets.palette import ERROR, is_error, qcolor, token_color
from widgets.qt import Qt, QtCore, QtGui
from widgets.waveform import CursorReadout, WaveformView
from widgets.waveform.annotation_lane import SPI_ANNOTATIONS, tooltip_text
from widgets.waveform.cursors import measure
from widgets.waveform.signal_lane import ACTIVE, PENDING, EdgeTiles, buckets_from_edges, merge_pairs
from widgets.waveform.view import INDEX_CHUNK

WORKLOAD = "init; read 0 1; write 8 1"
CMD_BITS = 48  # §2.1: a command is 48 bits


def simulate(path: Path, mode: str, budget: int = 64 << 20) -> Trace:
    async def run() -> Trace:
        sim = Simulator(path, SimOptions(mode=mode, trace_budget=budget))  # type: ignore[arg-type]
        try:
            await sim.run(WORKLOAD)
        finally:
            await sim.aclose()
        return sim.trace

    return asyncio.run(run())


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_image(tmp_path_factory.mktemp("card") / "card.img", 64 << 20, fat=True)


@pytest.fixture(scope="module")
def sd_trace(card: Path) -> Trace:
    return simulate(card, "sd")


@pytest.fixture(scope="module")
def spi_trace(card: Path) -> Trace:
    return simulate(card, "spi")


@pytest.fixture
def view(qtbot: Any) -> WaveformView:
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    qtbot.waitExposed(view)
    return view


def cmd17(trace: Trace) -> CommandToken:
    return next(t for t in trace if isinstance(t, CommandToken) and t.index == 17)


def lane_y(view: WaveformView, name: str, signal: bool) -> float:
    """The middle of a lane in view units."""
    k = [(lane.name, lane.signal) for lane in view.lanes()].index((name, signal))
    return -k - 0.5


def viewport_point(view: WaveformView, ps: int, y: float) -> QtCore.QPoint:
    plot = view.plot_item()
    scene = plot.getViewBox().mapViewToScene(QtCore.QPointF(ps / 1e12, y))
    return plot.scene().views()[0].mapFromScene(scene)


def viewport(view: WaveformView) -> Any:
    return view.plot_item().scene().views()[0].viewport()


# --- lanes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "signals", "annotations"), [
    ("sd", ["CLK", "CMD", "DAT0", "DAT1", "DAT2", "DAT3"], ["CMD", "DAT", "Findings"]),
    ("spi", ["CS", "SCLK", "MOSI", "MISO"], ["SPI", "Findings"]),
])
def test_lanes_follow_the_bus_of_the_trace(view: WaveformView, card: Path, mode: str,
                                           signals: list[str], annotations: list[str]) -> None:
    view.set_trace(simulate(card, mode))
    lanes = view.lanes()
    assert [lane.name for lane in lanes if lane.signal] == signals
    assert [lane.name for lane in lanes if not lane.signal] == annotations


def test_annotation_lanes_sort_tokens_by_kind(view: WaveformView, sd_trace: Trace) -> None:
    view.set_trace(sd_trace)
    kinds = {name: {t.kind for t in view.annotation_lane(name).index.tokens}
             for name in ("CMD", "DAT", "Findings")}
    assert kinds == {"CMD": {"cmd", "rsp"}, "DAT": {"data", "crc_status", "busy"},
                     "Findings": set()}
    commands = [t for t in sd_trace if isinstance(t, (CommandToken, ResponseToken))]
    assert view.annotation_lane("CMD").index.tokens == commands


def test_spi_lane_skips_fill_and_deselected_runs(view: WaveformView, spi_trace: Trace) -> None:
    view.set_trace(spi_trace)
    shown = {t.what for t in view.annotation_lane("SPI").index.tokens}  # type: ignore[attr-defined]
    assert {"cmd", "rsp", "data", "data_response", "busy"} <= shown
    assert not shown & {"fill", "deselected"}


def test_whole_trace_clock_is_a_band_and_three_periods_show_six_edges(
        view: WaveformView, sd_trace: Trace, qtbot: Any) -> None:
    view.set_trace(sd_trace)
    view.grab()
    view.settle()
    view.grab()
    clock = view.signal_lane("CLK").last_columns
    assert clock is not None and not clock.pending.any() and clock.active.mean() > 0.95
    command = cmd17(sd_trace)
    quarter = command.period // 4  # falls at k * period, rises half a period later
    view.show_range(command.start + quarter, command.start + 3 * command.period + quarter)
    view.grab()
    clock = view.signal_lane("CLK").last_columns
    assert clock is not None and len(clock) > 1000
    # one column per pixel: each of the 6 edges moves the level from a column to the next
    assert np.count_nonzero(np.diff(clock.first)) == 6 and np.count_nonzero(clock.active) <= 6


def test_dropped_payload_reads_unknown(view: WaveformView, card: Path) -> None:
    trace = simulate(card, "sd", budget=0)
    block = next(t for t in trace if isinstance(t, DataToken) and t.nbytes == 512)
    view.set_trace(trace)
    view.show_range(block.start + 10 * block.period, block.start + 20 * block.period)
    view.grab()
    dat0 = view.signal_lane("DAT0").last_columns
    assert dat0 is not None and set(dat0.first.tolist()) == {UNKNOWN}


# --- tiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("times", "levels", "packed"), [
    ([0], [1], [1, 1, 1]),  # constant high
    ([0, 4], [1, 0], [1, 0, 0]),  # a change on a bucket start sets that bucket's level
    ([0, 5], [1, 0], [1, ACTIVE | 1, 0]),  # a change inside a bucket marks it
    ([0, 9, 10], [0, 1, 0], [0, 0, ACTIVE]),
    ([0, 2], [1, UNKNOWN], [ACTIVE | 1, UNKNOWN, UNKNOWN]),
])
def test_buckets_hold_the_level_at_their_start_and_changes_inside(
        times: list[int], levels: list[int], packed: list[int]) -> None:
    edges = Edges(np.array(times, dtype=np.int64), np.array(levels, dtype=np.uint8))
    assert buckets_from_edges(edges, 0, 4, 3).tolist() == packed


@pytest.mark.parametrize(("pair", "merged"), [
    ([1, 1], 1),
    ([0, 1], ACTIVE),  # the level changes between the halves
    ([1, ACTIVE | 1], ACTIVE | 1),
    ([0, PENDING], PENDING),
])
def test_merged_buckets_keep_first_level_and_any_change(pair: list[int], merged: int) -> None:
    assert merge_pairs(np.array(pair, dtype=np.uint8)).tolist() == [merged]


def test_missing_tiles_are_pending_until_the_background_computes_them(
        sd_trace: Trace) -> None:
    tiles = EdgeTiles(sd_trace, "CMD")
    start, end = sd_trace.span()
    cols = tiles.columns(start, end, 800, deadline=0.0)
    assert cols.pending.all() and tiles.wanted
    assert tiles.work(math.inf) and not tiles.wanted
    cols = tiles.columns(start, end, 800, deadline=0.0)
    assert not cols.pending.any()
    # columns with commands are active, the idle stretch of the init is flat high
    assert cols.active.any() and cols.first[~cols.active].tolist().count(1) > 100


def test_appended_tokens_invalidate_the_tiles_after_them(sd_trace: Trace) -> None:
    split = len(sd_trace) // 2
    trace = Trace(tokens=sd_trace.tokens[:split])
    tiles = EdgeTiles(trace, "CMD")
    end = sd_trace.span()[1]
    tiles.columns(0, end, 400, math.inf)
    before = len(tiles)
    for token in sd_trace.tokens[split:]:
        trace.append(token)
    tiles.invalidate_from(sd_trace.tokens[split].start)
    assert len(tiles) < before
    fresh = EdgeTiles(trace, "CMD").columns(0, end, 400, math.inf)
    again = tiles.columns(0, end, 400, math.inf)
    assert np.array_equal(again.first, fresh.first)
    assert np.array_equal(again.active, fresh.active)


def test_a_repaint_of_the_same_window_reuses_the_lane_picture(
        view: WaveformView, sd_trace: Trace) -> None:
    live = Trace(tokens=sd_trace.tokens[: len(sd_trace) // 2])
    view.set_trace(live)
    command = cmd17(sd_trace)
    view.show_range(command.start, command.end)
    view.grab()
    view.settle()
    view.grab()
    lane = view.signal_lane("CMD")
    first = lane.last_columns
    view.grab()  # another lane, a cursor or the linked IRQ view asked for a frame
    assert lane.last_columns is first
    for token in sd_trace.tokens[len(sd_trace) // 2:]:
        live.append(token)
    view.flush()  # new tokens: the picture is drawn again
    view.grab()
    assert lane.last_columns is not first


# --- following, horizon, range ---------------------------------------------------------------


def test_live_tokens_are_indexed_per_tick_and_followed(view: WaveformView, sd_trace: Trace,
                                                       qtbot: Any) -> None:
    live = Trace()
    view.set_trace(live)
    view.show_range(0, 10**9)
    view.set_following(True)
    for token in sd_trace.tokens:
        live.append(token)
    lane = view.annotation_lane("CMD")
    assert len(lane.index) == 0  # nothing happens per token: the redraw tick does it
    qtbot.waitUntil(lambda: len(lane.index) > 0)
    assert view.visible_range() == (sd_trace.span()[1] - 10**9, sd_trace.span()[1])


def test_a_live_trace_gets_spi_lanes_when_its_bus_turns_out_spi(
        view: WaveformView, spi_trace: Trace, qtbot: Any) -> None:
    live = Trace()
    view.set_trace(live)
    assert [lane.name for lane in view.lanes() if lane.signal][0] == "CLK"  # SD until known
    for token in spi_trace.tokens:
        live.append(token)
    qtbot.waitUntil(lambda: view.lanes()[0].name == "CS")
    lane = view.annotation_lane("SPI")
    qtbot.waitUntil(lambda: len(lane.index) > 0)
    assert lane.index.tokens == [t for t in spi_trace if SPI_ANNOTATIONS[0][1](t)]


def test_a_long_trace_is_indexed_in_chunks_in_time_order(view: WaveformView,
                                                         qtbot: Any) -> None:
    trace = commands(2 * INDEX_CHUNK + 5)
    view.set_trace(trace)
    lane = view.annotation_lane("CMD")
    assert len(lane.index) == INDEX_CHUNK  # the rest follows on the next event-loop turns
    late = CommandToken(10**12, 10**12 + 1000, 20, index=13)
    trace.append(late)
    qtbot.waitUntil(lambda: len(lane.index) == len(trace))
    assert lane.index.tokens[-1] is late
    assert np.all(np.diff(lane.index.starts[:len(trace)]) > 0)


def pan_by_drag(view: WaveformView, qtbot: Any) -> None:
    target = viewport(view)
    qtbot.mousePress(target, Qt.MouseButton.LeftButton, pos=QtCore.QPoint(600, 100))
    qtbot.mouseMove(target, QtCore.QPoint(500, 100))
    qtbot.mouseMove(target, QtCore.QPoint(400, 100))
    qtbot.mouseRelease(target, Qt.MouseButton.LeftButton, pos=QtCore.QPoint(400, 100))


def zoom_by_wheel(view: WaveformView, qtbot: Any) -> None:
    target = viewport(view)
    point = QtCore.QPointF(600, 100)
    event = QtGui.QWheelEvent(point, target.mapToGlobal(point), QtCore.QPoint(),
                              QtCore.QPoint(0, 120), Qt.MouseButton.NoButton,
                              Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                              False)
    QtCore.QCoreApplication.sendEvent(target, event)


def pan_by_key(view: WaveformView, qtbot: Any) -> None:
    qtbot.keyClick(view, Qt.Key.Key_Left)


@pytest.mark.parametrize("gesture", [pan_by_drag, zoom_by_wheel, pan_by_key])
def test_user_pan_or_zoom_stops_following(view: WaveformView, sd_trace: Trace, qtbot: Any,
                                          gesture: Any) -> None:
    view.set_trace(sd_trace)
    view.set_following(True)
    before = view.visible_range()
    assert before[1] == sd_trace.span()[1]
    with qtbot.waitSignal(view.sigFollowingChanged) as changed:
        gesture(view, qtbot)
    assert changed.args == [False] and not view.following
    assert view.visible_range() != before


def test_horizon_hides_later_tokens(view: WaveformView, sd_trace: Trace) -> None:
    command = cmd17(sd_trace)
    view.set_trace(sd_trace)
    view.set_horizon(command.end)
    view.zoom_to_fit()  # the trace as far as revealed, with a 1 % margin
    assert view.visible_range() == (-(command.end // 100), command.end + command.end // 100)
    lane = view.annotation_lane("CMD")
    assert lane.token_at(command.start + 1) is command
    response = next(t for t in sd_trace if isinstance(t, ResponseToken) and t.start >= command.end)
    assert lane.token_at(response.start + 1) is None
    view.show_range(command.start, response.end)
    view.grab()
    cmd_line = view.signal_lane("CMD").last_columns
    assert cmd_line is not None and cmd_line.t1 == command.end
    view.set_horizon(None)
    assert lane.token_at(response.start + 1) is response


def test_range_signal_carries_picoseconds_beyond_32_bits(view: WaveformView, qtbot: Any) -> None:
    with qtbot.waitSignal(view.sigRangeChanged) as changed:
        view.show_range(5 * 10**12, 6 * 10**12)
    assert changed.args == [5 * 10**12, 6 * 10**12]


T0, T1 = 10_000_000, 20_000_000  # a 10 us window


@pytest.mark.parametrize(("key", "expected"), [
    (Qt.Key.Key_Plus, (12_500_000, 17_500_000)),  # zoom in 2x around the centre
    (Qt.Key.Key_Minus, (5_000_000, 25_000_000)),
    (Qt.Key.Key_Left, (9_000_000, 19_000_000)),  # pan 10 %
    (Qt.Key.Key_Right, (11_000_000, 21_000_000)),
    (Qt.Key.Key_Home, (0, 10_000_000)),  # the start of the trace, same width
    (Qt.Key.Key_End, ("end - 10 us", "end")),
    (Qt.Key.Key_F, ("fit", "fit")),
    (Qt.Key.Key_Z, (12_000_000, 13_000_000)),  # the cursors
])
def test_keys_change_the_range(view: WaveformView, sd_trace: Trace, qtbot: Any, key: Qt.Key,
                               expected: tuple[Any, Any]) -> None:
    view.set_trace(sd_trace)
    end = sd_trace.span()[1]
    view.show_range(T0, T1)
    view.set_cursor(0, 13_000_000)
    view.set_cursor(1, 12_000_000)
    qtbot.keyClick(view, key)
    margin = end // 100
    named = {"end - 10 us": end - 10_000_000, "end": end, "fit": None}
    want = tuple(named.get(x, x) if isinstance(x, str) else x for x in expected)
    if want == (None, None):
        want = (-margin, end + margin)
    assert view.visible_range() == want


def test_center_on_a_token_keeps_the_zoom_and_stops_following(view: WaveformView,
                                                               sd_trace: Trace) -> None:
    command = cmd17(sd_trace)
    view.set_trace(sd_trace)
    view.set_following(True)
    view.show_range(0, 10**8)
    view.center_on(command)
    t0, t1 = view.visible_range()
    assert t1 - t0 == 10**8 and abs((t0 + t1) // 2 - (command.start + command.end) // 2) <= 1
    assert not view.following


def test_highlight_shades_a_span_until_cleared(view: WaveformView) -> None:
    view.highlight(1_000, 5_000)
    assert view.highlighted() == (1_000, 5_000)
    view.highlight(5_000, 5_000)
    assert view.highlighted() is None


# --- cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("t_a", "t_b", "period", "expected"), [
    (0, 1_000_000, 20_000, CursorReadout(0, 1_000_000, 1_000_000, 50.0, 1e6)),  # 50 MHz
    (5_000_000, 0, 2_500_000, CursorReadout(5_000_000, 0, -5_000_000, -2.0, 2e5)),
    (7, 7, 20_000, CursorReadout(7, 7, 0, 0.0, None)),
    (0, 1_000_000, 0, CursorReadout(0, 1_000_000, 1_000_000, None, 1e6)),  # no clock known
    (None, 3, 20_000, CursorReadout(None, 3, None, None, None)),
])
def test_cursor_readout_is_dt_clocks_and_frequency(t_a: int | None, t_b: int | None,
                                                   period: int,
                                                   expected: CursorReadout) -> None:
    assert measure(t_a, t_b, period) == expected


def test_cursors_on_a_command_count_its_48_clocks(view: WaveformView, sd_trace: Trace,
                                                  qtbot: Any) -> None:
    command = cmd17(sd_trace)
    view.set_trace(sd_trace)
    view.set_cursor(0, command.start)
    with qtbot.waitSignal(view.sigCursorsChanged) as changed:
        view.set_cursor(1, command.end)
    readout = changed.args[0]
    assert readout == view.readout()
    assert (readout.dt_ps, readout.clocks) == (command.end - command.start, CMD_BITS)
    assert readout.hz == pytest.approx(1e12 / (CMD_BITS * command.period))


def test_click_sets_cursor_a_shift_click_b_and_reports_the_token(
        view: WaveformView, sd_trace: Trace, qtbot: Any) -> None:
    command = cmd17(sd_trace)
    view.set_trace(sd_trace)
    view.show_range(command.start - command.period * 8, command.end + command.period * 8)
    y = lane_y(view, "CMD", signal=False)
    middle = (command.start + command.end) // 2
    with qtbot.waitSignal(view.sigTokenClicked) as clicked:
        qtbot.mouseClick(viewport(view), Qt.MouseButton.LeftButton,
                         pos=viewport_point(view, middle, y))
    assert clicked.args == [command]
    pixel = (view.visible_range()[1] - view.visible_range()[0]) // 1000
    assert abs(view.readout().t_a - middle) <= 2 * pixel  # type: ignore[operator]
    qtbot.mouseClick(viewport(view), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ShiftModifier, viewport_point(view, command.end, y))
    assert abs(view.readout().t_b - command.end) <= 2 * pixel  # type: ignore[operator]


# --- hover text ------------------------------------------------------------------------------


def test_tooltip_of_a_command_names_it_and_lists_its_fields(sd_trace: Trace) -> None:
    lines = tooltip_text(cmd17(sd_trace)).splitlines()
    assert lines[0] == "CMD17 READ_SINGLE_BLOCK arg=0x00000000"
    assert lines[1].startswith("at ") and "48 clocks at 50 MHz" in lines[1]
    assert lines[2:] == ["index: 17", "app: False", "name: CMD17 READ_SINGLE_BLOCK",
                         "arg: 0x00000000", "crc_ok: True"]


def test_tooltip_of_r2_lists_the_cid_fields(sd_trace: Trace) -> None:
    cid = next(t for t in sd_trace if isinstance(t, ResponseToken) and t.type == "R2")
    text = tooltip_text(cid)
    assert "register fields:" in text and "  PNM = " in text and "  MID = " in text


def test_hovering_a_box_sets_the_lane_tooltip(view: WaveformView, sd_trace: Trace,
                                              qtbot: Any) -> None:
    command = cmd17(sd_trace)
    view.set_trace(sd_trace)
    view.show_range(command.start - command.period * 8, command.end + command.period * 8)
    lane = view.annotation_lane("CMD")
    point = viewport_point(view, (command.start + command.end) // 2, lane_y(view, "CMD", False))
    hover(qtbot, view, point, lambda: lane.toolTip() != "")
    assert lane.toolTip() == tooltip_text(command)
    hover(qtbot, view, point + QtCore.QPoint(0, -300), lambda: lane.toolTip() == "")  # signals


def hover(qtbot: Any, view: WaveformView, point: QtCore.QPoint, done: Any) -> None:
    """Move the mouse about ``point`` until ``done()``: pyqtgraph drops moves that follow
    the previous one within its rate limit (pg.getConfigOption("mouseRateLimit")), and Qt
    drops moves to where the mouse already is, so it moves by a pixel each time."""
    jitter = itertools.cycle((QtCore.QPoint(0, 0), QtCore.QPoint(1, 0)))

    def moved() -> bool:
        qtbot.mouseMove(viewport(view), point + next(jitter))
        return bool(done())

    qtbot.waitUntil(moved)


# --- annotation lane painting ----------------------------------------------------------------


def commands(count: int, spacing: int = 1_000_000) -> Trace:
    """``count`` commands, one per ``spacing`` ps, each half as long."""
    return Trace(tokens=[CommandToken(k * spacing, k * spacing + spacing // 2, spacing // 96,
                                      index=k % 64) for k in range(count)])


def test_annotation_lane_paints_at_most_one_box_per_two_pixels(view: WaveformView) -> None:
    trace = commands(20_000)
    view.set_trace(trace)
    view.grab()
    lane = view.annotation_lane("CMD")
    width = view.plot_item().getViewBox().width()
    assert 0 < lane.painted_boxes <= width / 2 and lane.painted_labels == 0


def test_annotation_lane_paints_only_the_visible_boxes(view: WaveformView) -> None:
    view.set_trace(commands(20_000))
    view.show_range(5_000_000_000 - 250_000, 5_003_000_000 - 250_000)  # 3 whole commands
    view.grab()
    lane = view.annotation_lane("CMD")
    assert (lane.painted_boxes, lane.painted_labels) == (3, 3)


@pytest.mark.parametrize(("token", "red"), [
    (CommandToken(0, 1, index=17, crc_ok=False), True),
    (CommandToken(0, 1, index=17), False),
    (ResponseToken(0, 1, crc_ok=False), True),
    (DataToken(0, 1, nbytes=512, crc_ok=False), True),
    (CrcStatusToken(0, 1, status=CrcStatus.CRC_ERROR), True),  # §4.3.4 status 101
    (CrcStatusToken(0, 1, status=CrcStatus.ACCEPTED), False),
    (FindingToken(0, 1, code="late", severity="error"), True),
    (FindingToken(0, 1, code="late", severity="warning"), False),
    (SpiToken(0, 1, what="data_error"), True),
    (SpiToken(0, 1, what="rsp"), False),
])
def test_errors_are_red(token: Token, red: bool) -> None:
    assert is_error(token) is red
    assert (token_color(token) == qcolor(ERROR)) is red


def test_error_tokens_count_as_errors_in_the_index(view: WaveformView) -> None:
    trace = Trace(tokens=[CommandToken(0, 1000, 20, index=17, crc_ok=False),
                          CommandToken(2000, 3000, 20, index=13)])
    view.set_trace(trace)
    assert view.annotation_lane("CMD").index.errors[:2].tolist() == [True, False]


def test_following_with_a_horizon_keeps_the_right_edge_at_the_horizon(
        view: WaveformView, sd_trace: Trace) -> None:
    command = cmd17(sd_trace)
    view.set_trace(sd_trace)
    view.show_range(0, 10**8)
    view.set_following(True)
    view.set_horizon(command.end)
    assert view.visible_range() == (command.end - 10**8, command.end)


def test_closing_the_view_disconnects_it_from_the_trace(view: WaveformView,
                                                       sd_trace: Trace) -> None:
    trace = Trace(tokens=list(sd_trace.tokens))
    view.set_trace(trace)
    assert len(trace.events.appended) == 1
    view.close()
    assert len(trace.events.appended) == 0
