"""The transactions table: one row per command exchange of a trace (a command with its
response, data blocks, CRC status, busy and findings), searchable and synchronised with
the waveform.

Three layers, Qt only in the last two:

- :class:`ExchangeIndex` follows ``trace.events.appended`` and keeps, per exchange, the
  numbers the table filters on as numpy columns (start, end, command code, argument,
  flags, block count and size) plus the command and response tokens. Per token it does a
  few attribute updates, so a million exchanges cost one pass, and a transfer of a
  million blocks is never rescanned.
- :func:`parse_filter` turns the search box text into an :class:`ExchangeFilter` whose
  terms are numpy expressions over those columns: filtering a million rows is a handful
  of vectorised operations, not a Python loop per row.
- :class:`TransactionModel` (a lazy QAbstractTableModel: row text is made on demand, with
  a small LRU cache) and :class:`TransactionView` (search box + table).

Response decoding reads the declarative tables: card status §4.10.1, R6 §4.9.5, OCR §5.1,
SPI R1/R2 §7.3.2, data response §7.3.3.1.
"""

from __future__ import annotations

import bisect
import re
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from sdmodel.commands import APP_COMMANDS, COMMANDS, Resp, SpiResp, command_name, lookup
from sdmodel.registers import (
    CARD_STATUS,
    ERROR_BITS,
    OCR_BUSY,
    OCR_CCS,
    SPI_R1,
    SPI_R2_STATUS,
    card_status_from_r6_status,
)
from sdmodel.tokens import PS_PER_S, CrcStatus, Line, ResponseToken, SpiToken, Token
from sdmodel.trace import Trace
from widgets.live_clock import LiveClock, Slot
from widgets.palette import ERROR, qcolor
from widgets.qt import QtCore, QTimer, QtWidgets, QVBoxLayout, QWidget, Signal

__all__ = [
    "COLUMNS",
    "ExchangeFilter",
    "ExchangeIndex",
    "FilterError",
    "Row",
    "TransactionModel",
    "TransactionView",
    "parse_filter",
]

COLUMNS = ("#", "Time (s)", "Command", "Argument", "Response", "State", "Data", "Duration",
           "Errors")
_RIGHT_ALIGNED = frozenset({COLUMNS.index("#"), COLUMNS.index("Time (s)"),
                            COLUMNS.index("Duration")})

# Exchange flags (the ``flags`` column).
ERR = 1  # something in the Errors column
READ = 2  # data card -> host
WRITE = 4  # data host -> card
SPI = 8  # an SPI-mode exchange
HAS_RSP = 16
EXPECT_RSP = 32

_APP = 64  # command code = index | _APP for an application command (ACMD)
_BLOCK = 512  # SDSC data addresses are bytes; LBA = address / 512 (§4.3.14)

# Trace items that never belong to an exchange row.
_IGNORED = frozenset({"reg", "irq", "state", "idle"})
# SPI byte runs that end an exchange's bus activity (fill bytes and CS# high do not).
_SPI_ACTIVE = frozenset({"rsp", "data", "data_response", "busy", "stop_tran", "data_error"})

# §4.10.1 card status: single-bit flags in table order, the error subset, CURRENT_STATE.
_STATUS_FLAGS = tuple((f.mask, f.name) for f in CARD_STATUS.fields if f.width == 1)
_STATUS_ERRORS = tuple((mask, name) for mask, name in _STATUS_FLAGS if mask & ERROR_BITS)
_CURRENT_STATE = CARD_STATUS.field("CURRENT_STATE")
# §7.3.2 SPI R1 (bit 7 is the start bit, bit 0 "in idle state" is not an error) and R2.
_SPI_R1_FLAGS = tuple((f.mask, f.name) for f in SPI_R1.fields if f.name != "ALWAYS_0")
_SPI_R1_ERRORS = tuple((m, n) for m, n in _SPI_R1_FLAGS if n != "IN_IDLE_STATE")
_SPI_R1_IDLE = SPI_R1.field("IN_IDLE_STATE").mask
_SPI_R2_FLAGS = tuple((f.mask, f.name) for f in SPI_R2_STATUS.fields)
_SPI_R2_ERRORS = tuple((m, n) for m, n in _SPI_R2_FLAGS if n != "CARD_IS_LOCKED")
_CRC_STATUS = {int(s): s.name.lower() for s in CrcStatus}
_ERROR_MASK = int(ERROR_BITS)
_SPI_LINE = Line.SPI

# Codes of the commands whose argument is a data address (CMD17/18/24/25/28/29/30/32/33).
_ADDRESS_CODES = np.array(
    [c.index for c in COMMANDS.values() if any(a.name == "ADDRESS" for a in c.args)]
    + [c.index | _APP for c in APP_COMMANDS.values() if any(a.name == "ADDRESS" for a in c.args)],
    dtype=np.int16,
)
# Codes of the commands answered with R3 in SPI mode (CMD58 READ_OCR).
_SPI_R3_CODES = frozenset(
    [c.index for c in COMMANDS.values() if c.spi is SpiResp.R3]
    + [c.index | _APP for c in APP_COMMANDS.values() if c.spi is SpiResp.R3]
)
# Command names by code, for the filter's name search.
_NAMES = {code: command_name(code & 0x3F, bool(code & _APP)) for code in range(128)}


def _code_info(index: int, app: bool) -> tuple[int, int]:
    """(code, EXPECT_RSP or 0) of a command: the code is the index, plus _APP when the card
    took it as an application command; an undefined command gets no response (§4.7.4)."""
    cmd = lookup(index, app)
    code = index | _APP if app and cmd is not None and cmd.app else index
    return code, EXPECT_RSP if cmd is None or cmd.resp is not Resp.NONE else 0


# [app][index] -> (code, expect): nested tuples, no key tuple allocated per command
_CODE_INFO = tuple(tuple(_code_info(index, app) for index in range(64)) for app in (False, True))


def _set_names(value: int, table: Sequence[tuple[int, str]]) -> list[str]:
    """Names of the bits of ``value`` set in a (mask, name) table."""
    return [name for mask, name in table if value & mask]


# --------------------------------------------------------------------------- the index

class ExchangeIndex:
    """Command exchanges of a trace, built incrementally (``feed`` every appended token).

    An exchange starts at a command (``CommandToken`` or an SPI run with ``what="cmd"``)
    and takes every bus token and finding up to the next command, except a data block
    that names (``for_index``) the previous command: a block still streaming when CMD12
    starts belongs to the read it ends.
    """

    def __init__(self) -> None:
        self.commands: list[Token] = []
        # the first response of each exchange; SPI responses as their bytes, R1 first
        self.responses: list[ResponseToken | bytes | None] = []
        self.problems: dict[int, list[str]] = {}
        self.ccs: bool | None = None  # OCR CCS of the last ready R3, once seen
        # Per-exchange columns as typed arrays: C-speed append and item update, and numpy
        # reads them without a copy (the typecodes are numpy dtype characters too).
        self._start = array("q")
        self._end = array("q")
        self._code = array("h")
        self._arg = array("q")
        self._flags = array("B")
        self._blocks = array("q")
        self._block_size = array("i")
        self._nbytes = array("q")
        self._changed: int | None = None

    def __len__(self) -> int:
        return len(self._start)

    def column(self, name: str) -> np.ndarray:
        """A copy of one column over every exchange: start, end (ps), code (index, +64 for
        an ACMD), arg, flags, blocks, block_size, nbytes."""
        return np.array(self._view(name))

    def _view(self, name: str) -> np.ndarray:
        """A zero-copy view; drop it before the next ``feed`` (the array cannot grow
        while a view of it exists)."""
        column: array[int] = getattr(self, f"_{name}")
        return np.frombuffer(column, dtype=column.typecode) if column else np.zeros(0, int)

    def take_changed(self) -> int | None:
        """The lowest exchange changed or added since the last call (None: nothing)."""
        changed, self._changed = self._changed, None
        return changed

    def code(self, i: int) -> int:
        return self._code[i]

    def span(self, i: int) -> tuple[int, int]:
        """(start, end) of exchange ``i`` in ps: the command's start to its last token's end."""
        return self._start[i], self._end[i]

    def row_numbers(self, i: int) -> tuple[int, int, int, int, int, int, int, int]:
        """(code, arg, flags, start, end, blocks, block_size, nbytes) of exchange ``i``."""
        return (self._code[i], self._arg[i], self._flags[i], self._start[i], self._end[i],
                self._blocks[i], self._block_size[i], self._nbytes[i])

    def exchange_at(self, ps: int) -> int | None:
        """The exchange that contains ``ps``, else the first one after it (None: none)."""
        i = bisect.bisect_right(self._start, ps) - 1
        if i < 0 or ps > self._end[i]:
            i += 1
        return i if i < len(self._start) else None

    # --- feeding ----------------------------------------------------------------------

    def feed_all(self, tokens: Sequence[Token]) -> None:
        feed = self.feed
        for token in tokens:
            feed(token)

    def feed(self, token: Token) -> bool:
        """Take one trace item; True if an exchange was added or changed."""
        kind = token.kind
        if kind in _IGNORED:
            return False
        if kind == "cmd":
            self._open(token, token.index, token.arg, token.app,  # type: ignore[attr-defined]
                       token.crc_ok)  # type: ignore[attr-defined]
            return True
        if kind == "spi" and token.what == "cmd":  # type: ignore[attr-defined]
            info = token.info  # type: ignore[attr-defined]
            if "index" not in info:
                return False  # a run of command bytes without the decoded frame
            app = str(info.get("name", "")).startswith("ACMD")
            self._open(token, int(info["index"]), int(str(info.get("arg", "0")), 16), app,
                       info.get("crc_ok") is not False)
            return True
        i = len(self._start) - 1
        if i < 0:
            return False
        if token.start < self._start[i]:  # a late event (rare): find its exchange
            i = bisect.bisect_right(self._start, token.start) - 1
            if i < 0:
                return False
        elif kind == "data" and i:
            owner = getattr(token, "for_index", None)
            if owner is not None and owner != self._code[i] & 0x3F \
                    and owner == self._code[i - 1] & 0x3F:
                i -= 1
        if not self._apply(i, token, kind):
            return False
        if self._changed is None or i < self._changed:
            self._changed = i
        return True

    def _open(self, token: Token, index: int, arg: int, app: bool, crc_ok: bool) -> None:
        last = len(self._start) - 1
        if last >= 0 and self._flags[last] & (EXPECT_RSP | HAS_RSP) == EXPECT_RSP:
            self._problem(last, "no response")  # the next command came first
        code, expect = _CODE_INFO[bool(app)][index & 0x3F]
        flags = SPI | EXPECT_RSP if token.line is _SPI_LINE else expect
        i = last + 1
        self._start.append(token.start)
        self._end.append(token.end)
        self._code.append(code)
        self._arg.append(arg & 0xFFFFFFFF)
        self._flags.append(flags)
        self._blocks.append(0)
        self._block_size.append(0)
        self._nbytes.append(0)
        self.commands.append(token)
        self.responses.append(None)
        if not crc_ok:
            self._problem(i, "command CRC7 bad")
        if self._changed is None:
            self._changed = i

    def _apply(self, i: int, token: Token, kind: str) -> bool:
        if kind == "finding":  # e.g. the data timeout: the exchange lasted until then
            if token.severity == "info":  # type: ignore[attr-defined]
                return False
            self._problem(i, token.message or token.code)  # type: ignore[attr-defined]
        elif kind == "rsp":
            assert isinstance(token, ResponseToken)
            if token.line is _SPI_LINE:  # decoded SPI response: every byte, R1 first
                self._spi_response(i, token.value.to_bytes(getattr(token, "nbytes", 1), "big"))
            else:
                self._sd_response(i, token)
        elif kind == "data":
            self._block(i, token.nbytes, token.to_card)  # type: ignore[attr-defined]
            if not token.crc_ok:  # type: ignore[attr-defined]
                self._problem(i, "data CRC16 bad")
        elif kind == "crc_status":
            status = int(token.status)  # type: ignore[attr-defined]
            if status != CrcStatus.ACCEPTED:
                self._problem(i, f"CRC status {status:03b} ({_CRC_STATUS.get(status, 'invalid')})")
        elif kind == "spi":
            if not self._apply_spi_run(i, token):  # type: ignore[arg-type]
                return False
        elif kind != "busy":
            return False
        if token.end > self._end[i]:
            self._end[i] = token.end
        return True

    def _apply_spi_run(self, i: int, run: SpiToken) -> bool:
        """A simulated SPI byte run (§7.3.2, §7.3.3)."""
        what = run.what
        if what not in _SPI_ACTIVE:
            return False
        if what == "rsp":
            self._spi_response(i, run.miso or b"")
        elif what == "data":
            self._block(i, int(run.info.get("nbytes", 0)), run.info.get("dir") == "write")
            if run.info.get("crc_ok") is False:
                self._problem(i, "data CRC16 bad")
        elif what == "data_response" and run.miso:
            status = (run.miso[0] >> 1) & 0b111  # xxx0sss1
            if status != CrcStatus.ACCEPTED:
                self._problem(i, f"data response 0x{run.miso[0]:02X} "
                                 f"({_CRC_STATUS.get(status, 'invalid')})")
        elif what == "data_error":
            self._problem(i, f"data error token {run.info.get('value', '')}".rstrip())
        return True

    def _first_response(self, i: int, rsp: ResponseToken | bytes) -> bool:
        """Record the answer of exchange ``i``; False if it already has one."""
        flags = self._flags[i]
        if flags & HAS_RSP:
            return False
        self._flags[i] = flags | HAS_RSP
        self.responses[i] = rsp
        return True

    def _sd_response(self, i: int, rsp: ResponseToken) -> None:
        """Error bits (§4.10.1, R6 §4.9.5), the CRC (none in R3, §4.9.4), OCR CCS (§5.1)."""
        if not self._first_response(i, rsp):
            return
        kind, value = rsp.type, rsp.value
        status = 0
        if kind == "R1" or kind == "R1b":
            status = value
        elif kind == "R6":
            status = card_status_from_r6_status(value & 0xFFFF)
        elif kind == "R3" and value & OCR_BUSY:  # CCS is valid once power-up is done
            self.ccs = bool(value & OCR_CCS)
        if status & _ERROR_MASK:
            for name in _set_names(status, _STATUS_ERRORS):
                self._problem(i, name)
        if not rsp.crc_ok and kind != "R3":
            self._problem(i, "response CRC7 bad")

    def _spi_response(self, i: int, raw: bytes) -> None:
        """R1 error bits, R2's second byte, the OCR of R3 (§7.3.2)."""
        if not self._first_response(i, raw) or not raw:
            return  # no bytes: the trace dropped the payload
        if raw[0] & 0x80:  # the start bit of R1 is 0
            self._problem(i, f"no R1 (0x{raw[0]:02X})")
            return
        errors = _set_names(raw[0], _SPI_R1_ERRORS) if raw[0] & 0x7E else []
        if len(raw) == 2 and raw[1]:
            errors += _set_names(raw[1], _SPI_R2_ERRORS)
        for name in errors:
            self._problem(i, name)
        if self._code[i] in _SPI_R3_CODES and len(raw) == 5 and raw[1] & OCR_BUSY >> 24:
            self.ccs = bool(raw[1] & OCR_CCS >> 24)  # OCR[31:24] follows R1 (§7.3.2)

    def _block(self, i: int, nbytes: int, to_card: bool) -> None:
        if not self._blocks[i]:
            self._block_size[i] = nbytes
        self._blocks[i] += 1
        self._nbytes[i] += nbytes
        self._flags[i] |= WRITE if to_card else READ

    def _problem(self, i: int, text: str) -> None:
        self.problems.setdefault(i, []).append(text)
        self._flags[i] |= ERR
        if self._changed is None or i < self._changed:
            self._changed = i


# --------------------------------------------------------------------------- row text


class Row(NamedTuple):
    texts: tuple[str, ...]
    error: bool
    tooltip: str  # the full response and errors


def _seconds(ps: int) -> str:
    return f"{ps / PS_PER_S:.9f}"


def _duration(ps: int) -> str:
    for unit, scale in (("s", PS_PER_S), ("ms", 10**9), ("µs", 10**6), ("ns", 10**3)):
        if ps >= scale:
            return f"{ps / scale:.3g} {unit}"
    return f"{ps} ps"


def _argument(code: int, arg: int, byte_addressed: bool) -> str:
    cmd = lookup(code & 0x3F, bool(code & _APP))
    if cmd is None:
        return f"0x{arg:08X}"
    text = cmd.describe_arg(arg)
    if any(a.name == "ADDRESS" for a in cmd.args):
        text += f" (LBA {arg // _BLOCK if byte_addressed else arg})"
    return text


def _card_status(kind: str, status: int) -> tuple[str, str]:
    """(summary, state) of an R1/R1b card status word (§4.10.1)."""
    state = _CURRENT_STATE.describe(_CURRENT_STATE.get(status))
    flags = " ".join(_set_names(status, _STATUS_FLAGS))
    return f"{kind} {state} {flags}".rstrip(), state


def _sd_response(rsp: ResponseToken, code: int) -> tuple[str, str]:
    """(summary, CURRENT_STATE) of an SD-mode response (§4.9)."""
    value = rsp.value
    if rsp.type in ("R1", "R1b"):
        return _card_status(rsp.type, value)
    if rsp.type == "R6":  # §4.9.5: RCA in 31:16, status bits in 15:0
        summary, state = _card_status("R6", card_status_from_r6_status(value & 0xFFFF))
        return summary.replace("R6", f"R6 RCA 0x{value >> 16:04X}", 1), state
    if rsp.type == "R3":  # §5.1
        ready = "ready" if value & OCR_BUSY else "initialising"
        ccs = " CCS" if value & OCR_BUSY and value & OCR_CCS else ""
        return f"R3 OCR 0x{value:08X} {ready}{ccs}", ""
    if rsp.type == "R7":  # §4.9.6: voltage accepted 11:8, check pattern 7:0
        return f"R7 VHS 0x{(value >> 8) & 0xF:X} check 0x{value & 0xFF:02X}", ""
    if rsp.type == "R2":
        register = "CSD" if code & 0x3F == 9 else "CID"
        return f"R2 {register} 0x{value:032X}", ""
    return f"{rsp.type} 0x{value:X}", ""


def _spi_response(raw: bytes, code: int) -> tuple[str, str]:
    """(summary, state) of an SPI response (§7.3.2); R1 reports only "in idle state"."""
    if not raw:
        return "R1 (payload dropped)", ""
    cmd = lookup(code & 0x3F, bool(code & _APP))
    kind = cmd.spi if cmd is not None and cmd.spi is not None else SpiResp.R1
    r1 = raw[0]
    state = "idle" if r1 & _SPI_R1_IDLE else ""
    parts = [kind.value, f"0x{r1:02X}", *_set_names(r1, _SPI_R1_FLAGS)]
    if kind is SpiResp.R2 and len(raw) == 2:
        parts += [f"0x{raw[1]:02X}", *_set_names(raw[1], _SPI_R2_FLAGS)]
    elif kind is SpiResp.R3 and len(raw) == 5:
        parts.append(f"OCR 0x{int.from_bytes(raw[1:], 'big'):08X}")
    elif kind is SpiResp.R7 and len(raw) == 5:
        parts.append(f"VHS 0x{raw[3] & 0xF:X} check 0x{raw[4]:02X}")
    return " ".join(parts), state


def _data(blocks: int, block_size: int, nbytes: int, flags: int) -> str:
    if not blocks:
        return ""
    direction = "write" if flags & WRITE and not flags & READ else (
        "read" if flags & READ and not flags & WRITE else "read/write")
    if nbytes == blocks * block_size:
        return f"{blocks} × {block_size} B {direction}"
    return f"{blocks} blocks, {nbytes} B {direction}"


def _describe(index: ExchangeIndex, i: int, byte_addressed: bool) -> Row:
    """The table row of exchange ``i``."""
    code, arg, flags, start, end, blocks, block_size, nbytes = index.row_numbers(i)
    rsp = index.responses[i]
    if rsp is None:
        response, state = ("no response" if flags & EXPECT_RSP and i < len(index) - 1 else ""), ""
    elif isinstance(rsp, bytes):
        response, state = _spi_response(rsp, code)
    else:
        response, state = _sd_response(rsp, code)
    errors = "; ".join(index.problems.get(i, ()))
    texts = (
        str(i),
        _seconds(start),
        command_name(code & 0x3F, bool(code & _APP)),
        _argument(code, arg, byte_addressed),
        response,
        state,
        _data(blocks, block_size, nbytes, flags),
        _duration(end - start),
        errors,
    )
    tooltip = "\n".join(t for t in (response, errors) if t)
    return Row(texts, bool(flags & ERR), tooltip)


# --------------------------------------------------------------------------- filtering


class FilterError(ValueError):
    """A search term the filter does not understand (one line, names the term)."""


class _Columns(NamedTuple):
    code: np.ndarray
    arg: np.ndarray
    flags: np.ndarray
    byte_addressed: bool


_Term = Callable[[_Columns], np.ndarray]
_COMPARE: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "=": np.equal, "==": np.equal, "!=": np.not_equal, ">=": np.greater_equal,
    "<=": np.less_equal, ">": np.greater, "<": np.less,
}
_RANGE_TERM = re.compile(r"(lba|arg)(==|!=|>=|<=|=|>|<)(\w+)(?:\.\.(\w+))?", re.IGNORECASE)
_CODE = re.compile(r"(acmd|cmd)?(\d+)")
_CODES_TERM = re.compile(r"(acmd|cmd)?\d+(,(acmd|cmd)?\d+)*", re.IGNORECASE)
_HELP = "try cmd17, acmd41, 17,18, read, error, lba=100..200, arg>=0x100, !cmd13"


@dataclass(frozen=True)
class ExchangeFilter:
    """AND of the parsed terms; ``matches`` gives the exchange numbers that pass."""

    text: str
    terms: tuple[_Term, ...]

    def matches(self, index: ExchangeIndex, lo: int, hi: int, *,
                byte_addressed: bool) -> np.ndarray:
        cols = _Columns(index._view("code")[lo:hi], index._view("arg")[lo:hi],
                        index._view("flags")[lo:hi], byte_addressed)
        keep = np.ones(hi - lo, dtype=bool)
        for term in self.terms:
            keep &= term(cols)
        del cols  # release the views: the index arrays may grow again
        return np.flatnonzero(keep) + lo


def parse_filter(text: str) -> ExchangeFilter:
    """Search terms, all of which must hold (a leading ``!`` or ``-`` negates one):

    - ``error``: rows with something in the Errors column;
    - ``cmd17``, ``acmd41``, ``17`` (either), comma lists ``cmd17,cmd18``;
    - ``lba=100..200``, ``lba>=100``, ``arg=0x1AA``, ``arg<0x100`` (ranges inclusive;
      ``lba`` only matches commands with a data address, §4.3.14);
    - any other word: commands whose name contains it (``read``, ``app_cmd``).
    """
    spaced = re.sub(r"\s*(\.\.|==|!=|>=|<=|=|>|<)\s*", r"\1", text.strip())
    return ExchangeFilter(text, tuple(_term(word) for word in spaced.split()))


def _term(word: str) -> _Term:
    if word[0] in "!-" and len(word) > 1:
        inner = _term(word[1:])
        return lambda cols: ~inner(cols)
    lower = word.lower()
    if lower in ("error", "errors", "err"):
        return lambda cols: (cols.flags & ERR) != 0
    if match := _RANGE_TERM.fullmatch(word):
        return _range_term(word, *match.groups())
    if _CODES_TERM.fullmatch(word):
        codes = np.array(sorted({c for part in lower.split(",") for c in _codes(part)}),
                         dtype=np.int16)
        return lambda cols: np.isin(cols.code, codes)
    named = np.array([c for c, name in _NAMES.items() if lower.upper() in name.upper()],
                     dtype=np.int16)
    if not len(named):
        raise FilterError(f'no command name contains "{word}" ({_HELP})')
    return lambda cols: np.isin(cols.code, named)


def _codes(part: str) -> tuple[int, ...]:
    """Command codes of ``cmdN`` (normal), ``acmdN`` (application) or ``N`` (both)."""
    match = _CODE.fullmatch(part)
    assert match is not None
    prefix, index = match[1], int(match[2])
    if index > 63:
        raise FilterError(f"command index {index} is not 0..63 ({_HELP})")
    if prefix == "acmd":
        return (index | _APP,)
    if prefix == "cmd":
        return (index,)
    return index, index | _APP


def _number(word: str, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise FilterError(f'"{word}": {text!r} is not a number ({_HELP})') from None


def _range_term(word: str, field: str, op: str, low: str, high: str | None) -> _Term:
    field = field.lower()
    first = _number(word, low)
    last = _number(word, high) if high is not None else None
    if last is not None and op not in ("=", "=="):
        raise FilterError(f'"{word}": a range a..b needs "=" ({_HELP})')

    def values(cols: _Columns) -> np.ndarray:
        if field == "arg" or not cols.byte_addressed:
            return cols.arg
        return cols.arg // _BLOCK

    def test(cols: _Columns) -> np.ndarray:
        v = values(cols)
        keep = (v >= first) & (v <= last) if last is not None else _COMPARE[op](v, first)
        return keep & np.isin(cols.code, _ADDRESS_CODES) if field == "lba" else keep

    return test


# --------------------------------------------------------------------------- Qt model


_CACHE_ROWS = 2048
_ERROR_COLOUR = qcolor(ERROR)


class TransactionModel(QtCore.QAbstractTableModel):
    """Rows = command exchanges of a trace (all, or those passing a filter)."""

    def __init__(self, trace: Trace | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._index = ExchangeIndex()
        self._trace: Trace | None = None
        self._filter: ExchangeFilter | None = None
        self._rows: np.ndarray | None = None  # exchange numbers shown when filtered
        self._shown = 0  # exchanges announced to the view (all, or scanned by the filter)
        self._byte_addressed: bool | None = None
        self._cache: OrderedDict[int, Row] = OrderedDict()
        self._clock = LiveClock.shared()  # coalesced live updates, in the transactions slot
        self.set_trace(trace)

    # --- data sources -------------------------------------------------------------------

    @property
    def exchanges(self) -> ExchangeIndex:
        return self._index

    def set_trace(self, trace: Trace | None) -> None:
        """Show ``trace`` (existing tokens at once, later ones as they arrive)."""
        if self._trace is not None:
            self._trace.events.appended.disconnect(self._on_appended)
            self._trace.events.cleared.disconnect(self._on_cleared)
        self._trace = trace
        self.beginResetModel()
        self._index = ExchangeIndex()
        if trace is not None:
            self._index.feed_all(trace.tokens)
            trace.events.appended.connect(self._on_appended)
            trace.events.cleared.connect(self._on_cleared)
        self._index.take_changed()
        self._cache.clear()
        self._shown = len(self._index)
        self._rows = self._match(0, self._shown)
        self.endResetModel()

    def close(self) -> None:
        """Unsubscribe from the trace."""
        self._clock.cancel(self.flush)
        self.set_trace(None)

    def set_byte_addressed(self, value: bool | None) -> None:
        """SDSC byte addresses (True), block addresses (False), or None: from the OCR CCS
        bit seen in the trace (block addresses until one is seen)."""
        self._byte_addressed = value
        self._refilter()

    @property
    def byte_addressed(self) -> bool:
        if self._byte_addressed is not None:
            return self._byte_addressed
        return self._index.ccs is False

    # --- filter -------------------------------------------------------------------------

    @property
    def filter_text(self) -> str:
        return self._filter.text if self._filter is not None else ""

    def set_filter(self, text: str) -> None:
        """Show only the exchanges matching ``text`` (see :func:`parse_filter`); raises
        FilterError and keeps the current filter if a term is not understood."""
        parsed = parse_filter(text)
        self._filter = parsed if parsed.terms else None
        self._refilter()

    def _refilter(self) -> None:
        self.beginResetModel()
        self._rows = self._match(0, self._shown)
        self._cache.clear()
        self.endResetModel()

    def _match(self, lo: int, hi: int) -> np.ndarray | None:
        if self._filter is None:
            return None
        return self._filter.matches(self._index, lo, hi, byte_addressed=self.byte_addressed)

    # --- rows <-> exchanges ---------------------------------------------------------------

    def exchange_count(self) -> int:
        """Exchanges announced so far (shown or filtered out)."""
        return self._shown

    def exchange_of_row(self, row: int) -> int:
        return row if self._rows is None else int(self._rows[row])

    def row_of_exchange(self, exchange: int) -> int | None:
        """The row showing ``exchange``, or the first row after it (None: none)."""
        if exchange >= self._shown:
            return None
        if self._rows is None:
            return exchange
        row = int(np.searchsorted(self._rows, exchange))
        return row if row < len(self._rows) else None

    def row_at(self, ps: int) -> int | None:
        """The row of the exchange containing ``ps`` or the first shown one after it."""
        exchange = self._index.exchange_at(ps)
        return None if exchange is None else self.row_of_exchange(exchange)

    def span(self, row: int) -> tuple[int, int]:
        return self._index.span(self.exchange_of_row(row))

    def command_token(self, row: int) -> Token:
        return self._index.commands[self.exchange_of_row(row)]

    def row(self, row: int) -> Row:
        exchange = self.exchange_of_row(row)
        cached = self._cache.get(exchange)
        if cached is not None:
            self._cache.move_to_end(exchange)
            return cached
        made = _describe(self._index, exchange, self.byte_addressed)
        if exchange < self._shown - 1:  # the last exchange may still grow
            self._cache[exchange] = made
            if len(self._cache) > _CACHE_ROWS:
                self._cache.popitem(last=False)
        return made

    # --- QAbstractTableModel --------------------------------------------------------------

    def rowCount(self, parent: Any = QtCore.QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return self._shown if self._rows is None else len(self._rows)

    def columnCount(self, parent: Any = QtCore.QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation,
                   role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation is QtCore.Qt.Orientation.Horizontal \
                and role == QtCore.Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QtCore.QModelIndex,
             role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        roles = QtCore.Qt.ItemDataRole
        if role == roles.DisplayRole:
            return self.row(index.row()).texts[index.column()]
        if role == roles.ToolTipRole:
            return self.row(index.row()).tooltip or None
        if role == roles.ForegroundRole:
            return _ERROR_COLOUR if self.row(index.row()).error else None
        if role == roles.TextAlignmentRole and index.column() in _RIGHT_ALIGNED:
            return int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        return None

    # --- live updates ------------------------------------------------------------------

    def _on_appended(self, token: Token) -> None:
        if self._index.feed(token):
            self._clock.request(Slot.TRANSACTIONS, self.flush)  # once per tick, however many

    def _on_cleared(self) -> None:
        self.set_trace(self._trace)

    def flush(self) -> None:
        """Announce the exchanges added or changed since the last update (the timer calls
        this about 15 times a second while tokens arrive)."""
        changed = self._index.take_changed()
        if changed is None:
            return
        for exchange in [e for e in self._cache if e >= changed]:
            del self._cache[exchange]
        total, shown = len(self._index), self._shown
        last = len(COLUMNS) - 1
        if self._rows is None:
            if changed < shown:
                self.dataChanged.emit(self.index(changed, 0), self.index(shown - 1, last))
            if total > shown:
                self.beginInsertRows(QtCore.QModelIndex(), shown, total - 1)
                self._shown = total
                self.endInsertRows()
            return
        self._update_filtered(changed, total)

    def _update_filtered(self, changed: int, total: int) -> None:
        """Re-match the exchanges from ``changed`` on; rows before them stay."""
        rows = self._rows
        assert rows is not None
        fresh = self._match(changed, total)
        assert fresh is not None
        keep = int(np.searchsorted(rows, changed))
        old = rows[keep:]
        last = len(COLUMNS) - 1
        root = QtCore.QModelIndex()
        if len(fresh) >= len(old) and np.array_equal(fresh[: len(old)], old):
            if len(old):
                self.dataChanged.emit(self.index(keep, 0), self.index(len(rows) - 1, last))
            self._shown = total
            if len(fresh) > len(old):
                self.beginInsertRows(root, len(rows), keep + len(fresh) - 1)
                self._rows = np.concatenate([rows, fresh[len(old):]])
                self.endInsertRows()
            return
        if len(old):
            self.beginRemoveRows(root, keep, len(rows) - 1)
            self._rows = rows[:keep]
            self.endRemoveRows()
        self._shown = total
        if len(fresh):
            self.beginInsertRows(root, keep, keep + len(fresh) - 1)
            self._rows = np.concatenate([rows[:keep], fresh])
            self.endInsertRows()


# --------------------------------------------------------------------------- view


_FILTER_DEBOUNCE_MS = 200
# Initial column widths: room for these texts (no ResizeToContents over a million rows).
_COLUMN_SAMPLES = ("1000000", "0.000000000", "CMD18 READ_MULTIPLE_BLOCK",
                   "ADDRESS=0x1000 (LBA 4096)", "R1 tran READY_FOR_DATA APP_CMD", "ident",
                   "128 × 512 B write", "999 µs")


class TransactionView(QWidget):
    """Search box above the exchange table. Selecting a row emits ``sigExchangeSelected``
    (start ps, end ps, command token); ``select_at`` follows the waveform back without
    emitting, so the two never ping-pong."""

    sigExchangeSelected = Signal(object, object, object)

    def __init__(self, trace: Trace | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = TransactionModel(trace, self)
        self._syncing = False
        self._follow = False
        self._search = QtWidgets.QLineEdit()
        self._search.setPlaceholderText(f"filter: {_HELP}")
        self._search.setClearButtonEnabled(True)
        self._status = QtWidgets.QLabel()
        self._status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,  # counts change per
                                   QtWidgets.QSizePolicy.Policy.Fixed)  # row: no relayout
        self._table = QtWidgets.QTableView()
        self._table.setModel(self._model)
        self._table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setWordWrap(False)
        self._table.setAlternatingRowColors(True)
        rows = self._table.verticalHeader()
        rows.setVisible(False)
        rows.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)  # a million rows
        rows.setDefaultSectionSize(self.fontMetrics().height() + 4)
        columns = self._table.horizontalHeader()
        columns.setStretchLastSection(True)
        metrics = self.fontMetrics()
        for column, sample in enumerate(_COLUMN_SAMPLES):
            text = max(sample, COLUMNS[column], key=metrics.horizontalAdvance)
            self._table.setColumnWidth(column, metrics.horizontalAdvance(text) + 20)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(_FILTER_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.apply_filter)
        self._search.textChanged.connect(self._debounce.start)
        self._search.returnPressed.connect(self.apply_filter)
        self._table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self._model.rowsAboutToBeInserted.connect(self._before_insert)
        self._model.rowsInserted.connect(self._after_insert)
        self._model.modelReset.connect(self._update_status)
        self._model.rowsRemoved.connect(self._update_status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._search)
        layout.addWidget(self._table)
        layout.addWidget(self._status)
        self._update_status()

    @property
    def model(self) -> TransactionModel:
        return self._model

    @property
    def table(self) -> QtWidgets.QTableView:
        return self._table

    def set_trace(self, trace: Trace | None) -> None:
        self._model.set_trace(trace)

    def set_filter_text(self, text: str) -> None:
        """Type ``text`` into the search box (applied after the debounce)."""
        self._search.setText(text)

    def filter_error(self) -> str:
        """The message shown for a filter that was not understood ("" if none)."""
        return self._status.text() if self._status.property("error") else ""

    def apply_filter(self) -> None:
        """Apply the search box now, keeping the selected exchange selected if it passes."""
        self._debounce.stop()
        current = self._table.currentIndex()
        exchange = self._model.exchange_of_row(current.row()) if current.isValid() else None
        try:
            self._model.set_filter(self._search.text())
        except FilterError as error:
            self._show_status(str(error), error=True)
            return
        if exchange is not None:
            row = self._model.row_of_exchange(exchange)
            if row is not None:
                self._select_row(row)
        self._update_status()

    def select_at(self, ps: int) -> None:
        """Select the exchange that contains ``ps`` (or the next one) without emitting."""
        self._model.flush()
        row = self._model.row_at(ps)
        if row is not None:
            self._select_row(row)

    def close(self) -> bool:
        self._model.close()
        return super().close()

    def _select_row(self, row: int) -> None:
        self._syncing = True
        try:
            index = self._model.index(row, 0)
            self._table.setCurrentIndex(index)
            self._table.scrollTo(index, QtWidgets.QAbstractItemView.ScrollHint.EnsureVisible)
        finally:
            self._syncing = False

    def _on_current_row(self, current: QtCore.QModelIndex, _: QtCore.QModelIndex) -> None:
        if self._syncing or not current.isValid():
            return
        t0, t1 = self._model.span(current.row())
        self.sigExchangeSelected.emit(t0, t1, self._model.command_token(current.row()))

    def _before_insert(self, *_: Any) -> None:
        bar = self._table.verticalScrollBar()
        self._follow = bar.value() == bar.maximum()

    def _after_insert(self, *_: Any) -> None:
        if self._follow:
            self._table.scrollToBottom()
        self._update_status()

    def _update_status(self, *_: Any) -> None:
        shown, total = self._model.rowCount(), self._model.exchange_count()
        text = f"{total:,} exchanges" if shown == total and not self._model.filter_text \
            else f"{shown:,} of {total:,} exchanges"
        self._show_status(text, error=False)

    def _show_status(self, text: str, *, error: bool) -> None:
        self._status.setText(text)
        if self._status.property("error") != error:  # a style sheet re-polishes: not per row
            self._status.setProperty("error", error)
            self._status.setStyleSheet(f"color: {_ERROR_COLOUR.name()};" if error else "")
