"""A block the host saw acknowledged is on disk (design.md "Asynchronous storage",
reference Part C): after SIGKILL at random moments of a long write workload, with and
without ``--durable``, and when the disk fills up or fails in the middle of a write.

"Acknowledged" is what the host sees on the bus (§4.3.4, reference §9): the CRC status
``010`` of a block, then the end of its busy period with no storage fault in between.
``sdscope simulate --jsonl`` writes each bus token as it happens (line-buffered), so the
lines a killed process left behind are exactly what its host had seen.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

import app.cli
from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver.patterns import Pattern, PatternKind
from sdmodel.registers import CardStatus
from sdmodel.sim.simulator import SimOptions, Simulator

SEED = 7
WRITES = 200  # statements "write 8k 8 pattern=random", k = 0..199: 1,600 distinct blocks
BLOCKS_PER_WRITE = 8
IMAGE_BYTES = 8 * 1024 * 1024  # an SDSC card (byte addresses, §4.3.14)
KILL_RUNS = 12  # half of them --durable
KILL_WINDOW_S = (0.05, 1.0)  # after the first acknowledged block; a run lasts >= 1.5 s
RANDOM = PatternKind.RANDOM


def write_workload() -> str:
    return "init; " + "; ".join(f"write {k * BLOCKS_PER_WRITE} {BLOCKS_PER_WRITE} pattern=random"
                                for k in range(WRITES))


def expected_block(lba: int) -> bytes:
    """What the workload writes into ``lba``: statement k + 2 wrote blocks 8k..8k+7."""
    statement = lba // BLOCKS_PER_WRITE + 2
    return Pattern(RANDOM).block(lba, seed=SEED, salt=statement)


def acknowledged_writes(lines: Iterable[str]) -> list[int]:
    """LBAs of written blocks the host saw acknowledged, in bus order: CRC status 010, then
    a busy period the card released with no storage fault reported in between."""
    acked: list[int] = []
    pending: list[int] = []
    lba = 0
    for line in lines:
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line, cut short by SIGKILL
        kind = item.get("kind")
        if kind == "cmd" and item["index"] in (24, 25) and not item["app"]:
            lba = int(item["arg"], 16) // BLOCK_SIZE  # SDSC: a byte address
        elif kind == "crc_status" and item["status"] == "010":
            pending.append(lba)
            lba += 1
        elif kind == "finding" and item["code"] == "storage_fault":
            pending.clear()  # busy ends, but with ERROR in the next status (§4.10.1)
        elif kind == "busy" and item["reason"] == "program":
            acked += pending
            pending.clear()
    return acked


def blank_image(path: Path) -> Path:
    with path.open("wb") as image:
        image.truncate(IMAGE_BYTES)
    return path


def read_blocks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[i:i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)]


def check_image(path: Path, acked: list[int], expected: dict[int, bytes]) -> None:
    """Acknowledged blocks hold what was written; every other block is old or new, never a
    mix (no torn or foreign data)."""
    blocks = read_blocks(path)
    lost = [lba for lba in set(acked) if blocks[lba] != expected[lba]]
    assert not lost, f"acknowledged blocks not on disk: {sorted(lost)[:10]}"
    torn = [lba for lba, new in expected.items() if blocks[lba] not in (bytes(BLOCK_SIZE), new)]
    assert not torn, f"blocks that are neither old nor new: {sorted(torn)[:10]}"


def simulate_command(image: Path, jsonl: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "app", "simulate", "--image", str(image), "--workload",
            write_workload(), "--seed", str(SEED), "--jsonl", str(jsonl), *options]


def wait_for_first_ack(child: subprocess.Popen[bytes], jsonl: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"sdscope simulate ended early with exit code {child.returncode}")
        if jsonl.exists() and acknowledged_writes(jsonl.read_text().splitlines()):
            return
        time.sleep(0.02)
    pytest.fail(f"no block acknowledged within {timeout} s")


# --- SIGKILL at random moments ---------------------------------------------------------------


@pytest.mark.parametrize("durable", [False, True] * (KILL_RUNS // 2),
                         ids=[f"run{n:02d}-{mode}" for n, mode in
                              enumerate(["default", "durable"] * (KILL_RUNS // 2))])
def test_sigkill_never_loses_an_acknowledged_block(tmp_path: Path, durable: bool) -> None:
    image, jsonl = blank_image(tmp_path / "card.img"), tmp_path / "bus.jsonl"
    delay = random.Random(os.urandom(8)).uniform(*KILL_WINDOW_S)
    options = ("--durable",) if durable else ()
    child = subprocess.Popen(simulate_command(image, jsonl, *options),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_first_ack(child, jsonl, timeout=30)
        time.sleep(delay)
        assert child.poll() is None, f"the workload ended before the kill at +{delay:.3f} s"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stderr is not None
        child.stderr.close()
    acked = acknowledged_writes(jsonl.read_text().splitlines())
    print(f"reliability: kill at +{delay:.3f} s after the first ack, durable={durable}: "
          f"{len(acked)} of {WRITES * BLOCKS_PER_WRITE} blocks acknowledged")
    assert acked, "the kill came before any acknowledged block"
    expected = {lba: expected_block(lba) for lba in range(WRITES * BLOCKS_PER_WRITE)}
    check_image(image, acked, expected)


def test_the_ack_parser_reads_what_a_complete_run_acknowledged(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    """The oracle of the kill runs: a workload that runs to its end acknowledges every
    block it wrote, once (the parser is what decides which blocks the kill test checks)."""
    image, jsonl = blank_image(tmp_path / "card.img"), tmp_path / "bus.jsonl"
    workload = "init; write 0 8 pattern=random; write 8 8 pattern=random; write 64 1"
    assert app.cli.main(["simulate", "--image", str(image), "--workload", workload,
                         "--seed", str(SEED), "--jsonl", str(jsonl)]) == 0
    capsys.readouterr()
    assert acknowledged_writes(jsonl.read_text().splitlines()) == [*range(16), 64]


# --- what --durable adds -------------------------------------------------------------------


@pytest.mark.parametrize(("durable", "syncs_per_block"), [(True, 1), (False, 0)])
def test_durable_mode_fsyncs_each_block_before_the_card_releases_busy(
        tmp_path: Path, durable: bool, syncs_per_block: int) -> None:
    """--durable: fdatasync has returned for every block whose busy has ended. The default
    mode promises only that the block was handed to the OS (pwrite returned): it survives
    the death of sdscope, not the loss of power (docs/reliability.md)."""
    image = blank_image(tmp_path / "card.img")

    async def scenario() -> list[tuple[int, int]]:
        sim = Simulator(image, SimOptions(durable=durable))
        released: list[tuple[int, int]] = []  # (blocks programmed, syncs) at each release
        started = 0

        def on_busy(active: bool, reason: str) -> None:
            nonlocal started
            if reason != "program":
                return
            if active:
                started += 1
            else:
                released.append((started, sim.storage.syncs))

        sim.card.events.busy.connect(on_busy)
        try:
            result = await sim.run("init; write 0 8; write 100 1; write 7 3")
        finally:
            await sim.aclose()
        assert result.ok, result.errors
        return released

    released = asyncio.run(scenario())
    assert len(released) == 12
    assert all(syncs == blocks * syncs_per_block for blocks, syncs in released)


# --- failing storage in the middle of a write ------------------------------------------------


def statuses(lines: Iterable[str]) -> list[int]:
    return [int(item["value"], 16) for item in map(json.loads, lines)
            if item.get("kind") == "rsp" and item.get("type") in ("R1", "R1b")]


@pytest.mark.parametrize(("fault", "message"), [
    ("disk-full=2KiB", "write failed at LBA 4: injected disk full, no space"),
    ("eio=12-13:write", "write failed at LBA 12: injected I/O error"),
])
def test_failing_storage_is_a_write_error_on_the_bus_and_acknowledges_nothing_unwritten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str, message: str) -> None:
    image, jsonl = blank_image(tmp_path / "card.img"), tmp_path / "bus.jsonl"
    workload = "init; write 0 8 pattern=random; write 8 8 pattern=random"
    code = app.cli.main(["simulate", "--image", str(image), "--workload", workload, "--seed",
                         str(SEED), "--fault", fault, "--jsonl", str(jsonl)])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert "statement 1 (init): ok" in out and "write of blocks" in out
    lines = jsonl.read_text().splitlines()
    findings = [item["message"] for item in map(json.loads, lines)
                if item["kind"] == "finding" and item["code"] == "storage_fault"]
    assert findings and message in findings[0]
    assert any(status & CardStatus.ERROR for status in statuses(lines))  # §4.10.1 ERROR
    acked = acknowledged_writes(lines)
    expected = {lba: expected_block(lba) for lba in range(16)}
    check_image(image, acked, expected)
    written = {lba for lba, block in enumerate(read_blocks(image)[:16]) if any(block)}
    assert written == set(acked)  # nothing on disk that was not acknowledged, and vice versa


REAL_FILE_LIMIT = 1024 * 1024  # RLIMIT_FSIZE: pwrite at or beyond 1 MiB fails with EFBIG


def test_a_real_os_write_error_is_a_write_error_on_the_bus(tmp_path: Path) -> None:
    """No injection: the kernel refuses the write (EFBIG under RLIMIT_FSIZE, which ENOSPC
    shares a code path with: StorageErrorKind.NO_SPACE)."""
    image, jsonl = blank_image(tmp_path / "card.img"), tmp_path / "bus.jsonl"
    beyond = REAL_FILE_LIMIT // BLOCK_SIZE + 8

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (REAL_FILE_LIMIT, REAL_FILE_LIMIT))

    workload = f"init; write 0 8 pattern=random; write {beyond} 1; read 0 8"
    child = subprocess.run(
        [sys.executable, "-m", "app", "simulate", "--image", str(image), "--workload",
         workload, "--seed", str(SEED), "--jsonl", str(jsonl)],
        capture_output=True, text=True, timeout=60, preexec_fn=limit_file_size)
    assert child.returncode == 1, child.stderr
    assert "statement 2 (write 0 8 pattern=random): ok" in child.stdout
    assert f"statement 3 (write {beyond} 1): write of blocks {beyond}..{beyond}" in child.stdout
    assert "statement 4 (read 0 8): ok" in child.stdout
    lines = jsonl.read_text().splitlines()
    assert any(f"write failed at LBA {beyond}: File too large" in line for line in lines)
    assert beyond not in acknowledged_writes(lines)
    assert read_blocks(image)[beyond] == bytes(BLOCK_SIZE)
