"""Running a lesson on the real simulator, step by step, headless or behind the GUI.

    runner = LessonRunner(find_lesson("03"), workdir)
    report = await runner.run_all()          # or: await runner.run_step(2)
    await runner.aclose()

Per step (schema.py describes the file): open a new simulated card if the step (or the
lesson's first step) asks for one, change the backing store, arm a bus fault, then run
the step's workload, or let a workload paused at an earlier step's breakpoint go on, until
the step's ``until`` breakpoint is hit or the workload ends; measure the event loop's
largest gap meanwhile (sdmodel.heartbeat); evaluate the step's checks over the trace items
the step produced. A capture step decodes a real capture instead.

The scheduler pauses a workload only between bus operations: after a breakpoint the model
finishes the operation in progress and whatever follows up to its next bus operation (a
command's response, the controller's interrupts, PIO buffer accesses), and all of that
belongs to the step. A step with ``until`` whose breakpoint is never hit fails.

Every lesson runs on fresh sparse images in ``workdir``: lessons never touch a user's
image. Events: ``session(Simulator)`` when a new simulated card is opened (a GUI shows
it), ``step(StepReport)`` after each step.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdmodel.card import Card
from sdmodel.decode.api import plan_decode
from sdmodel.decode.edges import sample_edges
from sdmodel.driver.workload import WorkloadResult
from sdmodel.events import EmitterGroup
from sdmodel.heartbeat import LoopHeartbeat
from sdmodel.lessons.bus_faults import BusFaults
from sdmodel.lessons.checks import CHECK_KINDS
from sdmodel.lessons.context import Source, StepContext
from sdmodel.lessons.schema import SPAN, Focus, Lesson, Session, Step, StorageChange
from sdmodel.registers import SCR
from sdmodel.sim.breakpoints import parse_breakpoint
from sdmodel.sim.simulator import Simulator
from sdmodel.storage import parse_fault_spec, parse_latency_spec
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
from sdmodel.trace import Trace

__all__ = ["CheckResult", "StepReport", "LessonReport", "LessonRunner", "LessonCapture",
           "load_capture", "focus_range", "run_lesson"]

_SCR_CMD23 = 1 << 1  # SCR CMD_SUPPORT bit 33 (§5.6) within the field
LEAD_IN_MAX = 4096  # trace items a step looks back for the command its data belongs to


@dataclass(frozen=True)
class CheckResult:
    kind: str
    label: str  # what was expected
    ok: bool
    found: str  # one line: what the step showed


@dataclass(frozen=True)
class StepReport:
    step: Step
    results: tuple[CheckResult, ...]
    start_ps: int = 0  # the stretch of (simulated or captured) time the step covered
    end_ps: int = 0
    focus_range: tuple[int, int] | None = None  # the token the focus points at
    loop_gap_ms: float | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


@dataclass(frozen=True)
class LessonReport:
    lesson: Lesson
    steps: tuple[StepReport, ...]

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(self.lesson.steps) and all(s.ok for s in self.steps)


class _Collector:
    """The trace items appended while a step runs."""

    def __init__(self) -> None:
        self.items: list[Token] = []

    def add(self, item: Token) -> None:
        self.items.append(item)


@dataclass(frozen=True)
class LessonCapture:
    """A capture decoded for a lesson: its tokens, its bus mode, every rising clock edge."""

    tokens: tuple[Token, ...]
    mode: str
    clock_edges: np.ndarray


def load_capture(path: Path) -> LessonCapture:
    """Decode a lesson's capture whole (lesson captures are short snippets)."""
    plan = plan_decode(path)
    roles = plan.channels.roles
    clock = roles.get("CLK", roles.get("SCK"))
    line = roles.get("CMD", roles.get("MOSI"))
    assert clock is not None and line is not None  # map_channels guarantees both
    edges = [batch.times for batch in sample_edges(plan.capture, clock, [line])]
    tokens = tuple(sorted(plan.tokens(), key=lambda t: t.start))
    return LessonCapture(tokens, plan.mode.value, np.concatenate(edges) if edges else np.array([]))


def _lead_in(trace: Trace) -> list[Token]:
    """The newest trace items back to (and with) the last command: what a step's data or
    CRC status may belong to. Bounded: at most LEAD_IN_MAX items are looked at."""
    found = []
    for item in reversed(trace.tokens[-LEAD_IN_MAX:]):
        found.append(item)
        if isinstance(item, CommandToken) or (isinstance(item, SpiToken) and item.what == "cmd"):
            break
    return found[::-1]


def _without_cmd23(card: Card) -> None:
    """A card whose SCR does not offer CMD23, so hosts end multi-block transfers with
    CMD12 (§5.6 CMD_SUPPORT, reference §9)."""
    card.options.cmd23 = False
    support = SCR.field("CMD_SUPPORT")
    card.scr = support.put(card.scr, support.get(card.scr) & ~_SCR_CMD23)


def _apply_storage(sim: Simulator, change: StorageChange) -> None:
    faults = sim.storage.faults
    if change.clear:
        faults.clear()
    if change.release:
        faults.release()
    if change.latency is not None:
        faults.latency = parse_latency_spec(change.latency)
    for spec in change.faults:
        parse_fault_spec(spec).apply(faults)


def _span_matches(span: str, token: Token, answered: dict[int, str]) -> bool:
    """Does ``token`` stand for the focus span (see schema.SPAN)?"""
    if span.startswith("spi:"):
        return isinstance(token, SpiToken) and token.what == span[4:]
    if span.startswith(("CMD", "ACMD")):
        app, index = span.startswith("A"), int(span.lstrip("ACMD"))
        if isinstance(token, CommandToken):
            return token.index == index and bool(token.app) == app
        return (isinstance(token, SpiToken) and token.what == "cmd"
                and token.info.get("index") == index
                and str(token.info.get("name", "")).startswith("ACMD") == app)
    if span.startswith("R"):
        if isinstance(token, ResponseToken):
            return token.type == span
        return isinstance(token, SpiToken) and answered.get(id(token)) == span
    kinds = {"data": DataToken, "busy": BusyToken, "crc_status": CrcStatusToken,
             "idle": IdleToken}
    spi_whats = {"data": "data", "busy": "busy", "crc_status": "data_response"}
    if isinstance(token, SpiToken):
        return token.what == spi_whats.get(span)
    return isinstance(token, kinds[span])


def focus_range(focus: Focus | None, context: StepContext) -> tuple[int, int] | None:
    """Start and end of the first token the step's waveform focus names."""
    if focus is None or focus.panel != "waveform":
        return None
    match = SPAN.fullmatch(focus.target["span"])
    assert match is not None  # schema checked it
    span, after = match.group(1), match.group(2)
    answered = {id(x.response): x.type for x in context.exchanges if x.response is not None}
    armed = after is None
    for token in context.tokens:
        if armed and _span_matches(span, token, answered):
            return token.start, token.end
        armed = armed or _span_matches(after, token, answered)
    return None


def _evaluate(step: Step, context: StepContext) -> list[CheckResult]:
    results = []
    for check in step.checks:
        outcome = CHECK_KINDS[check.kind].evaluate(context, check.params)
        results.append(CheckResult(check.kind, check.label, outcome.ok, outcome.found))
    return results


class LessonRunner:
    """Runs the steps of one lesson in order on a simulator (see the module text)."""

    def __init__(self, lesson: Lesson, workdir: str | Path) -> None:
        self.lesson = lesson
        self.workdir = Path(workdir)
        self.events = EmitterGroup("session", "step")
        self.sim: Simulator | None = None
        self.reports: list[StepReport | None] = [None] * len(lesson.steps)
        self.next_index = 0  # the step that runs next
        self._task: asyncio.Task[WorkloadResult] | None = None  # a paused workload
        self._captures: dict[Path, LessonCapture] = {}

    # --- public ---------------------------------------------------------------------------

    @property
    def workload_paused(self) -> bool:
        """A workload waits at a breakpoint for the next step."""
        return self._task is not None and not self._task.done()

    async def run_step(self, index: int) -> StepReport:
        """Run step ``index`` (0-based), first the steps before it that have not run; an
        earlier step starts the lesson over."""
        if not 0 <= index < len(self.lesson.steps):
            raise IndexError(f"lesson {self.lesson.id} has no step {index + 1}")
        if index < self.next_index:
            await self.reset()
        report: StepReport | None = None
        while self.next_index <= index:
            step = self.lesson.steps[self.next_index]
            report = await (self._capture_step(step) if step.capture else self._sim_step(step))
            self.reports[step.index] = report
            self.next_index += 1
            self.events.step.emit(report)
        assert report is not None
        return report

    async def run_all(self) -> LessonReport:
        """Every step in order (from the start)."""
        if self.next_index:
            await self.reset()
        steps = [await self.run_step(i) for i in range(len(self.lesson.steps))]
        return LessonReport(self.lesson, tuple(steps))

    async def reset(self) -> None:
        """Back to before the first step (the simulated card is closed)."""
        await self._close_session()
        self.reports = [None] * len(self.lesson.steps)
        self.next_index = 0

    async def aclose(self) -> None:
        await self._close_session()

    # --- sessions -------------------------------------------------------------------------

    async def _open(self, session: Session) -> Simulator:
        await self._close_session()
        self.workdir.mkdir(parents=True, exist_ok=True)
        image = self.workdir / f"card-{session.card_size}.img"
        if not image.exists():
            with image.open("wb") as f:
                f.truncate(session.card_size)  # sparse
        sim = Simulator(image, session.options)
        if not session.cmd23:
            _without_cmd23(sim.card)
        self.sim = sim
        self.events.session.emit(sim)
        return sim

    async def _close_session(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        sim, self.sim = self.sim, None
        if sim is not None:
            await sim.aclose()

    # --- steps ----------------------------------------------------------------------------

    async def _sim_step(self, step: Step) -> StepReport:
        session = step.session or (self.lesson.session if self.sim is None else None)
        sim = await self._open(session) if session is not None else self.sim
        assert sim is not None  # schema: a simulated lesson has a session
        if step.storage is not None:
            _apply_storage(sim, step.storage)
        lead_in = _lead_in(sim.trace)
        collector = _Collector()
        sim.trace.events.appended.connect(collector.add)
        start = sim.clock.now
        faults = BusFaults(sim.bus, step.bus_fault) if (
            step.bus_fault is not None and sim.bus is not None) else contextlib.nullcontext()
        try:
            with faults:
                async with LoopHeartbeat() as heartbeat:
                    reached, finished, problem = await self._advance(sim, step)
        finally:
            sim.trace.events.appended.disconnect(collector.add)
        tokens = sorted(collector.items, key=lambda t: t.start)
        context = StepContext(tokens, sim.options.mode, Source.SIM, heartbeat.max_gap_ms,
                              finished, lead_in=lead_in)
        results = _evaluate(step, context)
        if step.until:
            results.insert(0, CheckResult(
                "reached", f"reached the breakpoint {step.until}", reached,
                f"stopped at {step.until}" if reached else
                problem or f"the workload ended without hitting {step.until}"))
        elif problem:
            results.insert(0, CheckResult("reached", "the step finished", False, problem))
        return StepReport(step, tuple(results), start, max(sim.clock.now, start),
                          focus_range(step.focus, context), heartbeat.max_gap_ms)

    async def _advance(self, sim: Simulator, step: Step
                       ) -> tuple[bool, WorkloadResult | None, str]:
        """Run until the step's breakpoint or the workload's end. Returns (breakpoint hit,
        the workload result if it ended, a problem such as a timeout)."""
        scheduler = sim.scheduler
        scheduler.breakpoints[:] = [parse_breakpoint(step.until)] if step.until else []
        hit = asyncio.Event()

        def on_hit(*_: object) -> None:
            hit.set()

        scheduler.events.breakpoint.connect(on_hit)
        try:
            if step.workload:
                self._task = asyncio.ensure_future(sim.run(step.workload))
            elif self._task is not None:
                scheduler.run()  # the paused workload goes on
            if self._task is None:
                return False, None, ""
            waiter = asyncio.ensure_future(hit.wait())
            try:
                await asyncio.wait({self._task, waiter}, timeout=step.timeout_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if hit.is_set():
                await scheduler.wait_parked()
            elif not self._task.done():
                await self._close_session()
                return False, None, f"the step did not finish within {step.timeout_s:g} s"
        finally:
            scheduler.events.breakpoint.disconnect(on_hit)
            scheduler.breakpoints.clear()
        finished = None
        if self._task is not None and self._task.done():
            finished, self._task = self._task.result(), None
        return hit.is_set(), finished, ""

    async def _capture_step(self, step: Step) -> StepReport:
        assert step.capture is not None
        capture = self._captures.get(step.capture)
        if capture is None:
            capture = self._captures[step.capture] = await asyncio.to_thread(
                load_capture, step.capture)
        context = StepContext(capture.tokens, capture.mode, Source.CAPTURE,
                              clock_edges=capture.clock_edges)
        first = capture.tokens[0].start if capture.tokens else 0
        last = max((t.end for t in capture.tokens), default=0)
        return StepReport(step, tuple(_evaluate(step, context)), first, last,
                          focus_range(step.focus, context))


async def run_lesson(lesson: Lesson, workdir: str | Path) -> LessonReport:
    """Every step of ``lesson`` headless; the simulated card is closed afterwards."""
    runner = LessonRunner(lesson, workdir)
    try:
        return await runner.run_all()
    finally:
        await runner.aclose()
