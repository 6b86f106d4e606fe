"""``Storage``: asynchronous block I/O on a disk image (design.md, "Asynchronous storage").

Every read, write and flush is a job on the Storage's own daemon worker thread
(``SerialExecutor``), run in submission order; the event-loop thread only queues jobs and
receives results. ``legacy_sync`` performs the very same jobs inline in the loop thread,
fault latency included, to show the freeze the asynchronous design avoids.

A write completes (its awaitable returns) only after ``pwrite`` and, when ``durable``,
``fdatasync`` have returned: that is the moment the card may release busy (Part C). Once
submitted, a write is performed even if the awaiting task is cancelled (it is never half
done); an error nobody awaited is raised by the next ``flush()``. A read whose awaiter is
cancelled before it starts is dropped. ``close()`` cancels queued jobs, ends injected
waits, and never waits more than 1 s for a job stuck in a system call: then the fd is
closed by the worker when the call returns.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
import weakref
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.storage.errors import StorageError, StorageErrorKind, error_from_oserror
from sdmodel.storage.executor import SerialExecutor
from sdmodel.storage.faults import FaultHit, FaultInjector, FaultKind
from sdmodel.storage.image import ImageFile

__all__ = ["CLOSE_TIMEOUT_S", "Storage", "StorageOptions"]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 1.0  # longest close() waits for a job stuck in a system call
T = TypeVar("T")
Report = Callable[[FaultHit], None]
Job = Callable[[Report], T]  # runs in the worker thread (in the loop thread in legacy mode)

# An injected range fault -> the error the operation fails with (nothing is transferred).
_FAULT_ERRORS: dict[FaultKind, tuple[StorageErrorKind, str]] = {
    FaultKind.EIO: (StorageErrorKind.EIO, "injected I/O error"),
    FaultKind.SHORT_READ: (StorageErrorKind.SHORT_READ, "injected short read"),
    FaultKind.DISK_FULL: (StorageErrorKind.NO_SPACE, "injected disk full, no space"),
}


@dataclass(frozen=True)
class StorageOptions:
    read_only: bool = False  # open read-only even if writable
    durable: bool = False  # fdatasync after each write before it completes
    legacy_sync: bool = False  # do I/O inline in the event-loop thread (the old freeze)
    lock: bool = True  # flock so two sdscope processes cannot write one image


def _cancelled(path: Path) -> StorageError:
    return StorageError(StorageErrorKind.CANCELLED,
                        f"{path}: operation cancelled: storage was closed")


def _shutdown(executor: SerialExecutor | None, image: ImageFile, faults: FaultInjector,
              timeout: float) -> None:
    """Close sequence shared by close() and garbage collection; must not reference Storage.

    Jobs released from an injected wait find the image refusing them (CANCELLED); a job
    inside a system call gets up to ``timeout`` seconds to finish before the lock goes.
    """
    image.refuse_new_users()
    faults.abort()
    if executor is not None:
        executor.shutdown(partial(_cancelled, image.path), timeout)
    image.close()
    log.debug("closed %s", image.path)


class Storage:
    """A disk image as asynchronous 512-byte blocks. Create with ``Storage.open``."""

    def __init__(self, image: ImageFile, options: StorageOptions) -> None:
        self._image = image
        self.options = options
        self.faults = FaultInjector()
        self.on_fault: Callable[[FaultHit], None] | None = None  # called in the loop thread
        self.syncs = 0  # fdatasync calls that completed
        self._closed = False
        self._inline = 0
        self._orphan_error: BaseException | None = None
        self._executor = (None if options.legacy_sync
                          else SerialExecutor(f"sdscope-storage:{image.path.name}"))
        # Garbage collection closes too, but without waiting (it may run in the loop thread).
        self._finalizer = weakref.finalize(self, _shutdown, self._executor, image, self.faults,
                                           0.0)
        self._finalizer.atexit = False  # exit never waits for a hung job

    @classmethod
    def open(cls, path: str | os.PathLike[str], options: StorageOptions | None = None) -> Storage:
        """Open an image in O(1) (nothing is read); problems raise ImageError naming it."""
        options = options or StorageOptions()
        image = ImageFile.open(path, read_only=options.read_only, lock=options.lock)
        log.debug("opened %s: %d bytes, read_only=%s, locked=%s",
                  image.path, image.size, image.read_only, image.locked)
        return cls(image, options)

    # -- state ------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._image.path

    @property
    def size_bytes(self) -> int:
        return self._image.size

    @property
    def block_count(self) -> int:
        return self._image.size // BLOCK_SIZE

    @property
    def read_only(self) -> bool:
        return self._image.read_only

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_done_at(self) -> float:
        """``time.perf_counter()`` when the worker last finished a job (legacy mode: now,
        the loop thread itself did the I/O)."""
        return time.perf_counter() if self._executor is None else self._executor.last_done_at

    @property
    def pending(self) -> int:
        """I/O jobs queued or running."""
        return self._inline if self._executor is None else self._executor.pending

    def __repr__(self) -> str:
        mode = "legacy" if self._executor is None else "async"
        return (f"<Storage {str(self.path)!r} {self.block_count} blocks "
                f"{'ro' if self.read_only else 'rw'} {mode}{' closed' if self._closed else ''}>")

    # -- operations -------------------------------------------------------------------------

    async def read(self, lba: int, count: int = 1) -> bytes:
        """``count`` blocks from ``lba`` (count * 512 bytes)."""
        if count < 1:
            raise ValueError(f"block count must be >= 1, got {count}")
        self._check_request("read", lba, count)
        return await self._submit(partial(self._read_job, lba, count), skip_if_cancelled=True)

    async def write(self, lba: int, data: bytes | bytearray | memoryview) -> None:
        """Write whole blocks at ``lba``; returns once they are on the file (and synced if
        durable)."""
        await self._submit(self._write_request(lba, data), skip_if_cancelled=False)

    def write_soon(self, lba: int, data: bytes | bytearray | memoryview) -> asyncio.Future[None]:
        """Queue the same write at once, without a task: the future completes when ``write``
        would return (a card holds busy on it, one block at a time). A request that cannot
        be queued raises here. Legacy mode runs the job in the loop thread on the next turn."""
        job = self._write_request(lba, data)
        if self._executor is None:
            return asyncio.ensure_future(self._submit(job, skip_if_cancelled=False))
        return self._queue(job, skip_if_cancelled=False)

    def _write_request(self, lba: int, data: bytes | bytearray | memoryview) -> Job[None]:
        """The job of a checked write request."""
        payload = bytes(data)  # the caller may reuse its buffer while the job is queued
        if not payload or len(payload) % BLOCK_SIZE:
            raise ValueError(f"write size must be a positive multiple of {BLOCK_SIZE} bytes, "
                             f"got {len(payload)}")
        self._check_request("write", lba, len(payload) // BLOCK_SIZE)
        if self.read_only:
            raise StorageError(StorageErrorKind.READ_ONLY,
                               f"{self.path}: write to LBA {lba} refused: image is read-only",
                               lba=lba, op="write")
        return partial(self._write_job, lba, payload)

    async def flush(self) -> None:
        """Wait for every job submitted before, then fdatasync. Raises the first error of a
        write whose awaiter was cancelled, if any."""
        self._check_request("flush", 0, 0)
        await self._submit(self._flush_job, skip_if_cancelled=False)
        error, self._orphan_error = self._orphan_error, None
        if error is not None:
            raise error

    def check_file(self) -> None:
        """Raise StorageError(CHANGED) if the image was truncated, resized, replaced or
        removed since it was opened (also done by the worker before every operation)."""
        with self._image.use(StorageErrorKind.CLOSED, "check") as fd:
            self._image.check(fd, "check")

    def close(self) -> None:
        """Cancel queued jobs, end injected waits, release the lock, close the file.
        Idempotent; waits at most 1 s for a job stuck in a system call."""
        self._closed = True
        if self._finalizer.detach() is not None:
            _shutdown(self._executor, self._image, self.faults, CLOSE_TIMEOUT_S)

    async def aclose(self) -> None:
        """Let submitted jobs finish (at most 1 s), then ``close()``."""
        if not self._closed and self._executor is not None and self._executor.pending:
            barrier = self._executor.submit(lambda: None, skip_if_cancelled=False)
            try:
                await asyncio.wait_for(barrier, CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.warning("%s: closing with jobs still pending", self.path)
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -- loop-thread plumbing -----------------------------------------------------------------

    def _check_request(self, op: str, lba: int, count: int) -> None:
        if self._closed:
            raise StorageError(StorageErrorKind.CLOSED, f"{self.path}: {op} on a closed storage",
                               op=op)
        if lba < 0 or lba + count > self.block_count:
            raise StorageError(
                StorageErrorKind.OUT_OF_RANGE,
                f"{self.path}: {op} of LBA {lba}..{lba + count - 1} is outside the image "
                f"(LBA 0..{self.block_count - 1})", lba=lba, op=op)

    async def _submit(self, job: Job[T], *, skip_if_cancelled: bool) -> T:
        if self._executor is None:  # legacy: block the loop thread on purpose
            self._inline += 1
            try:
                return job(partial(self._report, asyncio.get_running_loop()))
            finally:
                self._inline -= 1
        result: T = await self._queue(job, skip_if_cancelled=skip_if_cancelled)
        return result

    def _queue(self, job: Job[T], *, skip_if_cancelled: bool) -> asyncio.Future[T]:
        """Hand ``job`` to the worker thread; its future of the running loop."""
        assert self._executor is not None
        report = partial(self._report, asyncio.get_running_loop())
        orphan = None if skip_if_cancelled else self._keep_orphan_error
        try:
            return self._executor.submit(partial(job, report),
                                         skip_if_cancelled=skip_if_cancelled, orphan=orphan)
        except RuntimeError:  # closed from another thread since _check_request
            raise StorageError(StorageErrorKind.CLOSED,
                               f"{self.path}: storage closed while submitting") from None

    def _keep_orphan_error(self, error: BaseException) -> None:
        cancelled = isinstance(error, StorageError) and error.kind is StorageErrorKind.CANCELLED
        if not cancelled and self._orphan_error is None:
            log.warning("%s (nobody awaited it)", error)
            self._orphan_error = error

    def _report(self, loop: asyncio.AbstractEventLoop, hit: FaultHit) -> None:
        """Any thread: deliver a fault hit to ``on_fault`` in the loop thread."""
        with suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(self._emit_hit, hit)

    def _emit_hit(self, hit: FaultHit) -> None:
        if self.on_fault is not None:
            self.on_fault(hit)

    # -- jobs: run in the worker thread (in the loop thread in legacy mode) -----------------

    def _fail_on_fault(self, hit: FaultHit | None, report: Report) -> None:
        if hit is None:
            return
        report(hit)
        kind, what = _FAULT_ERRORS[hit.kind]
        raise StorageError(kind, f"{self.path}: {hit.op} failed at LBA {hit.lba}: {what}",
                           lba=hit.lba, op=hit.op)

    def _read_job(self, lba: int, count: int, report: Report) -> bytes:
        self.faults.wait("read", lba, report)
        size = count * BLOCK_SIZE
        with self._image.use(StorageErrorKind.CANCELLED, "read") as fd:
            self._image.check(fd, "read")
            self._fail_on_fault(self.faults.check("read", lba, count), report)
            chunks: list[bytes] = []
            got = 0
            try:
                while got < size:
                    chunk = os.pread(fd, size - got, lba * BLOCK_SIZE + got)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
            except OSError as exc:
                raise error_from_oserror(exc, self.path, "read", lba + got // BLOCK_SIZE) from None
        if got < size:
            bad = lba + got // BLOCK_SIZE
            raise StorageError(StorageErrorKind.SHORT_READ,
                               f"{self.path}: short read at LBA {bad}: got {got} of {size} bytes",
                               lba=bad, op="read")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _write_job(self, lba: int, data: bytes, report: Report) -> None:
        self.faults.wait("write", lba, report)
        with self._image.use(StorageErrorKind.CANCELLED, "write") as fd:
            self._image.check(fd, "write")
            self._fail_on_fault(self.faults.check("write", lba, len(data) // BLOCK_SIZE), report)
            view = memoryview(data)
            done = 0
            try:
                while done < len(data):  # a short pwrite is retried to get the real errno
                    written = os.pwrite(fd, view[done:], lba * BLOCK_SIZE + done)
                    if written == 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += written
                if self.options.durable:
                    os.fdatasync(fd)
                    self.syncs += 1
            except OSError as exc:
                bad = lba + done // BLOCK_SIZE
                raise error_from_oserror(exc, self.path, "write", bad) from None

    def _flush_job(self, report: Report) -> None:
        self.faults.wait("flush", None, report)
        with self._image.use(StorageErrorKind.CANCELLED, "flush") as fd:
            self._image.check(fd, "flush")
            if self.read_only:
                return
            try:
                os.fdatasync(fd)
            except OSError as exc:
                raise error_from_oserror(exc, self.path, "flush", None) from None
            self.syncs += 1
