"""The transactions table: rows of real SD and SPI sessions, the Errors column, the search
filter (command, error, address), live updates, a million rows, and selection sync with
the waveform in both directions."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdmodel.registers import CardStatus
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    ResponseToken,
    Token,
)
from sdmodel.trace import Trace
from widgets.transactions import COLUMNS, FilterError, TransactionModel, TransactionView

MIB = 1 << 20
GIB = 1 << 30
US = 1_000_000  # ps
TRAN_READY = 4 << 9 | CardStatus.READY_FOR_DATA  # R1 "tran READY_FOR_DATA" (§4.10.1)


def simulate(tmp_path: Path, size: int, workload: str, **options: Any) -> Simulator:
    path = tmp_path / "card.img"
    with path.open("wb") as f:
        f.truncate(size)

    async def run() -> Simulator:
        sim = Simulator(path, SimOptions(**options))
        try:
            await sim.run(workload)
        finally:
            await sim.aclose()
        return sim

    return asyncio.run(run())


def table(model: TransactionModel) -> list[dict[str, str]]:
    return [dict(zip(COLUMNS, model.row(r).texts, strict=True)) for r in range(model.rowCount())]


def first(rows: list[dict[str, str]], command: str) -> dict[str, str]:
    return next(row for row in rows if row["Command"] == command)


def exchange(t: int, index: int, arg: int = 0, *, status: int = TRAN_READY,
             rtype: str = "R1", blocks: int = 0, to_card: bool = False) -> list[Token]:
    """A command at ``t`` µs with its response and ``blocks`` 512-byte data blocks."""
    start = t * US
    tokens: list[Token] = [
        CommandToken(start, start + US, 20_000, index=index, arg=arg),
        ResponseToken(start + 2 * US, start + 3 * US, 20_000, type=rtype, index=index,
                      value=status, for_index=index),
    ]
    for b in range(blocks):
        at = start + (4 + 2 * b) * US
        tokens.append(DataToken(at, at + US, 20_000, nbytes=512, width=4, to_card=to_card))
    return tokens


@pytest.fixture(scope="module")
def sd_session(tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    return simulate(tmp_path_factory.mktemp("sd"), 64 * MIB,
                    "init; read 0 2; write 64 1; read 70 1")


@pytest.fixture(scope="module")
def spi_session(tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    return simulate(tmp_path_factory.mktemp("spi"), 4 * GIB,
                    "init; read 0 2; write 64 1; read 70 1", mode="spi")


def test_sd_session_rows_show_command_response_state_data(qtbot: Any,
                                                          sd_session: Simulator) -> None:
    model = TransactionModel(sd_session.trace)
    rows = table(model)
    assert [r["Command"] for r in rows[:4]] == [
        "CMD0 GO_IDLE_STATE", "CMD8 SEND_IF_COND", "CMD55 APP_CMD", "ACMD41 SD_SEND_OP_COND"]
    assert rows[1]["Response"] == "R7 VHS 0x1 check 0xAA"
    assert first(rows, "CMD3 SEND_RELATIVE_ADDR")["Response"].startswith("R6 RCA 0x")
    assert first(rows, "CMD2 ALL_SEND_CID")["Response"].startswith("R2 CID 0x1D5353")
    write = first(rows, "CMD24 WRITE_BLOCK")
    # 64 MiB is SDSC: the argument is a byte address (§4.3.14)
    assert write["Argument"] == "ADDRESS=0x8000 (LBA 64)"
    assert write["Response"] == "R1 tran READY_FOR_DATA"
    assert write["State"] == "tran"
    assert write["Data"] == "1 × 512 B write"
    assert first(rows, "CMD18 READ_MULTIPLE_BLOCK")["Data"] == "2 × 512 B read"
    assert first(rows, "ACMD51 SEND_SCR")["Data"] == "1 × 8 B read"
    assert all(r["Errors"] == "" for r in rows)
    assert model.rowCount() == sum(isinstance(t, CommandToken) for t in sd_session.trace)


def test_duration_runs_from_the_command_to_the_end_of_its_last_token(
        qtbot: Any, sd_session: Simulator) -> None:
    model = TransactionModel(sd_session.trace)
    row = next(r for r in range(model.rowCount())
               if model.row(r).texts[2] == "CMD24 WRITE_BLOCK")
    t0, t1 = model.span(row)
    command = model.command_token(row)
    busy = next(t for t in sd_session.trace if isinstance(t, BusyToken) and t.start > t0)
    assert (t0, t1) == (command.start, busy.end)


def test_spi_session_rows(qtbot: Any, spi_session: Simulator) -> None:
    rows = table(TransactionModel(spi_session.trace))
    assert rows[0]["Command"] == "CMD0 GO_IDLE_STATE"
    assert rows[0]["Response"] == "R1 0x01 IN_IDLE_STATE"
    assert rows[0]["State"] == "idle"
    assert first(rows, "CMD58 READ_OCR")["Response"] == "R3 0x00 OCR 0xC0FF8000"
    assert first(rows, "ACMD13 SD_STATUS")["Response"] == "R2 0x00 0x00"
    assert first(rows, "ACMD13 SD_STATUS")["Data"] == "1 × 64 B read"
    write = first(rows, "CMD24 WRITE_BLOCK")
    assert write["Argument"] == "ADDRESS=0x40 (LBA 64)"  # SDHC: block addresses
    assert write["Data"] == "1 × 512 B write"
    assert first(rows, "CMD12 STOP_TRANSMISSION")["Response"] == "R1b 0x00"
    assert all(r["Errors"] == "" for r in rows)


ERROR_CASES = {
    "response error bits": (
        [ResponseToken(2 * US, 3 * US, type="R1", index=17,
                       value=TRAN_READY | CardStatus.OUT_OF_RANGE | CardStatus.ADDRESS_ERROR)],
        "OUT_OF_RANGE; ADDRESS_ERROR"),
    "response CRC": (
        [ResponseToken(2 * US, 3 * US, type="R1", index=17, value=TRAN_READY, crc_ok=False)],
        "response CRC7 bad"),
    "data CRC": (
        [ResponseToken(2 * US, 3 * US, type="R1", index=17, value=TRAN_READY),
         DataToken(4 * US, 5 * US, nbytes=512, crc_ok=False)],
        "data CRC16 bad"),
    "CRC status": (
        [ResponseToken(2 * US, 3 * US, type="R1", index=17, value=TRAN_READY),
         DataToken(4 * US, 5 * US, nbytes=512, to_card=True),
         CrcStatusToken(5 * US, 6 * US, status=CrcStatus.CRC_ERROR)],
        "CRC status 101 (crc_error)"),
    "finding": (
        [ResponseToken(2 * US, 3 * US, type="R1", index=17, value=TRAN_READY),
         FindingToken(9 * US, 9 * US, code="data_timeout", message="data timeout interrupt")],
        "data timeout interrupt"),
    "no response": ([], "no response"),
}


@pytest.mark.parametrize("tokens, errors", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_errors_column(qtbot: Any, tokens: list[Token], errors: str) -> None:
    trace = Trace(tokens=[CommandToken(0, US, index=17, arg=5), *tokens,
                          *exchange(20, 13)])
    model = TransactionModel(trace)
    row = model.row(0)
    assert row.texts[COLUMNS.index("Errors")] == errors
    assert row.error
    assert not model.row(1).error


def test_a_timeout_finding_ends_the_exchange(qtbot: Any) -> None:
    trace = Trace(tokens=[*exchange(0, 17), FindingToken(900 * US, 900 * US, code="data_timeout",
                                                          message="data timeout interrupt"),
                          *exchange(901, 13)])
    model = TransactionModel(trace)
    assert model.span(0) == (0, 900 * US)
    assert model.row(0).texts[COLUMNS.index("Duration")] == "900 µs"


def test_command_crc_and_the_next_exchange_keep_their_own_errors(qtbot: Any) -> None:
    trace = Trace(tokens=[CommandToken(0, US, index=13, crc_ok=False),
                          ResponseToken(2 * US, 3 * US, type="R1", index=13,
                                        value=TRAN_READY | CardStatus.COM_CRC_ERROR)])
    assert TransactionModel(trace).row(0).texts[-1] == "command CRC7 bad; COM_CRC_ERROR"


@pytest.fixture
def mixed_trace() -> Trace:
    """CMD17 at LBA 0..9, CMD13 polls, a CMD24 with an error, on a block-addressed card."""
    tokens: list[Token] = []
    t = 0
    for lba in range(10):
        tokens += exchange(t, 17, lba * 50, blocks=1)
        tokens += exchange(t + 10, 13, 0x12340000)
        t += 20
    tokens += exchange(t, 24, 0x100, status=TRAN_READY | CardStatus.WP_VIOLATION, blocks=1,
                       to_card=True)
    tokens += exchange(t + 10, 41, 0x40300000, rtype="R3", status=0xC0FF8000)
    tokens[-2].app = True  # type: ignore[attr-defined]  # ACMD41 follows CMD55
    return Trace(tokens=tokens)


@pytest.mark.parametrize("text, commands", [
    ("cmd17", ["CMD17"] * 10),
    ("cmd24", ["CMD24"]),
    ("error", ["CMD24"]),
    ("!cmd13 !cmd17", ["CMD24", "ACMD41"]),
    ("-cmd13 -17", ["CMD24", "ACMD41"]),
    ("acmd41", ["ACMD41"]),
    ("41", ["ACMD41"]),
    ("cmd41", []),
    ("17,24", ["CMD17"] * 10 + ["CMD24"]),
    ("WRITE_BLOCK", ["CMD24"]),
    ("send_op", ["ACMD41"]),
    ("lba=100..200", ["CMD17", "CMD17", "CMD17"]),  # LBA 100, 150, 200
    ("lba>=400", ["CMD17", "CMD17"]),
    ("lba = 0x100", ["CMD24"]),
    ("arg>=0x12340000", ["CMD13"] * 10 + ["ACMD41"]),
    ("arg<0x32 cmd17", ["CMD17"]),
    ("lba=50..60 error", []),
    ("", ["CMD17", "CMD13"] * 10 + ["CMD24", "ACMD41"]),
])
def test_filter(qtbot: Any, mixed_trace: Trace, text: str, commands: list[str]) -> None:
    model = TransactionModel(mixed_trace)
    model.set_filter(text)
    assert [r["Command"].split()[0] for r in table(model)] == commands
    assert model.exchange_count() == 22


def test_lba_of_a_byte_addressed_card_is_the_address_over_512(qtbot: Any,
                                                             mixed_trace: Trace) -> None:
    model = TransactionModel(mixed_trace)
    model.set_byte_addressed(True)
    model.set_filter("lba=0")
    addresses = [*range(0, 500, 50), 0x100]  # the CMD17s and the CMD24: all below 512
    assert [r["Argument"] for r in table(model)] == [f"ADDRESS=0x{a:X} (LBA 0)"
                                                     for a in addresses]


@pytest.mark.parametrize("text, message", [
    ("bogus", 'no command name contains "bogus"'),
    ("cmd99", "command index 99 is not 0..63"),
    ("lba>=abc", "'abc' is not a number"),
    ("lba>1..5", 'a range a..b needs "="'),
])
def test_a_filter_term_not_understood_is_a_one_line_error(qtbot: Any, mixed_trace: Trace,
                                                          text: str, message: str) -> None:
    view = TransactionView(mixed_trace)
    qtbot.addWidget(view)
    view.set_filter_text("cmd24")
    view.apply_filter()
    with pytest.raises(FilterError, match=message):
        view.model.set_filter(text)
    view.set_filter_text(text)
    view.apply_filter()
    assert message in view.filter_error()
    assert "\n" not in view.filter_error()
    assert view.model.rowCount() == 1  # the previous filter stays


def test_typing_applies_the_filter_after_a_debounce(qtbot: Any, mixed_trace: Trace) -> None:
    view = TransactionView(mixed_trace)
    qtbot.addWidget(view)
    for prefix in ("c", "cm", "cmd", "cmd2", "cmd24"):
        view.set_filter_text(prefix)
    assert view.model.rowCount() == 22  # nothing applied per keystroke
    qtbot.waitUntil(lambda: view.model.rowCount() == 1)
    assert view.model.filter_text == "cmd24"


def test_appended_tokens_arrive_as_one_coalesced_insert(qtbot: Any) -> None:
    trace = Trace()
    model = TransactionModel(trace)
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _, a, b: inserts.append((a, b)))
    for n in range(100):
        for token in exchange(10 * n, 17, n, blocks=1):
            trace.append(token)
    assert model.rowCount() == 0
    qtbot.waitUntil(lambda: model.rowCount() == 100)
    assert inserts == [(0, 99)]
    trace.clear()
    assert model.rowCount() == 0


def test_a_live_row_enters_the_error_filter_when_its_response_reports_an_error(
        qtbot: Any) -> None:
    trace = Trace(tokens=exchange(0, 13))
    model = TransactionModel(trace)
    model.set_filter("error")
    trace.append(CommandToken(10 * US, 11 * US, index=24, arg=7))
    model.flush()
    assert model.rowCount() == 0
    trace.append(ResponseToken(12 * US, 13 * US, type="R1", index=24,
                               value=TRAN_READY | CardStatus.WP_VIOLATION))
    model.flush()
    assert model.rowCount() == 1
    assert model.row(0).texts[COLUMNS.index("Errors")] == "WP_VIOLATION"


def test_the_response_of_the_last_row_shows_when_it_arrives(qtbot: Any) -> None:
    trace = Trace()
    model = TransactionModel(trace)
    trace.append(CommandToken(0, US, index=13))
    model.flush()
    assert model.row(0).texts[COLUMNS.index("Response")] == ""  # not yet "no response"
    trace.append(ResponseToken(2 * US, 3 * US, type="R1", index=13, value=TRAN_READY))
    changed: list[int] = []
    model.dataChanged.connect(lambda a, b: changed.append(a.row()))
    model.flush()
    assert changed == [0]
    assert model.row(0).texts[COLUMNS.index("Response")] == "R1 tran READY_FOR_DATA"


@pytest.fixture(scope="module")
def million() -> Trace:
    """1,000,000 exchanges: CMD17 with an R1; every 1000th CMD13 answers ILLEGAL_COMMAND."""
    cmd, rsp = CommandToken, ResponseToken
    bad = TRAN_READY | CardStatus.ILLEGAL_COMMAND
    gc.disable()  # two million new objects: the cyclic collector would rescan them repeatedly
    try:
        return Trace(tokens=[
            token
            for n in range(1_000_000)
            for token in (
                cmd(n * 1000, n * 1000 + 400, 20, 13 if n % 1000 == 0 else 17, n),
                rsp(n * 1000 + 500, n * 1000 + 900, 20, "R1", 17,
                    bad if n % 1000 == 0 else 0x900),
            )
        ])
    finally:
        gc.enable()


class CallCounter:
    """Counts Python function calls while active (a size-independent cost check)."""

    def __init__(self) -> None:
        self.calls = 0

    def __enter__(self) -> CallCounter:
        sys.setprofile(self._count)
        return self

    def __exit__(self, *_: object) -> None:
        sys.setprofile(None)

    def _count(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            self.calls += 1


@pytest.fixture
def million_view(qtbot: Any, million: Trace) -> Iterator[TransactionView]:
    view = TransactionView(million)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    yield view
    view.close()


def test_a_million_exchanges_filter_without_a_python_loop_per_row(
        million_view: TransactionView) -> None:
    model = million_view.model
    assert model.rowCount() == 1_000_000
    for text, rows in (("error", 1000), ("cmd17 lba=1000..1999", 999), ("arg>=999990", 10)):
        million_view.set_filter_text(text)
        with CallCounter() as counter:
            million_view.apply_filter()
        assert model.rowCount() == rows
        assert counter.calls < 5000  # parsing + numpy + the visible rows, not 10^6 calls
    million_view.select_at(999_995 * 1000 + 100)
    assert model.exchange_of_row(million_view.table.currentIndex().row()) == 999_995


@pytest.fixture
def view(qtbot: Any, mixed_trace: Trace) -> TransactionView:
    view = TransactionView(mixed_trace)
    qtbot.addWidget(view)
    return view


def test_selecting_a_row_tells_the_waveform_where_it_is(qtbot: Any,
                                                        view: TransactionView) -> None:
    with qtbot.waitSignal(view.sigExchangeSelected) as signal:
        view.table.selectRow(2)
    t0, t1, token = signal.args
    assert (t0, t1) == (20 * US, 25 * US)  # CMD17 LBA 50: command to the end of its block
    assert isinstance(token, CommandToken) and token.index == 17 and token.arg == 50


@pytest.mark.parametrize("ps, exchange", [
    (20 * US, 2),  # the command's start
    (24 * US + 5, 2),  # inside its data block
    (26 * US, 3),  # between exchanges: the next one
    (0, 0),
])
def test_the_waveform_selects_the_exchange_at_a_time(qtbot: Any, view: TransactionView,
                                                     ps: int, exchange: int) -> None:
    emitted: list[object] = []
    view.sigExchangeSelected.connect(lambda *args: emitted.append(args))
    view.select_at(ps)
    assert view.model.exchange_of_row(view.table.currentIndex().row()) == exchange
    assert emitted == []


def test_with_a_filter_the_waveform_selects_the_next_shown_exchange(
        qtbot: Any, view: TransactionView) -> None:
    view.set_filter_text("cmd17")
    view.apply_filter()
    view.select_at(30 * US)  # a CMD13 is there; the next CMD17 is exchange 4
    assert view.model.exchange_of_row(view.table.currentIndex().row()) == 4


def test_selection_sync_does_not_ping_pong(qtbot: Any, view: TransactionView) -> None:
    """A waveform that moves to the exchange and reports its new cursor back."""
    emitted: list[int] = []

    def waveform_moved_to(t0: int, t1: int, token: Token) -> None:
        emitted.append(t0)
        view.select_at(t0 + 1)

    view.sigExchangeSelected.connect(waveform_moved_to)
    view.table.selectRow(5)
    assert emitted == [50 * US]
    assert view.table.currentIndex().row() == 5


def test_filtering_keeps_the_selected_exchange(qtbot: Any, view: TransactionView) -> None:
    view.select_at(40 * US)  # exchange 4, CMD17 LBA 100
    view.set_filter_text("cmd17")
    view.apply_filter()
    assert view.model.exchange_of_row(view.table.currentIndex().row()) == 4
