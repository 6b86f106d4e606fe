"""The trace's windowed waveform (design.md "Time and events"): ``Trace.edges`` renders
a signal from the bus tokens in a window by bisection, with the clock period in force at
the window start, and the payload budget drops data and SPI payloads oldest-first."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pytest

from sdmodel.clock import SimClock
from sdmodel.crc import command_frame, crc16_lanes
from sdmodel.decode.edges import edges_from_samples
from sdmodel.decode.sd import SdDecoder
from sdmodel.sdbus import SdBus
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatusToken,
    DataToken,
    IdleToken,
    ResponseToken,
    SpiToken,
    Token,
)
from sdmodel.trace import IrqEvent, RegisterEvent, StateEvent, Trace
from sdmodel.waveform import SD_SIGNALS, SPI_SIGNALS, UNKNOWN, Edges, render

if TYPE_CHECKING:
    from conftest import CardHarness

SLOW, FAST = 2_500_000, 40_000  # 400 kHz identification, 25 MHz
FF = b"\xff"


def same(a: Edges, b: Edges) -> bool:
    return (a.times.tolist(), a.levels.tolist()) == (b.times.tolist(), b.levels.tolist())


def sd_session() -> list[Token]:
    """Identification at 400 kHz, then 25 MHz: a read, a write with a long busy, and
    register/state/IRQ events on the same timeline."""
    out: list[Token] = []
    t = 0

    def add(tok: Token, gap: int = 0) -> None:
        nonlocal t
        out.append(tok)
        t = tok.end + gap

    add(IdleToken(t, t + 74 * SLOW, SLOW, reason="power-up"))
    add(CommandToken(t, t + 48 * SLOW, SLOW, index=0), 8 * SLOW)
    add(CommandToken(t, t + 48 * SLOW, SLOW, index=8, arg=0x1AA), 5 * SLOW)
    add(ResponseToken(t, t + 48 * SLOW, SLOW, type="R7", index=8, value=0x1AA), 300 * SLOW)
    out.append(StateEvent(t - SLOW, t - SLOW, SLOW, old="idle", new="idle"))
    data = bytes(range(256)) * 2
    add(CommandToken(t, t + 48 * FAST, FAST, index=17, arg=0), 2 * FAST)
    add(ResponseToken(t, t + 48 * FAST, FAST, type="R1", index=17, value=0x900), 9 * FAST)
    add(DataToken(t, t + 1042 * FAST, FAST, data=data, nbytes=512, width=4,
                  crcs=tuple(crc16_lanes(data, 4))), 20 * FAST)
    add(CommandToken(t, t + 48 * FAST, FAST, index=24, arg=1), 2 * FAST)
    add(ResponseToken(t, t + 48 * FAST, FAST, type="R1", index=24, value=0x900), 2 * FAST)
    add(DataToken(t, t + 4114 * FAST, FAST, data=data, nbytes=512, width=1,
                  crcs=tuple(crc16_lanes(data, 1)), to_card=True), 2 * FAST)
    add(CrcStatusToken(t, t + 5 * FAST, FAST, status=0b010))
    out.append(RegisterEvent(t, t, FAST, reg="PRESENT_STATE", access="read"))
    add(BusyToken(t, t + 250_000 * FAST, FAST, reason="program"), 8 * FAST)  # 10 ms
    out.append(IrqEvent(t, t, FAST, level=1))
    add(CommandToken(t, t + 48 * FAST, FAST, index=13, arg=0xB3680000), 2 * FAST)
    add(ResponseToken(t, t + 48 * FAST, FAST, type="R1", index=13, value=0x900))
    return out


@pytest.fixture
def session() -> tuple[Trace, list[Token]]:
    tokens = sd_session()
    trace = Trace()
    for tok in tokens:
        trace.append(tok)
    return trace, tokens


def windows(tokens: list[Token]) -> list[tuple[int, int]]:
    end = max(t.end for t in tokens)
    busy = next(t for t in tokens if isinstance(t, BusyToken))
    gap = next(t for t in tokens if isinstance(t, ResponseToken)).end + 10 * SLOW
    return [
        (-SLOW, end + SLOW),  # everything, with the clock stopped on both sides
        (gap, gap + 50 * SLOW),  # a gap after identification: no token in the window
        (busy.start + 7, busy.start + 1000 * FAST),  # inside the long busy period
        (busy.end - 30 * FAST, busy.end + 200 * FAST),  # the busy end and CMD13
        (end - 3, end + 10 * FAST),  # the last edge
        (end + FAST, end + 2 * FAST),  # after the trace
    ]


@pytest.mark.parametrize("signal", SD_SIGNALS)
@pytest.mark.parametrize("max_edges", [None, 50])
def test_edges_equal_rendering_every_token(session: tuple[Trace, list[Token]], signal: str,
                                           max_edges: int | None) -> None:
    trace, tokens = session
    for t0, t1 in windows(tokens):
        assert same(trace.edges(signal, t0, t1, max_edges=max_edges),
                    render(tokens, signal, t0, t1, max_edges=max_edges))


def test_period_in_force_comes_from_the_token_before_the_window(
        session: tuple[Trace, list[Token]]) -> None:
    trace, tokens = session
    t0, t1 = windows(tokens)[1]
    assert not [t for t in trace.window(t0, t1) if not isinstance(t, StateEvent)]
    clk = trace.edges("CLK", t0, t1)
    assert set(np.diff(clk.times[1:]).tolist()) == {SLOW // 2}  # the 400 kHz clock runs on


def test_long_busy_reaches_a_window_far_inside_it(session: tuple[Trace, list[Token]]) -> None:
    trace, tokens = session
    busy = next(t for t in tokens if isinstance(t, BusyToken))
    mid = (busy.start + busy.end) // 2
    assert busy in trace.window(mid, mid + 1)
    assert trace.edges("DAT0", mid, mid + 10 * FAST).levels.tolist() == [0]


def test_span_is_first_start_to_last_end(session: tuple[Trace, list[Token]]) -> None:
    trace, tokens = session
    assert trace.span() == (0, max(t.end for t in tokens))
    assert Trace().span() == (0, 0)


def test_signals_follow_the_bus_the_trace_records(session: tuple[Trace, list[Token]]) -> None:
    trace, _ = session
    assert trace.signals == SD_SIGNALS
    spi = Trace()
    spi.append(SpiToken(0, 8, 1, what="fill", mosi=FF, miso=FF))
    assert spi.signals == SPI_SIGNALS


def test_window_matches_a_scan_of_every_token() -> None:
    rng = random.Random(7)
    trace = Trace()
    tokens: list[Token] = []
    for _ in range(3000):
        start = rng.randrange(10**9)
        length = rng.choice([0, rng.randrange(1, 1000), rng.randrange(1 << 24, 1 << 27)])
        tokens.append(IdleToken(start, start + length, 1))
    for tok in sorted(tokens, key=lambda t: t.start):
        trace.append(tok)
    for _ in range(300):
        t0 = rng.randrange(-(1 << 27), 10**9 + (1 << 27))
        t1 = t0 + rng.choice([1, 1000, 1 << 25])
        expected = [t for t in trace.tokens if t.start < t1 and (t.end > t0 or t.start >= t0)]
        assert sorted(map(id, trace.window(t0, t1))) == sorted(map(id, expected))
        starts = [t.start for t in trace.window(t0, t1)]
        assert starts == sorted(starts)


def test_a_late_event_is_kept_in_start_order() -> None:
    trace = Trace()
    trace.append(CommandToken(0, 48, 1, index=0))
    trace.append(CommandToken(100, 148, 1, index=8))
    late = StateEvent(50, 50, 1, old="idle", new="idle")
    trace.append(late)
    assert trace.tokens[1] is late and trace.starts == [0, 50, 100]
    assert trace.window(50, 51) == [late]


# --- payload budget ---------------------------------------------------------------------------


def test_data_payloads_are_dropped_oldest_first_and_render_unknown() -> None:
    trace = Trace(payload_budget=1024)
    blocks = [DataToken(i * 5000, i * 5000 + 4114, 1, data=bytes([i]) * 512, nbytes=512,
                        width=1, crcs=tuple(crc16_lanes(bytes([i]) * 512, 1))) for i in range(3)]
    for tok in blocks:
        trace.append(tok)
    assert [t.data is None for t in blocks] == [True, False, False]
    assert trace.payload_bytes == 1024
    dat0 = trace.edges("DAT0", 0, 4114)
    assert dat0.levels.tolist()[:2] == [0, UNKNOWN]  # start bit, then the dropped data


def test_spi_payloads_are_dropped_oldest_first_keeping_the_summary() -> None:
    trace = Trace(payload_budget=40)
    runs = [SpiToken(i * 160, i * 160 + 160, 1, what="cmd", mosi=command_frame(i, 0) * 2,
                     miso=FF * 12, info={"index": i}) for i in range(3)]  # 24 bytes each
    for run in runs:
        trace.append(run)
    assert [(r.mosi, r.miso) == (None, None) for r in runs] == [True, True, False]
    assert [r.info for r in runs] == [{"index": 0}, {"index": 1}, {"index": 2}]
    assert trace.payload_bytes == 24
    assert trace.edges("MOSI", 0, 160).levels.tolist() == [UNKNOWN]
    assert trace.edges("CS", 0, 160).levels.tolist() == [0]
    assert UNKNOWN not in trace.edges("MOSI", 320, 480).levels.tolist()


def test_clear_forgets_everything(session: tuple[Trace, list[Token]]) -> None:
    trace, _ = session
    trace.clear()
    assert len(trace) == 0 and trace.span() == (0, 0) and trace.payload_bytes == 0
    assert trace.edges("CLK", 0, 100).levels.tolist() == [0]
    assert trace.window(0, 10**15) == []


# --- the simulator's own trace ----------------------------------------------------------------


async def test_a_simulated_session_decodes_back_from_the_trace_edges(
        make_card: Callable[..., CardHarness]) -> None:
    """Identification at 400 kHz, 4-bit mode at 25 MHz, a read, a write: the bus as the
    trace renders it, sampled 4 times per clock, gives the decoder the same tokens."""
    h = make_card()
    bus = SdBus(h.card, SimClock(400_000, free_wall_s=1.0), Trace())
    bus.power_up()
    for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0),
                       (41, 0x40300000), (2, 0), (3, 0)):
        await bus.command(index, arg)
    await bus.command(9, h.rca_arg)  # the CSD, in an R2
    bus.clock.set_frequency(25_000_000)
    await bus.command(7, h.rca_arg)
    assert await bus.wait_busy()
    await bus.command(55, h.rca_arg)
    await bus.command(6, 2)
    bus.host_width = 4
    await bus.command(17, h.addr(3))
    assert await bus.read_block() is not None
    await bus.command(24, h.addr(5))
    await bus.write_block(bytes(range(256)) * 2)
    assert await bus.wait_busy()
    await bus.command(13, h.rca_arg)
    bus.idle_clocks(16)

    trace = bus.trace
    t0, t1 = trace.span()
    dt = 10_000  # 4 samples per 25 MHz clock
    times = np.arange(t0, t1, dt, dtype=np.int64)
    samples = np.zeros(times.size, dtype=np.uint8)
    for bit, signal in enumerate(SD_SIGNALS):
        samples |= trace.edges(signal, t0, t1).at(times) << bit
    decoder = SdDecoder(4)
    batches = edges_from_samples(iter([samples]), 10**12 // dt, samples.size, 0, [1, 2, 3, 4, 5])
    decoded = [t for b in batches for t in decoder.feed(b)] + decoder.finish()

    def bus_tokens(tokens: list[Token]) -> list[Token]:
        kinds = (CommandToken, ResponseToken, DataToken, CrcStatusToken, BusyToken)
        return [t for t in tokens if isinstance(t, kinds)]

    def key(t: Token) -> tuple[object, ...]:
        return (t.kind, getattr(t, "index", None), getattr(t, "value", None),
                getattr(t, "data", None), getattr(t, "status", None))

    got, sent = bus_tokens(decoded), bus_tokens(trace.tokens)
    assert [key(t) for t in got] == [key(t) for t in sent]
    assert all(abs(a.start - b.start) <= b.period and abs(a.end - b.end) <= b.period
               for a, b in zip(got, sent, strict=True))
    assert [t.label() for t in decoded if t.kind == "finding"] == []
