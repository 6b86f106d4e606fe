"""The declarative checks of a lesson step: ONE table of check kinds (name, parameters,
meaning, evaluator over the step's trace).

A lesson file writes a check as a TOML table, ``{ kind = "command", index = 17,
response = "R1", state = "tran" }``; :mod:`sdmodel.lessons.schema` validates it against
``CHECK_KINDS`` and the runner evaluates it over what the step produced
(:class:`sdmodel.lessons.context.StepContext`): simulated tokens and events, or the tokens
decoded from a real capture, in SD mode or SPI mode. Every evaluation returns whether it
passed and one line saying what was found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from sdmodel.commands import Resp, lookup
from sdmodel.decode.findings import FINDINGS
from sdmodel.lessons.context import (
    Exchange,
    Source,
    StepContext,
    card_state,
    card_status,
    spi_is_app,
)
from sdmodel.registers import (
    ALL_REGISTERS,
    CARD_STATUS,
    CID,
    CSD_V1,
    CSD_V2,
    OCR,
    R6_STATUS,
    SPI_R1,
    SPI_R2_STATUS,
    CardStatus,
    Register,
    csd_table,
)
from sdmodel.sdhci.registers import REGISTERS as SDHCI_REGISTERS
from sdmodel.sdhci.registers import ErrorInt, NormalInt
from sdmodel.states import CardState
from sdmodel.tokens import (
    PS_PER_S,
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    IdleToken,
    SpiToken,
    Token,
)
from sdmodel.trace import IrqEvent, RegisterEvent, StateEvent

__all__ = [
    "ParamType",
    "Param",
    "CheckKind",
    "CHECK_KINDS",
    "Outcome",
    "response_registers",
]

_RESPONSE_TYPES = tuple(r.value for r in Resp)  # none, R1, R1b, R2, R3, R6, R7
_SPI_RESPONSE = {0x05: CrcStatus.ACCEPTED, 0x0B: CrcStatus.CRC_ERROR, 0x0D: CrcStatus.WRITE_ERROR}
_CRC_STATUS = {s.name.lower(): s for s in CrcStatus}
_TOKEN_KINDS = ("cmd", "rsp", "data", "crc_status", "busy", "idle", "irq", "state", "finding",
                "reg", "spi")
_SPI_WHATS = ("cmd", "rsp", "fill", "data", "data_response", "busy", "stop_tran", "deselected")
_TIMINGS = ("N_CR", "N_AC", "N_WR", "N_CRC")
_STATE_NAMES = tuple(s.label for s in CardState)
_IRQ_BITS = tuple(str(f.name) for f in (*NormalInt, *ErrorInt))
_READ_INDEXES = {(6, False), (17, False), (18, False), (19, False), (30, False), (56, False),
                 (13, True), (22, True), (51, True)}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    found: str  # one line: what the step showed


def _pass(found: str) -> Outcome:
    return Outcome(True, found)


def _fail(found: str) -> Outcome:
    return Outcome(False, found)


# --------------------------------------------------------------------------- parameters


class ParamType(StrEnum):
    """The TOML type of a parameter; the value reads in "must be <value>"."""

    INT = "an integer"
    FLOAT = "a number"
    BOOL = "true or false"
    STR = "a string"
    STRS = "a list of strings"
    FIELDS = "a table of field = integer"


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    meaning: str
    required: bool = False
    choices: tuple[str, ...] | None = None  # allowed values of a STR / STRS parameter


# (parameters, bus mode) -> what is wrong with them, or None when they are fine
Rule = Callable[[Mapping[str, Any], str], str | None]


@dataclass(frozen=True)
class CheckKind:
    """One kind of check: its parameters, what it means and how it is evaluated."""

    name: str
    meaning: str
    params: tuple[Param, ...]
    evaluate: Callable[[StepContext, Mapping[str, Any]], Outcome]
    source: Source = Source.ANY
    validate: Rule | None = field(default=None, compare=False)  # cross-parameter rules


# --------------------------------------------------------------------------- helpers


def _ms(ps: int) -> float:
    return ps / PS_PER_S * 1e3


def _fmt_ms(ms: float) -> str:
    return f"{ms:.3f} ms" if ms >= 1 else f"{ms * 1e3:.3f} us"


def _hz(period: int) -> float:
    return PS_PER_S / period if period else 0.0


def _fmt_hz(hz: float) -> str:
    for unit, factor in (("MHz", 1e6), ("kHz", 1e3)):
        if hz >= factor:
            return f"{hz / factor:.4g} {unit}"
    return f"{hz:.4g} Hz"


def _label(index: int, app: bool) -> str:
    return f"{'ACMD' if app else 'CMD'}{index}"


def _in_range(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _range_text(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low:g}..{high:g} {unit}"
    return f">= {low:g} {unit}" if low is not None else f"<= {high:g} {unit}"


def _need_bound(low: str, high: str) -> Rule:
    def check(p: Mapping[str, Any], _mode: str) -> str | None:
        if p.get(low) is None and p.get(high) is None:
            return f"needs {low} or {high}"
        if p.get(low) is not None and p.get(high) is not None and p[low] > p[high]:
            return f"{low} ({p[low]}) is above {high} ({p[high]})"
        return None

    return check


def _only_sd(*names: str) -> Rule:
    def check(p: Mapping[str, Any], mode: str) -> str | None:
        used = [n for n in names if p.get(n) is not None]
        if mode != "sd" and used:
            return f"{', '.join(used)} only apply in SD mode (SPI R1 carries no card state)"
        return None

    return check


def _all(*rules: Rule) -> Rule:
    def check(p: Mapping[str, Any], mode: str) -> str | None:
        return next((e for e in (rule(p, mode) for rule in rules) if e), None)

    return check


def _matching(ctx: StepContext, p: Mapping[str, Any]) -> list[Exchange]:
    app = bool(p.get("app", False))
    return [x for x in ctx.exchanges if x.index == p["index"] and x.app == app
            and (p.get("arg") is None or x.arg == p["arg"])]


def _seen_commands(ctx: StepContext) -> str:
    names = list(dict.fromkeys(_label(x.index, x.app) for x in ctx.exchanges))
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "none"


def _first_failure(items: Iterable[Any], problems: Callable[[Any], str | None]
                   ) -> tuple[Any | None, str | None]:
    """The first item without a problem (None, None), or the first item and its problem."""
    first: tuple[Any | None, str | None] = (None, None)
    for item in items:
        problem = problems(item)
        if problem is None:
            return item, None
        if first[0] is None:
            first = (item, problem)
    return first


# --------------------------------------------------------------------------- registers


def response_registers(mode: str, rtype: str, index: int | None, name: str | None = None
                       ) -> tuple[Register, ...]:
    """The register(s) a response's value decodes with: ``name`` if given, else by type
    (SD: R1 card status §4.10.1, R6 its 16 status bits §4.9.5, R3 OCR §5.1, R2 CID or CSD
    §5.2/§5.3; SPI: R1 §7.3.2, R2's second byte, R3 OCR). Empty: no register applies."""
    if name == "CSD":
        return (CSD_V1, CSD_V2)
    if name:
        return (ALL_REGISTERS[name],)
    if mode == "spi":
        return {"R1": (SPI_R1,), "R1b": (SPI_R1,), "R2": (SPI_R2_STATUS,),
                "R3": (OCR,)}.get(rtype, ())
    if rtype == "R2":
        return (CID,) if index in (2, 10) else (CSD_V1, CSD_V2)
    return {"R1": (CARD_STATUS,), "R1b": (CARD_STATUS,), "R6": (R6_STATUS,),
            "R3": (OCR,)}.get(rtype, ())


def _register_value(table: Register, value: int) -> int:
    """The bits of ``value`` that ``table`` covers (R6 status: the low 16 bits)."""
    return value & ((1 << table.width) - 1)


def _field_problems(tables: Sequence[Register], value: int,
                    wanted: Mapping[str, int]) -> str | None:
    if tables == (CSD_V1, CSD_V2):
        tables = (csd_table(value),)
    table = tables[0]
    raw = _register_value(table, value)
    wrong = []
    for name, expected in wanted.items():
        try:
            got = table.field(name).get(raw)
        except KeyError:
            wrong.append(f"{table.name} has no {name}")
            continue
        if got != expected:
            wrong.append(f"{name}={got} (expected {expected})")
    return ", ".join(wrong) or None


def _fields_of(tables: Sequence[Register], value: int, names: Iterable[str]) -> str:
    if tables == (CSD_V1, CSD_V2):
        tables = (csd_table(value),)
    raw = _register_value(tables[0], value)
    fields = [tables[0].field(n) for n in names]
    return ", ".join(f"{f.name}={f.describe(f.get(raw))}" for f in fields)


def _fields_rule(p: Mapping[str, Any], mode: str) -> str | None:
    """``fields`` must name fields of the register the response decodes with."""
    if not p.get("fields"):
        return None
    tables = response_registers(mode, p.get("type", ""), p.get("index"), p.get("register"))
    if not tables:
        return f"a {mode.upper()} {p.get('type')} response has no register to decode; give register"
    names = {f.name for t in tables for f in t.fields}
    unknown = [n for n in p["fields"] if n not in names]
    return f"unknown field(s) {', '.join(unknown)} of {tables[0].name}" if unknown else None


# --------------------------------------------------------------------------- evaluators


def _command(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    label = _label(p["index"], bool(p.get("app", False)))
    matches = _matching(ctx, p)
    if not matches:
        return _fail(f"no {label} in this step (commands: {_seen_commands(ctx)})")

    def problems(x: Exchange) -> str | None:
        wants_answer = p.get("response", "none") != "none" or any(
            p.get(key) for key in ("state", "set", "clear"))
        if x.response is None and wants_answer:
            return "the card did not answer"
        wrong = []
        if p.get("response") is not None and x.type != p["response"]:
            wrong.append(f"answered {x.type}, not {p['response']}")
        status = card_status(x)
        if p.get("state") is not None and card_state(x) != p["state"]:
            wrong.append(f"CURRENT_STATE {card_state(x)}, not {p['state']}")
        for name in p.get("set", ()):
            if status is None or not status & CardStatus[name]:
                wrong.append(f"{name} not set")
        for name in p.get("clear", ()):
            if status is None or status & CardStatus[name]:
                wrong.append(f"{name} set")
        return "; ".join(wrong) or None

    hit, problem = _first_failure(matches, problems)
    if problem is None:
        return _pass(hit.describe())
    return _fail(f"{hit.describe()}: {problem}")


def _response(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    rows = [x for x in ctx.exchanges if x.response is not None and x.type == p["type"]
            and (p.get("index") is None or (x.index == p["index"]
                                            and x.app == bool(p.get("app", False))))]
    if not rows:
        where = "" if p.get("index") is None else f" to {_label(p['index'], bool(p.get('app')))}"
        return _fail(f"no {p['type']} response{where} in this step")
    wanted_bytes = bytes.fromhex(p["bytes"]) if p.get("bytes") else None

    def problems(x: Exchange) -> str | None:
        assert x.value is not None
        wrong = []
        if p.get("value") is not None:
            mask = p.get("mask", -1)
            if x.value & mask != p["value"] & mask:
                wrong.append(f"value 0x{x.value & mask:X}, not 0x{p['value'] & mask:X}")
        if wanted_bytes is not None and x.raw != wanted_bytes:
            wrong.append(f"bytes {x.raw.hex(' ').upper()}, not {wanted_bytes.hex(' ').upper()}")
        if p.get("fields"):
            tables = response_registers(ctx.mode, x.type, x.index, p.get("register"))
            problem = _field_problems(tables, x.value, p["fields"])
            if problem:
                wrong.append(problem)
        return "; ".join(wrong) or None

    hit, problem = _first_failure(rows, problems)
    text = hit.describe()
    if p.get("fields"):
        tables = response_registers(ctx.mode, hit.type, hit.index, p.get("register"))
        text += f" [{_fields_of(tables, hit.value, p['fields'])}]"
    return _pass(text) if problem is None else _fail(f"{text}: {problem}")


def _busy_periods(ctx: StepContext, p: Mapping[str, Any]) -> list[tuple[float, str]]:
    if p["line"] == "MISO":
        return [(_ms(t.end - t.start), "busy") for t in ctx.spi("busy")]
    reason = p.get("reason")
    return [(_ms(t.end - t.start), t.reason) for t in ctx.of(BusyToken)
            if reason is None or reason in t.reason]


def _busy(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    periods = _busy_periods(ctx, p)
    what = f"busy on {p['line']}" + (f" ({p['reason']})" if p.get("reason") else "")
    if not periods:
        return _fail(f"no {what} in this step")
    longest = max(periods)
    text = f"{len(periods)} {what} period(s), longest {_fmt_ms(longest[0])} ({longest[1]})"
    ok = any(_in_range(ms, p.get("min_ms"), p.get("max_ms")) for ms, _ in periods)
    wanted = _range_text(p.get("min_ms"), p.get("max_ms"), "ms")
    return Outcome(ok, text if ok else f"{text}; wanted {wanted}")


def _busy_line(p: Mapping[str, Any], mode: str) -> str | None:
    line = "DAT0" if mode == "sd" else "MISO"
    return None if p["line"] == line else f"busy shows on {line} in {mode.upper()} mode"


def _irq(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    events = [e for e in ctx.of(IrqEvent) if e.level]
    for e in events:
        if p["bit"] in e.bits:
            return _pass(f"{p['bit']} asserted at {_ms(e.start):.3f} ms "
                         f"(interrupt status 0x{e.status:08X})")
    seen = sorted({b for e in events for b in e.bits})
    return _fail(f"{p['bit']} never asserted (bits seen: {', '.join(seen) or 'none'})")


def _finding(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    findings = ctx.of(FindingToken)
    for f in findings:
        if f.code == p["code"]:
            return _pass(f"{f.code}: {f.message}")
    codes = sorted({f.code for f in findings})
    return _fail(f"no {p['code']} finding (findings: {', '.join(codes) or 'none'})")


def _state(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    changes = [e for e in ctx.of(StateEvent) if e.new != e.old]
    for e in changes:
        if e.new == p["state"] and (p.get("from") is None or e.old == p["from"]):
            return _pass(f"{e.old} -> {e.new} ({e.reason}) at {_ms(e.start):.3f} ms")
    seen = ", ".join(f"{e.old}->{e.new}" for e in changes[:10]) or "none"
    return _fail(f"the card never entered {p['state']} (changes: {seen})")


def _clock(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    low, high = p.get("min_hz"), p.get("max_hz")
    if p.get("index") is not None:
        rows = [(x.name, x.command.period) for x in _matching(ctx, p)]
    else:
        rows = [(t.kind, t.period) for t in ctx.tokens if t.period and not isinstance(
            t, FindingToken | IrqEvent | StateEvent)]
    rows = [(name, period) for name, period in rows if period]
    if not rows:
        return _fail("no clocked token to measure in this step")
    for name, period in rows:
        if _in_range(_hz(period), low, high):
            return _pass(f"{name} clocked at {_fmt_hz(_hz(period))}")
    name, period = rows[0]
    return _fail(f"{name} clocked at {_fmt_hz(_hz(period))}, wanted "
                 f"{_range_text(low, high, 'Hz')}")


@dataclass(frozen=True)
class _Block:
    token: Token
    read: bool
    width: int
    nbytes: int
    crc_ok: bool
    data: bytes | None
    command: tuple[int, bool] | None  # (index, app) of the command before the block


def _blocks(ctx: StepContext) -> list[_Block]:
    """Data blocks of both modes, each with the command it follows."""
    found = []
    command: tuple[int, bool] | None = None
    for t in (*ctx.lead_in, *ctx.tokens):
        if not ctx.in_step(t) and not isinstance(t, CommandToken | SpiToken):
            continue
        if isinstance(t, CommandToken):
            found_cmd = lookup(t.index, t.app)
            command = (t.index, bool(t.app and found_cmd is not None and found_cmd.app))
        elif isinstance(t, SpiToken) and t.what == "cmd":
            command = (int(t.info.get("index", -1)), spi_is_app(t.info))
        elif not ctx.in_step(t):
            continue
        elif isinstance(t, DataToken):
            found.append(_Block(t, not t.to_card, t.width, t.nbytes, t.crc_ok, t.data, command))
        elif isinstance(t, SpiToken) and t.what == "data":
            read = t.info.get("dir") == "read"
            n = int(t.info.get("nbytes", 0))
            payload = (t.miso if read else t.mosi) or b""
            found.append(_Block(t, read, 1, n, bool(t.info.get("crc_ok", True)),
                                bytes(payload[1:1 + n]) if payload else None, command))
    return found


def _data(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    blocks = _blocks(ctx)
    if not blocks:
        return _fail("no data block in this step")

    def describe(b: _Block) -> str:
        us = (b.token.end - b.token.start) / PS_PER_S * 1e6
        return (f"{'read' if b.read else 'write'} {b.nbytes} B on {b.width} line(s), "
                f"CRC {'ok' if b.crc_ok else 'bad'}, {us:.1f} us")

    def problems(b: _Block) -> str | None:
        wrong = []
        if p.get("index") is not None and b.command != (p["index"], bool(p.get("app"))):
            wrong.append(f"follows {_label(*b.command) if b.command else 'no command'}")
        if p.get("direction") is not None and b.read != (p["direction"] == "read"):
            wrong.append("direction")
        for key, got in (("width", b.width), ("nbytes", b.nbytes), ("crc_ok", b.crc_ok)):
            if p.get(key) is not None and got != p[key]:
                wrong.append(f"{key}={got}")
        us = (b.token.end - b.token.start) / PS_PER_S * 1e6
        if not _in_range(us, p.get("min_us"), p.get("max_us")):
            wrong.append(f"{us:.1f} us")
        if p.get("fields"):
            if b.data is None:
                wrong.append("payload not kept")
            else:
                table = ALL_REGISTERS[p["register"]]
                problem = _field_problems((table,), int.from_bytes(b.data, "big"), p["fields"])
                if problem:
                    wrong.append(problem)
        return ", ".join(wrong) or None

    hit, problem = _first_failure(blocks, problems)
    text = describe(hit)
    if p.get("fields") and hit.data is not None:
        table = ALL_REGISTERS[p["register"]]
        text += f" [{_fields_of((table,), int.from_bytes(hit.data, 'big'), p['fields'])}]"
    return _pass(text) if problem is None else _fail(f"{text}: {problem}")


def _data_rules(p: Mapping[str, Any], _mode: str) -> str | None:
    if p.get("fields") and not p.get("register"):
        return "fields need register (e.g. SCR, SD_STATUS, SWITCH_STATUS)"
    if p.get("fields"):
        table = ALL_REGISTERS[p["register"]]
        unknown = [n for n in p["fields"] if n not in {f.name for f in table.fields}]
        if unknown:
            return f"unknown field(s) {', '.join(unknown)} of {table.name}"
    if p.get("nbytes") is not None and p.get("register"):
        if p["nbytes"] * 8 != ALL_REGISTERS[p["register"]].width:
            return f"{p['register']} is not {p['nbytes']} bytes"
    return _need_bound("min_us", "max_us")(p, _mode) if (
        p.get("min_us") is not None or p.get("max_us") is not None) else None


def _crc_status(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    seen = [CrcStatus(t.status) for t in ctx.of(CrcStatusToken) if t.status in set(CrcStatus)]
    seen += [_SPI_RESPONSE[(t.miso or b"\xff")[0] & 0x1F] for t in ctx.spi("data_response")
             if (t.miso or b"\xff")[0] & 0x1F in _SPI_RESPONSE]
    if not seen:
        return _fail("no CRC status / data response in this step")
    wanted = _CRC_STATUS[p["status"]]
    names = ", ".join(f"{s.value:03b} {s.name.lower()}" for s in seen[:8])
    return Outcome(wanted in seen, f"{len(seen)} status token(s): {names}")


def _select(ctx: StepContext, p: Mapping[str, Any]) -> list[Any]:
    """Items of kind ``of`` in the step (commands and responses of both modes)."""
    of = p["of"]
    if of == "cmd":
        rows: list[Any] = ctx.exchanges
        if p.get("index") is not None:
            rows = _matching(ctx, p)
        return rows
    if of == "rsp":
        return [x for x in ctx.exchanges if x.response is not None and (
            p.get("index") is None or x.index == p["index"])]
    if of == "spi":
        return [t for t in ctx.of(SpiToken) if p.get("what") in (None, t.what)]
    if of == "irq":
        return [e for e in ctx.of(IrqEvent) if e.level and p.get("bit") in (None, *e.bits)]
    if of == "data":
        return _blocks(ctx)
    if of == "reg":
        return [t for t in ctx.of(RegisterEvent) if p.get("register") in (None, t.reg)]
    return [t for t in ctx.tokens if t.kind == of]


def _count(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    n = len(_select(ctx, p))
    what = p["of"] + (f" {_label(p['index'], bool(p.get('app')))}"
                      if p.get("index") is not None else "")
    what += f" {p['what']}" if p.get("what") else ""
    what += f" {p['bit']}" if p.get("bit") else ""
    what += f" {p['register']}" if p.get("register") else ""
    ok = _in_range(n, p.get("at_least"), p.get("at_most"))
    text = f"{n} x {what}"
    return _pass(text) if ok else _fail(
        f"{text}, wanted {_range_text(p.get('at_least'), p.get('at_most'), '')}".rstrip())


def _count_rules(p: Mapping[str, Any], mode: str) -> str | None:
    if p.get("index") is not None and p["of"] not in ("cmd", "rsp"):
        return "index applies to of = cmd or rsp"
    if p.get("what") is not None and p["of"] != "spi":
        return "what applies to of = spi"
    if p.get("bit") is not None and p["of"] != "irq":
        return "bit applies to of = irq"
    if p.get("register") is not None and p["of"] != "reg":
        return "register applies to of = reg"
    return _need_bound("at_least", "at_most")(p, mode)


def _first_after(tokens: Sequence[Token], t0: int, want: Callable[[Token], bool]
                 ) -> Token | None:
    return next((t for t in tokens if t.start >= t0 and want(t)), None)


def _timing_rows(ctx: StepContext, p: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(what, clocks) for each gap ``between`` names whose later token is in the step
    (§4.12; reference §10: the clocks strictly between the two tokens)."""
    name, index = p["between"], p.get("index")
    rows = []
    every = [*ctx.lead_in, *ctx.tokens]

    def read_block(t: Token) -> bool:
        return isinstance(t, DataToken) and not t.to_card

    def write_block(t: Token) -> bool:
        return isinstance(t, DataToken) and t.to_card

    for x in ctx.all_exchanges:
        if index is not None and (x.index != index or x.app != bool(p.get("app"))):
            continue
        cmd, rsp, period = x.command, x.response, x.command.period
        later: Token | None = None
        if name == "N_CR":
            later, since = rsp, cmd.end
        elif name == "N_AC" and (x.index, x.app) in _READ_INDEXES:
            later, since = _first_after(every, cmd.end, read_block), cmd.end
        elif name == "N_WR" and x.index in (24, 25) and not x.app and rsp is not None:
            later, since = _first_after(every, rsp.end, write_block), rsp.end
        if later is not None and period and ctx.in_step(later):
            rows.append((x.name, round((later.start - since) / period)))
    if name == "N_CRC":
        for block in (t for t in ctx.tokens if write_block(t)):
            status = _first_after(ctx.tokens, block.end,
                                  lambda t: isinstance(t, CrcStatusToken))
            if status is not None and block.period:
                rows.append(("written block", round((status.start - block.end) / block.period)))
    return rows


def _timing(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    rows = _timing_rows(ctx, p)
    if not rows:
        return _fail(f"nothing to measure {p['between']} on in this step")
    low, high = p.get("min_clocks"), p.get("max_clocks")
    bad = [(what, n) for what, n in rows if not _in_range(n, low, high)]
    shown = ", ".join(f"{what}: {n}" for what, n in rows[:6])
    text = f"{p['between']} in clocks: {shown}"
    if bad:
        return _fail(f"{text}; wanted {_range_text(low, high, 'clocks')}")
    return _pass(text)


def _idle(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    runs = [t for t in ctx.of(IdleToken) if p.get("reason") in (None, t.reason)]
    if not runs:
        return _fail("no idle clocks" + (f" ({p['reason']})" if p.get("reason") else ""))
    for t in runs:
        if _in_range(t.clocks, p.get("min_clocks"), p.get("max_clocks")):
            return _pass(f"{t.clocks} idle clocks ({t.reason}) at {_fmt_hz(_hz(t.period))}")
    return _fail(f"{runs[0].clocks} idle clocks ({runs[0].reason}), wanted "
                 f"{_range_text(p.get('min_clocks'), p.get('max_clocks'), 'clocks')}")


def _spi(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    runs = ctx.spi(p["what"])
    if p.get("index") is not None:  # the command itself, or a run that follows it
        wanted = (p["index"], bool(p.get("app")))
        owner = None
        keep = []
        for t in ctx.of(SpiToken):
            if t.what == "cmd":
                owner = int(t.info.get("index", -1)), spi_is_app(t.info)
            if t.what == p["what"] and owner == wanted:
                keep.append(t)
        runs = keep
    if not runs:
        return _fail(f"no SPI {p['what']} bytes in this step")
    miso = bytes.fromhex(p["miso"]) if p.get("miso") else b""
    mosi = bytes.fromhex(p["mosi"]) if p.get("mosi") else b""

    def show(t: SpiToken) -> str:
        side = (t.miso or b"") if p.get("mosi") is None else (t.mosi or b"")
        return (f"{t.what}: {side[:8].hex(' ').upper()}{' ...' if len(side) > 8 else ''} "
                f"({len(t.miso or t.mosi or b'')} bytes)")

    def problems(t: SpiToken) -> str | None:
        if not (t.miso or b"").startswith(miso) or not (t.mosi or b"").startswith(mosi):
            return "bytes differ"
        if len(t.miso or t.mosi or b"") < p.get("min_bytes", 0):
            return "too short"
        return None

    hit, problem = _first_failure(runs, problems)
    return _pass(show(hit)) if problem is None else _fail(f"{show(hit)}: {problem}")


def _loop_gap(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    gap = ctx.loop_gap_ms
    if gap is None:
        return _fail("the event loop was not measured in this step")
    ok = _in_range(gap, p.get("min_ms"), p.get("max_ms"))
    text = f"largest event-loop gap {gap:.1f} ms"
    return _pass(text) if ok else _fail(
        f"{text}, wanted {_range_text(p.get('min_ms'), p.get('max_ms'), 'ms')}")


def _workload(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    result = ctx.workload
    if result is None:
        return _fail("no workload finished in this step")
    errors = result.errors
    text = "; ".join(errors) if errors else "every statement succeeded"
    want_ok = p.get("ok", True)
    if want_ok:
        return Outcome(result.ok, text)
    needle = p.get("error")
    return Outcome(not result.ok and (needle is None or needle in text), text)


def _capture_clocks(ctx: StepContext, p: Mapping[str, Any]) -> Outcome:
    edges = ctx.clock_edges
    commands = ctx.exchanges
    if p.get("index") is not None:
        commands = _matching(ctx, p)
    if edges is None or not commands:
        return _fail("no command or no clock in the capture")
    first = commands[0]
    n = int(np.count_nonzero(edges < first.command.start))
    text = f"{n} clocks before {first.name}"
    ok = _in_range(n, p.get("min_clocks"), p.get("max_clocks"))
    return _pass(text) if ok else _fail(
        f"{text}, wanted {_range_text(p.get('min_clocks'), p.get('max_clocks'), 'clocks')}")


# --------------------------------------------------------------------------- the table

P = ParamType
_INDEX = Param("index", P.INT, "command index (0..63)")
_INDEX_REQ = Param("index", P.INT, "command index (0..63)", required=True)
_APP = Param("app", P.BOOL, "true: an application command (ACMD, after CMD55)")

CHECK_KINDS: Mapping[str, CheckKind] = MappingProxyType({k.name: k for k in (
    CheckKind("command", "a command was sent and answered as described (§4.7, §4.9)", (
        _INDEX_REQ, _APP,
        Param("arg", P.INT, "the exact 32-bit argument"),
        Param("response", P.STR, "response type, or none", choices=_RESPONSE_TYPES),
        Param("state", P.STR, "CURRENT_STATE in the response (SD mode)", choices=_STATE_NAMES),
        Param("set", P.STRS, "card-status bits set in the response (SD mode)",
              choices=tuple(str(f.name) for f in CardStatus)),
        Param("clear", P.STRS, "card-status bits clear in the response (SD mode)",
              choices=tuple(str(f.name) for f in CardStatus)),
    ), _command, validate=_only_sd("state", "set", "clear")),
    CheckKind("response", "a response of this type whose value or fields match", (
        Param("type", P.STR, "response type", required=True, choices=_RESPONSE_TYPES[1:]),
        _INDEX, _APP,
        Param("value", P.INT, "the payload (with mask: the masked bits)"),
        Param("mask", P.INT, "bits of the payload that value compares"),
        Param("bytes", P.STR, "SPI: the response bytes, hex (e.g. '01 00 00 01 AA')"),
        Param("register", P.STR, "decode the value with this register table",
              choices=(*ALL_REGISTERS, "CSD")),
        Param("fields", P.FIELDS, "field values of the decoded register"),
    ), _response, validate=_fields_rule),
    CheckKind("busy", "the card held the line busy for a time in this range (§4.3.4)", (
        Param("line", P.STR, "DAT0 (SD mode) or MISO (SPI mode)", required=True,
              choices=("DAT0", "MISO")),
        Param("min_ms", P.FLOAT, "at least this long"),
        Param("max_ms", P.FLOAT, "at most this long"),
        Param("reason", P.STR, "SD mode: why the card is busy (program, R1b, erase)"),
    ), _busy, validate=_all(_need_bound("min_ms", "max_ms"), _busy_line)),
    CheckKind("irq", "the controller raised this interrupt status bit (HCS 2.2.17)", (
        Param("bit", P.STR, "status bit name", required=True, choices=_IRQ_BITS),
    ), _irq, source=Source.SIM, validate=lambda _p, mode: None if mode == "sd"
              else "SPI mode has no SDHCI controller"),
    CheckKind("finding", "a protocol finding with this code", (
        Param("code", P.STR, "finding code", required=True, choices=tuple(FINDINGS)),
    ), _finding),
    CheckKind("state", "the card entered this state (§4.8)", (
        Param("state", P.STR, "state name", required=True, choices=_STATE_NAMES),
        Param("from", P.STR, "the state it left", choices=_STATE_NAMES),
    ), _state, source=Source.SIM),
    CheckKind("clock", "the bus clock was in this range (at a command, if given)", (
        _INDEX, _APP,
        Param("min_hz", P.FLOAT, "at least this frequency"),
        Param("max_hz", P.FLOAT, "at most this frequency"),
    ), _clock, validate=_need_bound("min_hz", "max_hz")),
    CheckKind("data", "a data block as described (§3.6.1, §4.3.3)", (
        Param("index", P.INT, "the block belongs to this command"), _APP,
        Param("direction", P.STR, "read or write", choices=("read", "write")),
        Param("width", P.INT, "DAT lines used (1 or 4)"),
        Param("nbytes", P.INT, "bytes in the block"),
        Param("crc_ok", P.BOOL, "whether its CRC16 was right"),
        Param("min_us", P.FLOAT, "the block took at least this long"),
        Param("max_us", P.FLOAT, "the block took at most this long"),
        Param("register", P.STR, "decode the block with this register table",
              choices=tuple(ALL_REGISTERS)),
        Param("fields", P.FIELDS, "field values of the decoded block"),
    ), _data, validate=_data_rules),
    CheckKind("crc_status", "a written block got this CRC status (§4.3.4) or SPI data "
              "response (§7.3.3)", (
        Param("status", P.STR, "accepted, crc_error or write_error", required=True,
              choices=tuple(_CRC_STATUS)),
    ), _crc_status),
    CheckKind("count", "how many items of a kind the step produced", (
        Param("of", P.STR, "item kind", required=True, choices=_TOKEN_KINDS),
        _INDEX, _APP,
        Param("what", P.STR, "SPI byte-run kind (with of = spi)", choices=_SPI_WHATS),
        Param("bit", P.STR, "interrupt bit (with of = irq)", choices=_IRQ_BITS),
        Param("register", P.STR, "SDHCI register accessed (with of = reg)",
              choices=tuple(r.name for r in SDHCI_REGISTERS)),
        Param("at_least", P.INT, "at least this many"),
        Param("at_most", P.INT, "at most this many"),
    ), _count, validate=_count_rules),
    CheckKind("timing", "clocks between two tokens, as the spec counts them (§4.12)", (
        Param("between", P.STR, "N_CR (command -> response), N_AC (read command -> data), "
              "N_WR (write R1 -> data), N_CRC (written block -> CRC status)", required=True,
              choices=_TIMINGS),
        _INDEX, _APP,
        Param("min_clocks", P.INT, "at least this many clocks"),
        Param("max_clocks", P.INT, "at most this many clocks"),
    ), _timing, validate=_all(_need_bound("min_clocks", "max_clocks"),
                              lambda _p, mode: None if mode == "sd"
                              else "SPI timing is counted in bytes; use spi checks")),
    CheckKind("idle", "clocks with nothing on CMD and DAT (power-up: >= 74, ch. 6)", (
        Param("reason", P.STR, "why (power-up, ACMD41 poll interval, no response ...)"),
        Param("min_clocks", P.INT, "at least this many clocks"),
        Param("max_clocks", P.INT, "at most this many clocks"),
    ), _idle, source=Source.SIM, validate=_need_bound("min_clocks", "max_clocks")),
    CheckKind("spi", "SPI bytes of one kind, optionally starting with given bytes (§7.3)", (
        Param("what", P.STR, "byte-run kind", required=True, choices=_SPI_WHATS),
        _INDEX, _APP,
        Param("miso", P.STR, "the card's bytes start with these (hex)"),
        Param("mosi", P.STR, "the host's bytes start with these (hex)"),
        Param("min_bytes", P.INT, "the run is at least this many bytes"),
    ), _spi, validate=lambda _p, mode: None if mode == "spi" else "spi checks need SPI mode"),
    CheckKind("loop_gap", "the largest event-loop gap while the step ran", (
        Param("min_ms", P.FLOAT, "at least this long (a freeze)"),
        Param("max_ms", P.FLOAT, "at most this long (a live window)"),
    ), _loop_gap, source=Source.SIM, validate=_need_bound("min_ms", "max_ms")),
    CheckKind("workload", "how the step's workload ended", (
        Param("ok", P.BOOL, "true: every statement succeeded (default); false: one failed"),
        Param("error", P.STR, "with ok = false: text the error contains"),
    ), _workload, source=Source.SIM),
    CheckKind("capture_command", "the decoded capture contains this command and response", (
        _INDEX_REQ, _APP,
        Param("arg", P.INT, "the exact 32-bit argument"),
        Param("response", P.STR, "response type, or none", choices=_RESPONSE_TYPES),
    ), _command, source=Source.CAPTURE),
    CheckKind("capture_clocks", "rising clock edges in the capture before a command", (
        _INDEX, _APP,
        Param("min_clocks", P.INT, "at least this many"),
        Param("max_clocks", P.INT, "at most this many"),
    ), _capture_clocks, source=Source.CAPTURE, validate=_need_bound("min_clocks", "max_clocks")),
)})
