"""Fault injection: spec parsing for the CLI, seeded latency, and each fault's error kind."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sdmodel.storage import (
    DiskFullFault,
    EioFault,
    FaultHit,
    FaultInjector,
    FaultKind,
    HangFault,
    Latency,
    LbaRange,
    ShortReadFault,
    Storage,
    StorageError,
    StorageErrorKind,
    parse_fault_spec,
    parse_latency_spec,
    parse_size,
)

BLOCK = 512


@pytest.mark.parametrize(("text", "low", "high"), [
    ("0", 0.0, 0.0),
    ("300ms", 0.3, 0.3),
    ("2s", 2.0, 2.0),
    ("250us", 250e-6, 250e-6),
    ("0-500ms", 0.0, 0.5),
    ("100ms-1s", 0.1, 1.0),
    (" 1.5S ", 1.5, 1.5),
])
def test_latency_spec(text: str, low: float, high: float) -> None:
    latency = parse_latency_spec(text)
    assert latency.low_s == pytest.approx(low)
    assert latency.high_s == pytest.approx(high)
    again = parse_latency_spec(str(latency))  # str() is a spec too (shown by the GUI/CLI)
    assert (again.low_s, again.high_s) == pytest.approx((low, high))


@pytest.mark.parametrize("text", ["", "fast", "300", "500-0ms", "-3ms", "1h", "1ms-"])
def test_bad_latency_spec_is_a_one_line_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="bad latency") as bad:
        parse_latency_spec(text)
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize(("text", "spec", "canonical"), [
    ("hang", HangFault(), "hang"),
    ("eio:100-199", EioFault(LbaRange(100, 199)), "eio:100-199"),
    ("eio:100-199:write", EioFault(LbaRange(100, 199), frozenset({"write"})),
     "eio:100-199:write"),
    ("EIO:7:read,write", EioFault(LbaRange(7, 7)), "eio:7"),
    ("short:0-7", ShortReadFault(LbaRange(0, 7)), "short:0-7"),
    ("full", DiskFullFault(), "full"),
    ("full:1MiB", DiskFullFault(1024 * 1024), "full:1048576"),
])
def test_fault_spec(text: str, spec: object, canonical: str) -> None:
    assert parse_fault_spec(text) == spec
    assert str(spec) == canonical
    assert parse_fault_spec(canonical) == spec


@pytest.mark.parametrize("text", [
    "", "bogus", "hang:3", "eio", "eio:9-3", "eio:x", "eio:1-2:erase", "short", "full:lots",
    "full:1:2",
])
def test_bad_fault_spec_is_a_one_line_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="bad fault") as bad:
        parse_fault_spec(text)
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("512B", 512), ("64KiB", 65536),
                                            ("1MiB", 1 << 20), ("2GiB", 2 << 30)])
def test_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_random_latency_is_deterministic_for_a_seed() -> None:
    def delays(seed: int) -> list[float]:
        faults = FaultInjector(seed)
        faults.latency = parse_latency_spec("0-500ms")
        return [faults.next_latency() for _ in range(20)]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)
    assert all(0.0 <= delay <= 0.5 for delay in delays(7))
    faults = FaultInjector(7)
    faults.latency = Latency(0.0, 0.5)
    first = faults.next_latency()
    faults.reseed(7)
    assert faults.next_latency() == first


def test_fixed_latency_is_the_same_every_time() -> None:
    faults = FaultInjector()
    faults.latency = 0.3
    assert {faults.next_latency() for _ in range(5)} == {0.3}


# fault spec, operation, first LBA, block count -> error kind and the LBA it names
FAILING = [
    ("eio:4-5", "read", 3, 3, StorageErrorKind.EIO, 4),
    ("eio:4-5", "write", 5, 2, StorageErrorKind.EIO, 5),
    ("eio:4-5:write", "write", 0, 8, StorageErrorKind.EIO, 4),
    ("eio:4-5:read", "read", 4, 1, StorageErrorKind.EIO, 4),
    ("short:6-9", "read", 2, 8, StorageErrorKind.SHORT_READ, 6),
    ("full", "write", 1, 1, StorageErrorKind.NO_SPACE, 1),
    ("full:1KiB", "write", 10, 3, StorageErrorKind.NO_SPACE, 12),
]
HIT_KINDS = {StorageErrorKind.EIO: FaultKind.EIO, StorageErrorKind.SHORT_READ:
             FaultKind.SHORT_READ, StorageErrorKind.NO_SPACE: FaultKind.DISK_FULL}


@pytest.mark.parametrize(("spec", "op", "lba", "count", "kind", "bad_lba"), FAILING)
def test_fault_fails_the_operation_with_its_kind_and_writes_nothing(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage],
    spec: str, op: str, lba: int, count: int, kind: StorageErrorKind, bad_lba: int,
) -> None:
    path = make_image(16)
    before = path.read_bytes()
    storage = open_storage(path)
    parse_fault_spec(spec).apply(storage.faults)
    hits: list[FaultHit] = []
    storage.on_fault = hits.append
    call = storage.read(lba, count) if op == "read" else storage.write(lba, bytes(count * BLOCK))
    with pytest.raises(StorageError) as failed:
        asyncio.run(call)
    assert (failed.value.kind, failed.value.lba, failed.value.op) == (kind, bad_lba, op)
    assert str(failed.value).startswith(f"{path}: ")
    assert hits == [FaultHit(HIT_KINDS[kind], op, bad_lba)]
    assert path.read_bytes() == before


@pytest.mark.parametrize(("spec", "op"), [("eio:4-5:write", "read"), ("eio:4-5:read", "write"),
                                          ("short:0-7", "write"), ("full", "read"),
                                          ("eio:10-12", "read")])
def test_fault_leaves_other_operations_alone(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage], spec: str, op: str
) -> None:
    path = make_image(16)
    storage = open_storage(path)
    parse_fault_spec(spec).apply(storage.faults)
    if op == "read":
        assert asyncio.run(storage.read(2, 6)) == path.read_bytes()[2 * BLOCK:8 * BLOCK]
    else:
        asyncio.run(storage.write(2, b"\x77" * 6 * BLOCK))
        assert path.read_bytes()[2 * BLOCK:8 * BLOCK] == b"\x77" * 6 * BLOCK


def test_disk_full_budget_counts_whole_writes(make_image: Callable[..., Path],
                                              open_storage: Callable[..., Storage]) -> None:
    storage = open_storage(make_image(16))
    storage.faults.disk_full(after_bytes=2 * BLOCK)

    async def scenario() -> list[StorageErrorKind | None]:
        outcomes = []
        for lba, count in [(0, 3), (0, 1), (1, 1), (2, 1)]:
            try:
                await storage.write(lba, bytes(count * BLOCK))
                outcomes.append(None)
            except StorageError as failed:
                outcomes.append(failed.kind)
        return outcomes

    full = StorageErrorKind.NO_SPACE
    assert asyncio.run(scenario()) == [full, None, None, full]


def test_clear_removes_every_fault(make_image: Callable[..., Path],
                                   open_storage: Callable[..., Storage]) -> None:
    storage = open_storage(make_image(16))
    for spec in ["eio:0-15", "short:0-15", "full", "hang"]:
        parse_fault_spec(spec).apply(storage.faults)
    storage.faults.latency = 5.0
    storage.faults.clear()
    assert not storage.faults.hung
    assert storage.faults.latency == Latency()

    async def scenario() -> bytes:
        await storage.write(0, b"\x01" * BLOCK)
        return await storage.read(0)

    assert asyncio.run(asyncio.wait_for(scenario(), 1.0)) == b"\x01" * BLOCK


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, so that a real write runs out of space (needs root and mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a 64 KiB tmpfs needs root and mount(8)")
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_real_enospc_is_no_space(tiny_tmpfs: Path) -> None:
    path = tiny_tmpfs / "card.img"
    path.touch()
    os.truncate(path, 1024 * 1024)  # sparse: 1 MiB of image on 64 KiB of file system
    with Storage.open(path) as storage, pytest.raises(StorageError) as failed:
        asyncio.run(storage.write(0, b"\x55" * 256 * 1024))
    assert failed.value.kind is StorageErrorKind.NO_SPACE
    assert failed.value.lba in range(512)


SHORT_WRITER = """
import asyncio, resource, sys
from sdmodel.storage import Storage, StorageError
storage = Storage.open(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 512 + 256, resource.RLIM_INFINITY))
try:
    asyncio.run(storage.write(8, bytes(2 * 512)))
except StorageError as failed:
    print(failed.kind.value, failed.lba)
"""


def test_short_pwrite_is_no_space_not_success(make_image: Callable[..., Path]) -> None:
    """RLIMIT_FSIZE cuts the pwrite short in the middle of block 8 (then EFBIG)."""
    path = make_image(16)
    child = subprocess.run([sys.executable, "-c", SHORT_WRITER, str(path)],
                           capture_output=True, text=True, timeout=30)
    assert child.stdout.split() == ["no-space", "8"], child.stderr
