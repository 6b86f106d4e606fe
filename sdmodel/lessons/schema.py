"""Lesson files: loading and validation (TOML, read with ``tomllib``: data only, no code).

A lesson is one file in ``assets/lessons/``, its id the file name without ``.toml``::

    title = "A single block read"
    goal = "..."
    spec = ["§4.3.3"]                       # references for the whole lesson

    [session]                               # the simulated card and host for the lesson
    card = "4GiB"                           # a fresh sparse image of this size
    dma = false                             # (mode, bus_width, clock, latency, faults,
                                            #  legacy_sync, time_scale, seed, cmd23)
    [[steps]]
    title = "CMD17 goes out"
    text = "... {CARD_STATUS.CURRENT_STATE} ..."   # {REGISTER.FIELD} = explain-this-field link
    spec = ["§4.3.3", "§4.12"]
    workload = "init; read 0 1"             # the workload language (sdmodel.driver.workload)
    until = "cmd=17"                        # optional: pause the workload at a breakpoint;
                                            # the next step without a workload resumes it
    session = { card = "1GiB" }             # optional: power up a new card first
    storage = { latency = "300ms" }         # optional: change the backing store first
    bus_fault = { command = 17 }            # optional: corrupt a CRC on the bus (SD mode)
    capture = "imx6_working_snippet.sr"     # or: the step reads this real capture instead
    focus = { panel = "waveform", span = "CMD17" }
    checks = [ { kind = "command", index = 17, response = "R1", state = "tran" } ]

Each step's checks look at what that step produced. ``load_lesson`` raises LessonError
naming the file, the step, the check and the problem on one line; every check is
validated against ``checks.CHECK_KINDS``, workloads, breakpoints, storage and session
options with the parsers the CLI uses, field names against the register tables, and a
capture must lie inside ``assets/captures``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sdmodel.driver.workload import parse_workload
from sdmodel.errors import SdscopeError
from sdmodel.lessons.assets import captures_dir, lessons_dir
from sdmodel.lessons.checks import CHECK_KINDS, CheckKind, ParamType
from sdmodel.lessons.context import Source
from sdmodel.lessons.fields import FieldError, field_refs, lookup_field
from sdmodel.sdhci.registers import ErrorInt, NormalInt
from sdmodel.sim.breakpoints import BreakpointError, parse_breakpoint
from sdmodel.sim.simulator import SimOptions
from sdmodel.states import CardState
from sdmodel.storage import parse_fault_spec, parse_latency_spec
from sdmodel.units import parse_frequency, parse_size

__all__ = [
    "LessonError",
    "Session",
    "StorageChange",
    "BusFault",
    "Focus",
    "Check",
    "Step",
    "Lesson",
    "FOCUS_PANELS",
    "SPAN",
    "load_lesson",
    "load_lessons",
    "find_lesson",
]

MAX_FILE_BYTES = 1 << 20  # a lesson is a page of text, never megabytes
DEFAULT_STEP_TIMEOUT_S = 30.0
DEFAULT_CARD = "4GiB"
# A waveform focus: a command, a response type, or a kind of token (SPI: "spi:<what>"),
# optionally "@CMDn": the first such token after that command ("data@CMD17").
SPAN = re.compile(r"(A?CMD\d{1,2}|R1b?|R[2367]|data|busy|crc_status|idle|"
                  r"spi:(?:cmd|rsp|fill|data|data_response|busy|stop_tran|deselected))"
                  r"(?:@(A?CMD\d{1,2}))?")
# Breakpoints an SPI-mode trace can hit (the others match SD-mode tokens).
_SPI_BREAKPOINTS = ("state", "finding", "storage-fault")


class LessonError(SdscopeError):
    """A lesson file that cannot be used; the message names the file and the place."""


# --------------------------------------------------------------------------- the lesson


@dataclass(frozen=True)
class Session:
    """A simulated card and host: the image size, the card's CMD23 support and the
    simulator options."""

    card_size: int
    cmd23: bool
    options: SimOptions

    @property
    def mode(self) -> str:
        return self.options.mode


@dataclass(frozen=True)
class StorageChange:
    """Changes to the running card's backing store before a step's workload."""

    latency: str | None = None
    faults: tuple[str, ...] = ()
    clear: bool = False  # remove every fault first
    release: bool = False  # release a hang


@dataclass(frozen=True)
class BusFault:
    """A wrong CRC on the bus during the step: on the first command with this index, or
    on the n-th data block the host writes (1 = the first)."""

    command: int | None = None
    data_block: int | None = None


@dataclass(frozen=True)
class Focus:
    """Where the UI should look: ``panel`` and what in it (``target``)."""

    panel: str
    target: Mapping[str, str]

    def as_dict(self) -> dict[str, str]:
        return {"panel": self.panel, **self.target}


@dataclass(frozen=True)
class Check:
    kind: str
    params: Mapping[str, Any]
    label: str  # what the check expects, one line

    @property
    def definition(self) -> CheckKind:
        return CHECK_KINDS[self.kind]


@dataclass(frozen=True)
class Step:
    index: int  # 0-based
    title: str
    text: str
    spec: tuple[str, ...]
    checks: tuple[Check, ...]
    workload: str = ""
    until: str = ""
    session: Session | None = None  # power up a new card (with these options) first
    storage: StorageChange | None = None
    bus_fault: BusFault | None = None
    capture: Path | None = None  # the step reads this capture instead of simulating
    focus: Focus | None = None
    timeout_s: float = DEFAULT_STEP_TIMEOUT_S

    @property
    def number(self) -> int:
        return self.index + 1


@dataclass(frozen=True)
class Lesson:
    id: str
    path: Path
    title: str
    goal: str
    spec: tuple[str, ...]
    session: Session | None  # None: a lesson on captures only
    steps: tuple[Step, ...]

    @property
    def mode(self) -> str:
        return self.session.mode if self.session is not None else "sd"


# --------------------------------------------------------------------------- typed reading


class _Table:
    """A TOML table read key by key; ``done()`` refuses keys nobody asked for."""

    def __init__(self, data: object, where: str, fail: Callable[[str, str], LessonError]) -> None:
        if not isinstance(data, dict):
            raise fail(where, f"must be a table, not {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.where = where
        self.fail = fail
        self.used: set[str] = set()

    def get(self, key: str, kind: ParamType, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.fail(self.where, f"missing key '{key}'")
            return None
        return _typed(self.data[key], kind, lambda problem: self.fail(
            self.where, f"'{key}' {problem}"))

    def table(self, key: str) -> _Table | None:
        self.used.add(key)
        if key not in self.data:
            return None
        return _Table(self.data[key], f"{self.where}, {key}" if self.where else key, self.fail)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            allowed = ", ".join(sorted(self.used))
            raise self.fail(self.where, f"unknown key '{extra[0]}' (allowed: {allowed})")


def _type_name(value: object) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _typed(value: object, kind: ParamType, fail: Callable[[str], LessonError]) -> Any:
    ok = {
        ParamType.INT: isinstance(value, int) and not isinstance(value, bool),
        ParamType.FLOAT: isinstance(value, int | float) and not isinstance(value, bool),
        ParamType.BOOL: isinstance(value, bool),
        ParamType.STR: isinstance(value, str),
        ParamType.STRS: isinstance(value, list) and all(isinstance(v, str) for v in value),
        ParamType.FIELDS: isinstance(value, dict) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()),
    }[kind]
    if not ok:
        raise fail(f"must be {kind.value}, not {_type_name(value)}")
    if kind is ParamType.FLOAT:
        return float(value)  # type: ignore[arg-type]
    if kind is ParamType.STRS:
        return tuple(value)  # type: ignore[arg-type]
    if kind is ParamType.FIELDS:
        return MappingProxyType(dict(value))  # type: ignore[call-overload]
    return value


# --------------------------------------------------------------------------- sections

# [session] keys: TOML type and meaning (SimOptions fields, plus the card).
_SESSION_KEYS: Mapping[str, tuple[ParamType, str]] = MappingProxyType({
    "card": (ParamType.STR, "image size, e.g. 4GiB: SDHC above 2 GiB, SDSC up to 2 GiB"),
    "mode": (ParamType.STR, "sd or spi"),
    "bus_width": (ParamType.INT, "SD mode: DAT lines after ACMD6, 1 or 4"),
    "clock": (ParamType.STR, "card clock after initialisation, e.g. 25MHz"),
    "dma": (ParamType.BOOL, "SDMA (true) or PIO through the buffer data port (false)"),
    "latency": (ParamType.STR, "storage latency, e.g. 300ms or 0-50ms"),
    "faults": (ParamType.STRS, "storage faults, e.g. ['hang']"),
    "legacy_sync": (ParamType.BOOL, "storage I/O inside the event loop (the old freeze)"),
    "time_scale": (ParamType.FLOAT, "simulated seconds per wall second while storage waits"),
    "seed": (ParamType.INT, "seed of random data and latency"),
    "cmd23": (ParamType.BOOL, "the card offers CMD23 in its SCR (§5.6)"),
})

# focus panel -> its keys and what each may name.
FOCUS_PANELS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "waveform": ("span",),
    "registers": ("register", "field"),
    "irq": ("bit",),
    "state": ("state",),
    "storage": ("control",),
})
_STORAGE_CONTROLS = ("latency", "hang", "eio", "disk_full", "durable", "legacy_sync",
                     "responsiveness")
_IRQ_BITS = tuple(str(f.name) for f in (*NormalInt, *ErrorInt))


def _check_value(ok: bool, problem: str) -> str | None:
    return None if ok else problem


def _session(raw: Mapping[str, Any], where: str,
             fail: Callable[[str, str], LessonError]) -> Session:
    table = _Table(dict(raw), where, fail)
    values = {key: table.get(key, kind) for key, (kind, _) in _SESSION_KEYS.items()}
    table.done()
    try:
        card_size = parse_size(values["card"] or DEFAULT_CARD)
        clock = parse_frequency(values["clock"]) if values["clock"] else None
        latency = values["latency"] or "0"
        parse_latency_spec(latency)
        for spec in values["faults"] or ():
            parse_fault_spec(spec)
        options = SimOptions(
            mode=values["mode"] or "sd",
            bus_width=4 if values["bus_width"] is None else values["bus_width"],
            clock_hz=clock, use_dma=values["dma"] is not False, latency=latency,
            faults=values["faults"] or (), legacy_sync=bool(values["legacy_sync"]),
            time_scale=values["time_scale"] or 1.0, seed=values["seed"] or 0)
        options.check()
    except (SdscopeError, ValueError) as error:
        raise fail(where, str(error)) from None
    return Session(card_size, values["cmd23"] is not False, options)


def _storage(table: _Table) -> StorageChange:
    latency = table.get("latency", ParamType.STR)
    faults = table.get("faults", ParamType.STRS) or ()
    change = StorageChange(latency, faults, bool(table.get("clear", ParamType.BOOL)),
                           bool(table.get("release", ParamType.BOOL)))
    table.done()
    try:
        if latency is not None:
            parse_latency_spec(latency)
        for spec in faults:
            parse_fault_spec(spec)
    except ValueError as error:
        raise table.fail(table.where, str(error)) from None
    return change


def _bus_fault(table: _Table, mode: str) -> BusFault:
    fault = BusFault(table.get("command", ParamType.INT), table.get("data_block", ParamType.INT))
    table.done()
    problem = (
        _check_value(mode == "sd", "bus faults are SD-mode only")
        or _check_value((fault.command is None) != (fault.data_block is None),
                        "give exactly one of command or data_block")
        or _check_value(fault.command is None or 0 <= fault.command <= 63,
                        "command must be an index 0..63")
        or _check_value(fault.data_block is None or fault.data_block >= 1,
                        "data_block counts from 1")
    )
    if problem:
        raise table.fail(table.where, problem)
    return fault


def _focus(table: _Table) -> Focus:
    panel = table.get("panel", ParamType.STR, required=True)
    if panel not in FOCUS_PANELS:
        raise table.fail(table.where, f"unknown panel '{panel}' (one of "
                                      f"{', '.join(FOCUS_PANELS)})")
    target = {key: table.get(key, ParamType.STR, required=True) for key in FOCUS_PANELS[panel]}
    table.done()
    problem = {
        "waveform": lambda: _check_value(bool(SPAN.fullmatch(target["span"])),
                                         f"span '{target['span']}' is not a command (CMD17), "
                                         "a response type (R1) or a token kind (data, busy, "
                                         "crc_status, idle, spi:...)"),
        "registers": lambda: _field_problem(target["register"], target["field"]),
        "irq": lambda: _check_value(target["bit"] in _IRQ_BITS,
                                    f"unknown interrupt bit '{target['bit']}'"),
        "state": lambda: _check_value(target["state"].upper() in CardState.__members__,
                                      f"unknown state '{target['state']}'"),
        "storage": lambda: _check_value(target["control"] in _STORAGE_CONTROLS,
                                        f"unknown control '{target['control']}' (one of "
                                        f"{', '.join(_STORAGE_CONTROLS)})"),
    }[panel]()
    if problem:
        raise table.fail(table.where, problem)
    return Focus(panel, MappingProxyType(target))


def _field_problem(register: str, field: str) -> str | None:
    try:
        lookup_field(register, field)
    except FieldError as error:
        return str(error)
    return None


def _default_label(kind: str, params: Mapping[str, Any]) -> str:
    def show(value: Any) -> str:
        if isinstance(value, tuple):
            return "+".join(value)
        if isinstance(value, Mapping):
            return ", ".join(f"{k}={v}" for k, v in value.items())
        return str(value)

    return f"{kind}: " + ", ".join(f"{k}={show(v)}" for k, v in params.items())


def _check(table: _Table, mode: str, source: Source) -> Check:
    kind_name = table.get("kind", ParamType.STR, required=True)
    kind = CHECK_KINDS.get(kind_name)
    if kind is None:
        raise table.fail(table.where, f"unknown check kind '{kind_name}' (one of "
                                      f"{', '.join(CHECK_KINDS)})")
    label = table.get("label", ParamType.STR)
    params = {}
    for param in kind.params:
        value = table.get(param.name, param.type, required=param.required)
        if value is None:
            continue
        wrong = [v for v in (value if isinstance(value, tuple) else (value,))
                 if param.choices is not None and v not in param.choices]
        if wrong:
            raise table.fail(table.where, f"'{param.name}' = '{wrong[0]}' is not one of "
                                          f"{', '.join(param.choices or ())}")
        params[param.name] = value
    table.done()
    if kind.source is not Source.ANY and kind.source is not source:
        raise table.fail(table.where, f"a {kind.name} check needs a {kind.source.value} step, "
                                      f"this one is a {source.value} step")
    problem = kind.validate(params, mode) if kind.validate is not None else None
    if problem:
        raise table.fail(table.where, f"{kind.name}: {problem}")
    frozen = MappingProxyType(params)
    return Check(kind.name, frozen, label or _default_label(kind.name, frozen))


def _capture_path(name: str, where: str, fail: Callable[[str, str], LessonError]) -> Path:
    """A capture inside assets/captures; paths never lead outside that folder."""
    folder = captures_dir().resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(folder):
        raise fail(where, f"capture '{name}' is outside {folder}")
    if not path.is_file():
        raise fail(where, f"capture '{name}' does not exist in {folder}")
    return path


# --------------------------------------------------------------------------- loading


class _Flow:
    """Whether a workload is paused at a breakpoint between steps (runner semantics)."""

    def __init__(self) -> None:
        self.paused = False

    def step(self, workload: str, until: str, new_session: bool, capture: bool) -> str | None:
        if capture:
            return None
        if new_session:
            self.paused = False
        if workload and self.paused:
            return ("starts a workload while the previous one is paused at a breakpoint; "
                    "add a step without 'until' first")
        if until and not workload and not self.paused:
            return "'until' needs a workload to run (here or paused in an earlier step)"
        self.paused = bool(until) and (bool(workload) or self.paused)
        return None


def _step(table: _Table, index: int, lesson_session: Mapping[str, Any], flow: _Flow,
          ) -> Step:
    fail, where = table.fail, table.where
    title = table.get("title", ParamType.STR, required=True)
    text = table.get("text", ParamType.STR, required=True)
    spec = table.get("spec", ParamType.STRS) or ()
    capture_name = table.get("capture", ParamType.STR)
    workload = (table.get("workload", ParamType.STR) or "").strip()
    until = (table.get("until", ParamType.STR) or "").strip()
    timeout = table.get("timeout_s", ParamType.FLOAT) or DEFAULT_STEP_TIMEOUT_S
    session_table = table.table("session")
    storage_table = table.table("storage")
    fault_table = table.table("bus_fault")
    focus_table = table.table("focus")
    checks_raw = table.data.get("checks")  # a list of tables, read by _check
    table.used.add("checks")
    table.done()

    for register, field in field_refs(text):
        problem = _field_problem(register, field)
        if problem:
            raise fail(where, f"text names {{{register}.{field}}}: {problem}")
    capture = _capture_path(capture_name, where, fail) if capture_name else None
    if capture is not None:
        extra = [name for name, given in (("workload", workload), ("until", until),
                                          ("session", session_table),
                                          ("storage", storage_table),
                                          ("bus_fault", fault_table)) if given]
        if extra:
            raise fail(where, f"a capture step cannot also have {extra[0]}")
    session = (_session({**lesson_session, **session_table.data}, f"{where}, session", fail)
               if session_table is not None else None)
    mode = (session or _session(lesson_session, "session", fail)).mode
    if workload:
        try:
            parse_workload(workload)
        except SdscopeError as error:
            raise fail(where, str(error)) from None
    if until:
        try:
            breakpoint_ = parse_breakpoint(until)
        except BreakpointError as error:
            raise fail(where, str(error)) from None
        if mode == "spi" and breakpoint_.kind not in _SPI_BREAKPOINTS:
            raise fail(where, f"until '{until}': in SPI mode use one of "
                              f"{', '.join(_SPI_BREAKPOINTS)}")
    problem = flow.step(workload, until, session is not None, capture is not None)
    if problem:
        raise fail(where, problem)
    if not isinstance(checks_raw, list) or not checks_raw:
        raise fail(where, "needs a non-empty list 'checks'")
    source = Source.CAPTURE if capture is not None else Source.SIM
    checks = tuple(_check(_Table(raw, f"{where}, check {n}", fail), mode, source)
                   for n, raw in enumerate(checks_raw, start=1))
    return Step(
        index=index, title=title, text=text, spec=spec, checks=checks, workload=workload,
        until=until, session=session,
        storage=_storage(storage_table) if storage_table is not None else None,
        bus_fault=_bus_fault(fault_table, mode) if fault_table is not None else None,
        capture=capture, focus=_focus(focus_table) if focus_table is not None else None,
        timeout_s=timeout,
    )


def load_lesson(path: str | Path) -> Lesson:
    """Read and validate one lesson file."""
    path = Path(path)

    def fail(where: str, problem: str) -> LessonError:
        return LessonError(f"lesson {path.name}: {where + ': ' if where else ''}{problem}")

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail("", f"{size} bytes is too large for a lesson file")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise fail("", f"not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise fail("", "not UTF-8 text") from None
    except OSError as error:
        raise fail("", error.strerror or str(error)) from None
    top = _Table(data, "", fail)
    title = top.get("title", ParamType.STR, required=True)
    goal = top.get("goal", ParamType.STR, required=True)
    spec = top.get("spec", ParamType.STRS) or ()
    session_table = top.table("session")
    steps_raw = top.data.get("steps")
    top.used.add("steps")
    top.done()
    lesson_session = dict(session_table.data) if session_table is not None else {}
    if not isinstance(steps_raw, list) or not steps_raw:
        raise fail("", "needs at least one [[steps]] table")
    flow = _Flow()
    steps = tuple(_step(_Table(raw, f"step {n}", fail), n - 1, lesson_session, flow)
                  for n, raw in enumerate(steps_raw, start=1))
    simulated = any(s.capture is None for s in steps)
    session = _session(lesson_session, "session", fail) if simulated else None
    return Lesson(path.stem, path, title, goal, spec, session, steps)


def load_lessons(folder: Path | None = None) -> list[Lesson]:
    """Every lesson in ``folder`` (default: the shipped ones), by id."""
    folder = folder if folder is not None else lessons_dir()
    return [load_lesson(path) for path in sorted(folder.glob("*.toml"))]


def find_lesson(name: str) -> Lesson:
    """A shipped lesson by id or unique id prefix ("03"), or a lesson file by path."""
    if name.endswith(".toml") or "/" in name or "\\" in name:
        return load_lesson(name)
    paths = sorted(lessons_dir().glob("*.toml"))
    exact = [p for p in paths if p.stem == name]
    found = exact or [p for p in paths if p.stem.startswith(name)]
    if len(found) != 1:
        known = ", ".join(p.stem for p in paths)
        why = "matches several lessons" if found else "is not a lesson"
        raise LessonError(f"'{name}' {why} (lessons: {known})")
    return load_lesson(found[0])
