"""Storage that hangs in the middle of a transfer (design.md "Asynchronous storage": a
dedicated executor, shutdown never waits for a hung job): the event loop stays live, the
running workload can be cancelled, closing takes at most a second, no thread is left
behind, and Ctrl-C ends ``sdscope simulate`` at once. The GUI side (Cancel button, File >
Quit) belongs to the window tests.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sdmodel.heartbeat import LoopHeartbeat
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.storage import CLOSE_TIMEOUT_S

T = TypeVar("T")
MIB = 1024 * 1024
SETTLE_S = 0.05
HUNG_FOR_S = 0.3  # how long the test lets the transfer hang before acting
MAX_LOOP_GAP_MS = 50.0  # the loop must keep running while storage hangs
# After "init" (the loop is measured only while storage is in trouble):
WORKLOADS = {"write": "write 0 1; read 0 1", "read": "read 0 1; write 0 1"}
# What an SPI host reports when it gives up on hung storage (reference Part C: elm-chan-like
# limits, 100 ms for a read token and 250 ms for busy).
SPI_GIVES_UP = {"write": "CMD24 WRITE_BLOCK: card still busy after 250 ms",
                "read": "CMD17 READ_SINGLE_BLOCK: no data token within 100 ms"}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "card.img"
    path.write_bytes(b"\x5a" * MIB)
    return path


def storage_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sdscope-storage:")}


def non_daemon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon}


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    """After the test: no storage worker alive, no new non-daemon thread (one that would
    keep the process from exiting)."""
    workers, others = storage_threads(), non_daemon_threads()
    yield
    assert storage_threads() <= workers  # this test's storage worker has ended
    assert non_daemon_threads() <= others


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def initialised(image: Path, mode: str, **options: object) -> Simulator:
    sim = Simulator(image, SimOptions(mode=mode, **options))  # type: ignore[arg-type]
    assert (await sim.run("init")).ok
    return sim


def run_and_collect(scenario: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, list[str]]:
    """Run ``scenario`` on a fresh loop, then collect what it left behind while the loop
    still runs: a task whose error nobody retrieved is reported to the loop's exception
    handler (recorded here; asyncio would log it with a traceback when Quit drops it)."""
    reports: list[str] = []

    async def main() -> T:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(
            lambda _, context: reports.append(f"{context['message']}: {context.get('future')}"))
        result = await scenario()
        await asyncio.sleep(SETTLE_S)  # late outcomes from the storage worker arrive
        gc.collect()
        return result

    return asyncio.run(main()), reports


FAULTS = {"hang": ({"faults": ("hang",)}, 1.0),  # an injected hang ends with the close
          # a minute-long operation: closing waits CLOSE_TIMEOUT_S for it, then abandons it
          "one-minute-latency": ({"latency": "60s"}, CLOSE_TIMEOUT_S + 0.5)}


@pytest.mark.parametrize(("fault", "op"), [
    ("hang", "write"), ("hang", "read"), ("one-minute-latency", "write"),
    ("one-minute-latency", "read"),
])
def test_quitting_a_workload_hung_in_storage_is_quick_and_leaves_nothing_behind(
        image: Path, fault: str, op: str, no_thread_left: None) -> None:
    """SD mode: the Linux-like driver waits out its 3 s data timeout and then polls CMD13
    (reference Part C), so the workload still runs when Quit cancels it and closes."""
    options, close_limit_s = FAULTS[fault]

    async def scenario() -> tuple[float, float, float]:
        sim = await initialised(image, "sd", **options)
        task = asyncio.ensure_future(sim.run(WORKLOADS[op]))
        await until(lambda: sim.storage.pending > 0)
        async with LoopHeartbeat() as heartbeat:
            await asyncio.sleep(HUNG_FOR_S)
            assert not task.done() and sim.storage.pending > 0
        start = time.perf_counter()
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        cancelled_after = time.perf_counter() - start
        assert task.cancelled()
        start = time.perf_counter()
        await sim.aclose()
        return heartbeat.max_gap_ms, cancelled_after, time.perf_counter() - start

    (gap_ms, cancelled_after, closed_after), leftovers = run_and_collect(scenario)
    assert gap_ms < MAX_LOOP_GAP_MS
    assert cancelled_after < 1.0 and closed_after < close_limit_s
    assert leftovers == []


@pytest.mark.parametrize("op", list(WORKLOADS))
def test_an_spi_host_gives_up_on_hung_storage_without_stalling_the_loop(
        image: Path, op: str, no_thread_left: None) -> None:
    async def scenario() -> tuple[float, float, list[str]]:
        sim = await initialised(image, "spi", faults=("hang",))
        async with LoopHeartbeat() as heartbeat:
            start = time.perf_counter()
            result = await asyncio.wait_for(sim.run(WORKLOADS[op]), 5.0)
            await sim.aclose()
        return heartbeat.max_gap_ms, time.perf_counter() - start, result.errors

    (gap_ms, elapsed, errors), leftovers = run_and_collect(scenario)
    assert gap_ms < MAX_LOOP_GAP_MS and elapsed < 2.0
    assert SPI_GIVES_UP[op] in errors[0]
    assert leftovers == []


# --- the command line ----------------------------------------------------------------------


def hung_cli(image: Path, *options: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "simulate", "--image", str(image), "--workload",
         "init; " + WORKLOADS["write"], "--fault", "hang", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert child.stdout is not None
    assert child.stdout.readline() == "statement 1 (init): ok\n"
    time.sleep(HUNG_FOR_S)  # the write of statement 2 is now hung in storage
    return child


def interrupt(child: subprocess.Popen[str]) -> tuple[float, str]:
    start = time.perf_counter()
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return time.perf_counter() - start, err


def test_ctrl_c_ends_a_simulation_hung_in_storage_within_a_second(image: Path) -> None:
    child = hung_cli(image)
    elapsed, _ = interrupt(child)
    assert child.returncode == 130  # 128 + SIGINT, as the README promises
    assert elapsed < 1.0


def test_ctrl_c_during_a_hung_transfer_prints_nothing_on_stderr(image: Path,
                                                                 tmp_path: Path) -> None:
    child = hung_cli(image, "--jsonl", str(tmp_path / "bus.jsonl"))
    _, err = interrupt(child)
    assert err == ""
