"""Every check kind evaluated on real traces, one case that passes and one that fails:
a simulated SD-mode run (PIO, a corrupted command CRC, slow writes), a simulated SPI-mode
run and the real i.MX6 capture."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sdmodel.heartbeat import LoopHeartbeat
from sdmodel.lessons import CHECK_KINDS, Source, StepContext, captures_dir
from sdmodel.lessons.bus_faults import BusFaults
from sdmodel.lessons.runner import load_capture
from sdmodel.lessons.schema import BusFault
from sdmodel.sim.simulator import SimOptions, Simulator

GIB = 1 << 30


def _image(folder: Path) -> Path:
    path = folder / "card.img"
    with path.open("wb") as f:
        f.truncate(4 * GIB)
    return path


async def _simulate(path: Path, options: SimOptions, workload: str) -> StepContext:
    sim = Simulator(path, options)
    try:
        await sim.run("init")
        sim.storage.faults.latency = 0.03  # above the simulator's "instant" threshold
        with BusFaults(sim.bus, BusFault(command=17)) if sim.bus else _nothing():
            async with LoopHeartbeat() as heartbeat:
                result = await sim.run(workload)
    finally:
        await sim.aclose()
    tokens = sorted(sim.trace.tokens, key=lambda t: t.start)
    return StepContext(tokens, options.mode, Source.SIM, heartbeat.max_gap_ms, result)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StepContext]:
    sd = asyncio.run(_simulate(_image(tmp_path_factory.mktemp("sd")),
                               SimOptions(use_dma=False), "read 0 1; write 8 2"))
    spi = asyncio.run(_simulate(_image(tmp_path_factory.mktemp("spi")),
                                SimOptions(mode="spi"), "read 0 1; write 8 2"))
    capture = load_capture(captures_dir() / "imx6_working_snippet.sr")
    return {
        "sd": sd,
        "spi": spi,
        "capture": StepContext(capture.tokens, capture.mode, Source.CAPTURE,
                               clock_edges=capture.clock_edges),
    }


# (kind, trace, parameters that pass, parameters that fail)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("command", "sd", {"index": 17, "response": "R1", "state": "tran"},
     {"index": 17, "response": "R1", "state": "data"}),
    ("command", "sd", {"index": 55, "set": ["APP_CMD"], "clear": ["ILLEGAL_COMMAND"]},
     {"index": 55, "set": ["OUT_OF_RANGE"]}),
    ("command", "sd", {"index": 13, "set": ["COM_CRC_ERROR"]}, {"index": 18}),
    ("command", "spi", {"index": 58, "response": "R3"}, {"index": 58, "response": "R1"}),
    ("response", "sd", {"type": "R3", "index": 41, "app": True, "fields": {"BUSY": 1, "CCS": 1}},
     {"type": "R7", "value": 0x1AB}),
    ("response", "sd", {"type": "R2", "index": 9, "fields": {"CSD_STRUCTURE": 1}},
     {"type": "R2", "index": 9, "fields": {"CSD_STRUCTURE": 0}}),
    ("response", "spi", {"type": "R7", "bytes": "01 00 00 01 AA"},
     {"type": "R7", "bytes": "01 00 00 01 55"}),
    ("busy", "sd", {"line": "DAT0", "reason": "program", "min_ms": 25},
     {"line": "DAT0", "reason": "program", "min_ms": 1000}),
    ("busy", "spi", {"line": "MISO", "min_ms": 25}, {"line": "MISO", "max_ms": 0.0001}),
    ("irq", "sd", {"bit": "BUF_RD_READY"}, {"bit": "DATA_TIMEOUT"}),
    ("finding", "sd", {"code": "cmd_crc"}, {"code": "data_timeout"}),
    ("finding", "capture", {"code": "truncated"}, {"code": "rsp_crc"}),
    ("state", "sd", {"state": "rcv", "from": "tran"}, {"state": "ina"}),
    ("state", "spi", {"state": "tran", "from": "idle"}, {"state": "stby"}),
    ("clock", "sd", {"index": 0, "max_hz": 400_000}, {"index": 17, "max_hz": 400_000}),
    ("clock", "capture", {"index": 8, "min_hz": 300_000, "max_hz": 400_000},
     {"min_hz": 1_000_000}),
    ("data", "sd", {"index": 17, "direction": "read", "width": 4, "nbytes": 512, "crc_ok": True},
     {"index": 17, "width": 1}),
    ("data", "sd", {"index": 51, "app": True, "register": "SCR", "fields": {"SCR_STRUCTURE": 0}},
     {"index": 51, "app": True, "register": "SCR", "fields": {"SCR_STRUCTURE": 1}}),
    ("data", "spi", {"index": 17, "nbytes": 512, "width": 1}, {"index": 17, "min_us": 1000}),
    ("crc_status", "sd", {"status": "accepted"}, {"status": "write_error"}),
    ("crc_status", "spi", {"status": "accepted"}, {"status": "crc_error"}),
    ("count", "sd", {"of": "cmd", "index": 41, "app": True, "at_least": 2},
     {"of": "cmd", "index": 41, "app": True, "at_most": 1}),
    ("count", "sd", {"of": "reg", "register": "BUFFER", "at_least": 128},
     {"of": "irq", "bit": "DATA_CRC", "at_least": 1}),
    ("count", "spi", {"of": "spi", "what": "data_response", "at_least": 2},
     {"of": "spi", "what": "data_response", "at_most": 1}),
    ("timing", "sd", {"between": "N_CR", "index": 2, "min_clocks": 5, "max_clocks": 5},
     {"between": "N_CR", "index": 17, "min_clocks": 10}),
    ("timing", "sd", {"between": "N_CRC", "min_clocks": 2, "max_clocks": 8},
     {"between": "N_WR", "max_clocks": 1}),
    ("timing", "capture", {"between": "N_CR", "index": 41, "app": True, "min_clocks": 5,
                           "max_clocks": 5}, {"between": "N_AC", "min_clocks": 2}),
    ("idle", "sd", {"reason": "power-up", "min_clocks": 74},
     {"reason": "power-up", "min_clocks": 100}),
    ("spi", "spi", {"what": "rsp", "index": 8, "miso": "01 00 00 01 AA"},
     {"what": "rsp", "index": 0, "miso": "00"}),
    ("spi", "spi", {"what": "cmd", "index": 0, "mosi": "40 00 00 00 00 95"},
     {"what": "stop_tran", "mosi": "FE"}),
    ("loop_gap", "sd", {"max_ms": 1000}, {"min_ms": 1000}),
    ("workload", "sd", {"ok": True}, {"ok": False}),
    ("capture_command", "capture", {"index": 41, "app": True, "arg": 0x70FF8000,
                                    "response": "R3"}, {"index": 8, "response": "R1"}),
    ("capture_clocks", "capture", {"index": 0, "min_clocks": 74}, {"max_clocks": 80}),
]


def test_every_check_kind_has_a_case() -> None:
    assert {kind for kind, *_ in CASES} == set(CHECK_KINDS)


@pytest.mark.parametrize("kind, trace, good, bad", CASES,
                         ids=[f"{c[0]}-{c[1]}-{n}" for n, c in enumerate(CASES)])
def test_check_passes_and_fails_on_a_real_trace(contexts: dict[str, StepContext], kind: str,
                                               trace: str, good: dict[str, Any],
                                               bad: dict[str, Any]) -> None:
    evaluate = CHECK_KINDS[kind].evaluate
    passed = evaluate(contexts[trace], good)
    failed = evaluate(contexts[trace], bad)
    assert passed.ok, passed.found
    assert not failed.ok, failed.found
    for outcome in (passed, failed):
        assert outcome.found and "\n" not in outcome.found


def test_what_was_found_says_what_the_trace_shows(contexts: dict[str, StepContext]) -> None:
    sd, capture = contexts["sd"], contexts["capture"]
    assert CHECK_KINDS["command"].evaluate(sd, {"index": 17, "state": "data"}).found == (
        "CMD17 READ_SINGLE_BLOCK arg=0x00000000, no response: the card did not answer")
    assert CHECK_KINDS["capture_clocks"].evaluate(capture, {"max_clocks": 80}).found == (
        "91 clocks before CMD0 GO_IDLE_STATE, wanted <= 80 clocks")
    assert CHECK_KINDS["irq"].evaluate(sd, {"bit": "DATA_TIMEOUT"}).found.startswith(
        "DATA_TIMEOUT never asserted (bits seen: ")
