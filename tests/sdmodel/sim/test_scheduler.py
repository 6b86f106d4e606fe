"""Run, pause, step and breakpoints (design.md "Stepping") on the real card and SD bus.

The model here is a small host coroutine that talks to the bus directly (identification,
single-block reads and a write); each of its "requests" ends with ``request_done`` like
the driver's. Every step must advance exactly one unit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.clock import SimClock
from sdmodel.sdbus import SdBus
from sdmodel.sim.breakpoints import BreakpointError, parse_breakpoint
from sdmodel.sim.checker import LiveChecker
from sdmodel.sim.scheduler import RunMode, Scheduler, StepUnit
from sdmodel.states import CardState
from sdmodel.tokens import CommandToken, FindingToken, Line, Token
from sdmodel.trace import Trace

if TYPE_CHECKING:
    from conftest import CardHarness

RCA = 0xB368
BLOCK = 512
HCS = 0x40300000


class Model:
    """A card, its bus and a scheduler gating the bus; ``start`` runs a host coroutine."""

    def __init__(self, h: CardHarness) -> None:
        self.card = h.card
        self.storage = h.storage
        self.trace = Trace()
        # storage answering within 20 ms counts as instant, as in the simulator
        self.clock = SimClock(400_000, free_wall_s=0.02)
        self.bus = SdBus(h.card, self.clock, self.trace)
        self.sched = Scheduler(self.clock, self.trace)
        self.checker = LiveChecker(self.trace)
        h.card.events.storage_error.connect(self.checker.storage_failed)
        self.bus.gate = self.sched.gate
        self.task: asyncio.Task[None] | None = None

    def start(self, host: Callable[[Model], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await host(self)
            finally:
                self.checker.finish()
                self.sched.finish()

        self.task = asyncio.ensure_future(run())

    async def done(self) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    def visible(self, kind: type[Token] = Token) -> list[Token]:
        h = self.sched.horizon
        return [t for t in self.trace if isinstance(t, kind) and t.line in (Line.CMD, Line.DAT)
                and not isinstance(t, FindingToken) and t.end <= h]


async def identify(m: Model) -> None:
    bus = m.bus
    bus.power_up()
    for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, HCS), (55, 0), (41, HCS), (2, 0),
                       (3, 0)):
        await bus.command(index, arg)
    await bus.command(7, RCA << 16)
    await bus.wait_busy()
    m.sched.request_done()


async def read_blocks(m: Model, lbas: range) -> None:
    for lba in lbas:
        await m.bus.command(17, lba * BLOCK if not m.card.block_addressed else lba)
        await m.bus.read_block()
        m.sched.request_done()


async def write_block(m: Model, lba: int, data: bytes, *, crc_ok: bool = True) -> None:
    await m.bus.command(24, lba if m.card.block_addressed else lba * BLOCK)
    await m.bus.write_block(data, crc_ok=crc_ok)
    await m.bus.wait_busy()
    await m.bus.command(13, RCA << 16)
    m.sched.request_done()


async def session(m: Model) -> None:
    await identify(m)
    await read_blocks(m, range(3))
    await write_block(m, 5, bytes(range(256)) * 2)


@pytest.fixture
def model(make_card: Callable[..., CardHarness]) -> Model:
    return Model(make_card("SDHC"))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- pause and run ------------------------------------------------------------------------


async def test_paused_model_parks_before_its_first_command(model: Model) -> None:
    model.sched.pause()
    model.start(session)
    await settle()
    assert model.sched.parked_at == "command"
    assert not [t for t in model.trace if isinstance(t, CommandToken)]
    model.sched.run()
    await model.done()
    assert model.card.state is CardState.TRAN


async def test_free_run_follows_the_newest_token(model: Model) -> None:
    model.start(session)
    await model.done()
    bus_tokens = [t for t in model.trace if t.line in (Line.CMD, Line.DAT)]
    assert model.sched.horizon == max(t.end for t in bus_tokens)
    assert model.sched.mode is RunMode.FREE


async def test_pause_while_running_keeps_what_was_produced_visible(model: Model) -> None:
    def pause_at_cmd3(item: Token) -> None:  # what a Pause click in the middle does
        if isinstance(item, CommandToken) and item.index == 3:
            model.sched.pause()

    model.trace.events.appended.connect(pause_at_cmd3)
    model.start(session)
    while model.sched.parked_at is None:
        await asyncio.sleep(0)
    assert model.sched.parked_at == "command"
    assert model.sched.horizon == model.sched.computed_end
    assert model.visible(CommandToken)[-1].index == 3  # CMD3's exchange, nothing after
    model.sched.run()
    await model.done()


async def test_realtime_run_paces_simulated_time_by_wall_time(model: Model) -> None:
    # 400 kHz identification: the session lasts ~2 ms of simulated time; at 0.01x real
    # time it cannot finish in less than ~0.2 s of wall time.
    model.sched.run(RunMode.REALTIME, speed=0.01)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    model.start(identify)
    await model.done()
    simulated_s = model.clock.now / 1e12
    assert loop.time() - t0 >= 0.9 * simulated_s / 0.01


# --- stepping: each step advances exactly one unit -----------------------------------------


async def test_step_token_reveals_exactly_one_more_token(model: Model) -> None:
    model.sched.pause()
    model.start(session)
    seen = len(model.visible())
    for _ in range(30):
        await model.sched.step(StepUnit.TOKEN)
        now = len(model.visible())
        assert now == seen + 1
        seen = now
    model.sched.run()
    await model.done()


async def test_step_bit_moves_the_horizon_by_one_clock_period(model: Model) -> None:
    model.sched.pause()
    model.start(session)
    await model.sched.step(StepUnit.TOKEN)  # the power-up clocks
    for _ in range(60):  # through CMD0 and into CMD8 (48 bits each + N_CC)
        before = model.sched.horizon
        after = await model.sched.step(StepUnit.BIT)
        assert after - before == model.clock.period == 2_500_000
    commands = model.visible(CommandToken)
    assert [t.index for t in commands] == [0]  # CMD0 whole, CMD8 only partly shown
    model.sched.run()
    await model.done()


async def test_step_command_reveals_one_exchange_at_a_time(model: Model) -> None:
    model.sched.pause()
    model.start(session)
    expected = [0, 8, 55, 41, 55, 41, 2, 3, 7, 17, 17, 17, 24, 13]
    for n in range(1, len(expected) + 1):
        await model.sched.step(StepUnit.COMMAND)
        shown = [t.index for t in model.visible(CommandToken)]
        assert shown == expected[:n]
    await model.done()


async def test_step_command_after_a_write_includes_data_crc_status_and_busy(
        model: Model) -> None:
    model.sched.pause()
    model.start(session)
    for _ in range(13):  # up to and including CMD24's exchange
        await model.sched.step(StepUnit.COMMAND)
    kinds = [t.kind for t in model.visible()][-4:]
    assert kinds == ["rsp", "data", "crc_status", "busy"]
    model.sched.run()
    await model.done()


async def test_step_transfer_completes_one_request(model: Model) -> None:
    model.sched.pause()
    model.start(session)
    for done in range(1, 6):  # identify, three reads, the write
        await model.sched.step(StepUnit.TRANSFER)
        assert model.sched.transfers_done == done
    await model.done()
    assert model.sched.finished


async def test_steps_after_the_end_reveal_what_is_left_then_stay(model: Model) -> None:
    model.sched.pause()
    model.start(identify)
    await model.sched.step(StepUnit.TRANSFER)
    await model.done()
    end = model.sched.computed_end
    assert await model.sched.step(StepUnit.TOKEN) <= end
    for _ in range(3):
        await model.sched.step(StepUnit.COMMAND)
    assert model.sched.horizon == end


async def test_same_session_gives_the_same_trace(
        make_card: Callable[..., CardHarness]) -> None:
    traces = []
    for _ in range(2):
        m = Model(make_card("SDHC"))
        m.start(session)
        await m.done()
        traces.append([json.dumps(t.to_json()) for t in m.trace])
        m.storage.close()
    assert traces[0] == traces[1]


# --- breakpoints ------------------------------------------------------------------------------


async def _run_to_break(m: Model, spec: str,
                        host: Callable[[Model], Awaitable[None]] = session) -> Token:
    m.sched.breakpoints.append(parse_breakpoint(spec))
    m.start(host)
    while m.sched.hit is None and not m.sched.finished:
        await asyncio.sleep(0)
    assert m.sched.hit is not None, f"{spec} never hit"
    assert m.sched.mode is RunMode.PAUSED
    item = m.sched.hit[1]
    assert m.sched.horizon == item.end
    m.sched.breakpoints.clear()
    m.sched.run()
    await m.done()
    return item


async def test_breakpoint_on_command_index(model: Model) -> None:
    item = await _run_to_break(model, "cmd=17")
    assert isinstance(item, CommandToken) and item.index == 17 and not item.app


async def test_breakpoint_on_acmd_is_not_hit_by_the_plain_command(model: Model) -> None:
    item = await _run_to_break(model, "cmd=ACMD41")
    assert isinstance(item, CommandToken) and item.index == 41 and item.app


async def test_breakpoint_on_response_error_bit(model: Model) -> None:
    async def out_of_range(m: Model) -> None:
        await identify(m)
        await m.bus.command(17, m.storage.block_count + 10)  # beyond the card
        await m.bus.command(13, RCA << 16)

    item = await _run_to_break(model, "rsp-error=OUT_OF_RANGE", out_of_range)
    assert item.kind == "rsp" and item.value & (1 << 31)


async def test_breakpoint_on_state_entry(model: Model) -> None:
    item = await _run_to_break(model, "state=prg")
    assert item.kind == "state" and item.fields()["new"] == "prg"


async def test_breakpoint_on_block_range(model: Model) -> None:
    item = await _run_to_break(model, "lba=2..9")
    assert isinstance(item, CommandToken) and item.index == 17 and item.arg == 2


async def test_breakpoint_on_crc_error(model: Model) -> None:
    async def bad_crc_write(m: Model) -> None:
        await identify(m)
        await write_block(m, 7, bytes(BLOCK), crc_ok=False)

    item = await _run_to_break(model, "crc", bad_crc_write)
    assert item.kind == "data" and not item.crc_ok


async def test_breakpoint_on_protocol_finding(model: Model) -> None:
    async def illegal(m: Model) -> None:
        await identify(m)
        await m.bus.command(2, 0)  # CMD2 in tran: illegal, the card stays silent
        await m.bus.command(13, RCA << 16)

    item = await _run_to_break(model, "finding=no_response", illegal)
    assert isinstance(item, FindingToken) and "CMD2" in item.message


async def test_breakpoint_on_storage_fault(model: Model) -> None:
    model.storage.faults.eio(1, 1)
    item = await _run_to_break(model, "storage-fault")
    assert isinstance(item, FindingToken) and item.code == "storage_fault"


@pytest.mark.parametrize("spec, reason", [
    ("cmd", "needs a value"),
    ("cmd=64", "not 0..63"),
    ("acmd=17", "not an application command"),
    ("rsp-error=READY_FOR_DATA", "not an error bit"),
    ("state=busy", "unknown state"),
    ("lba=9..2", "runs backwards"),
    ("crc=1", "takes no value"),
    ("watch=1", "unknown kind"),
])
def test_bad_breakpoint_specs_say_why(spec: str, reason: str) -> None:
    with pytest.raises(BreakpointError, match=reason):
        parse_breakpoint(spec)


async def test_every_coroutine_parked_at_a_gate_wakes_on_run() -> None:
    """The driver's command (a CMD12 abort) and the controller's data path can wait at
    their gates at the same time: run() releases both, not only the last to park."""
    sched = Scheduler(SimClock(25_000_000), Trace())
    sched.pause()
    passed: list[str] = []

    async def through(op: str) -> None:
        await sched.gate(op)
        passed.append(op)

    waiting = [asyncio.ensure_future(through(op)) for op in ("read", "command")]
    await sched.wait_parked()
    await asyncio.sleep(0.01)  # both are parked now
    assert passed == []
    sched.run()
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
    assert sorted(passed) == ["command", "read"]
