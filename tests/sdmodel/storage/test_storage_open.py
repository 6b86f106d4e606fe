"""Storage.open: O(1) opening, validation with path-naming ImageErrors, read-only, locking."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sdmodel.errors import ImageError
from sdmodel.storage import Storage, StorageError, StorageErrorKind

GIB = 1024**3
TIB = 1024**4


def sparse(path: Path, size: int) -> None:
    path.touch()
    os.truncate(path, size)


def test_sparse_64gib_image_opens_fast_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.img"
    sparse(path, 64 * GIB)
    tracemalloc.start()
    start = time.perf_counter()
    storage = Storage.open(path)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    try:
        assert storage.size_bytes == 64 * GIB
        assert storage.block_count == 64 * GIB // 512
        assert not storage.read_only
        assert elapsed < 1.0  # typically ~1 ms; the bench measures it properly
        assert peak < 256 * 1024  # memory does not grow with the image size
        assert asyncio.run(storage.read(storage.block_count - 1)) == bytes(512)
    finally:
        storage.close()


UNUSABLE: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (lambda p: p.write_bytes(b""), "0 bytes"),
    "1000 bytes": (lambda p: p.write_bytes(bytes(1000)), "not a multiple of 512"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "missing": (lambda p: None, "no such file"),
    "over 2 TiB": (lambda p: sparse(p, 2 * TIB + 512), "larger than 2 TiB"),
    "fifo": (lambda p: os.mkfifo(p), "not a regular file or block device"),
}


@pytest.mark.parametrize("case", UNUSABLE)
def test_unusable_image_is_refused_with_one_line_naming_the_path(tmp_path: Path,
                                                                 case: str) -> None:
    create, reason = UNUSABLE[case]
    path = tmp_path / "card.img"
    create(path)
    with pytest.raises(ImageError) as refused:
        Storage.open(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize("how", ["no write permission bits", "read_only option"])
def test_read_only_image_is_write_protected_and_left_untouched(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage], how: str
) -> None:
    path = make_image()
    before = path.read_bytes()
    if how == "no write permission bits":
        path.chmod(0o444)  # read-only for root too: the mode bits decide, not os.access
    storage = open_storage(path, read_only=how == "read_only option")
    assert storage.read_only
    with pytest.raises(StorageError) as refused:
        asyncio.run(storage.write(1, b"\xff" * 512))
    assert refused.value.kind is StorageErrorKind.READ_ONLY
    assert refused.value.lba == 1
    assert asyncio.run(storage.read(1)) == before[512:1024]
    asyncio.run(storage.flush())  # nothing to sync, but flush still works
    assert storage.syncs == 0
    assert path.read_bytes() == before


LOCK_HOLDER = """
import sys
from sdmodel.storage import Storage
storage = Storage.open(sys.argv[1])
print("open", flush=True)
sys.stdin.readline()
storage.close()
"""


@contextmanager
def held_by_another_process(path: Path) -> Iterator[None]:
    """A child python process with ``path`` open for writing until the block ends."""
    child = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "open\n"
        yield
    finally:
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(timeout=10) == 0


def test_image_written_by_another_process_is_refused_but_readable(
    make_image: Callable[..., Path], open_storage: Callable[..., Storage]
) -> None:
    path = make_image()
    with held_by_another_process(path):
        with pytest.raises(ImageError) as refused:
            Storage.open(path)
        message = str(refused.value)
        assert message.startswith(f"{path}: ")
        assert "another sdscope process" in message
        assert "read-only" in message
        reader = open_storage(path, read_only=True)  # readers take no lock (documented)
        assert asyncio.run(reader.read(3)) == bytes([3]) * 512
    open_storage(path)  # the child exited: its lock is gone


def test_close_releases_the_lock(make_image: Callable[..., Path]) -> None:
    path = make_image()
    first = Storage.open(path)
    with pytest.raises(ImageError, match="in use"):
        Storage.open(path)  # a second writer in the same process conflicts too
    first.close()
    Storage.open(path).close()


def test_lock_option_off_allows_two_writers(make_image: Callable[..., Path],
                                            open_storage: Callable[..., Storage]) -> None:
    path = make_image()
    open_storage(path, lock=False)
    open_storage(path, lock=False)
