"""Opening a disk image: validation, read-only detection, the advisory lock, and a file
descriptor that is closed only when no system call is using it.

Opening is O(1): it stats, opens and locks the file and never reads its content, so a
sparse 64 GiB image opens as fast as a 1 MiB one.

Read-only: an image is write-protected when ``read_only`` is asked for, when the file has
no write permission bit at all (this holds for root too, who could write it anyway: the
mode bits say the user meant it read-only), when ``os.access`` denies writing, or when the
file system refuses a writable open (EROFS/EACCES).

Locking (``flock``): a writable open takes ``LOCK_EX | LOCK_NB``, so two sdscope processes
(or two Storage objects in one process) can never write one image. A read-only open takes
no lock: reading an image that another process writes is allowed (the reader sees blocks
change as if another host wrote the card), which is why "open it read-only" is always a
valid way out of a lock conflict. File systems without flock support open unlocked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sdmodel.capacity import validate_image_size
from sdmodel.errors import ImageError
from sdmodel.storage.errors import StorageError, StorageErrorKind, error_from_oserror

__all__ = ["ImageFile", "writable"]

_NO_LOCKING = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def _describe_open_error(path: Path, exc: OSError) -> ImageError:
    if isinstance(exc, FileNotFoundError):
        return ImageError(f"{path}: no such file")
    if isinstance(exc, PermissionError):
        return ImageError(f"{path}: permission denied")
    return ImageError(f"{path}: cannot open image: {exc.strerror or exc}")


def writable(path: str | os.PathLike[str], st: os.stat_result) -> bool:
    """Whether an image with status ``st`` opens writable: some write permission bit is
    set (root included) and ``os.access`` allows writing."""
    return bool(st.st_mode & 0o222) and os.access(path, os.W_OK)


class ImageFile:
    """An open, validated, possibly locked disk image (use ``ImageFile.open``)."""

    def __init__(self, path: Path, fd: int, size: int, read_only: bool, st: os.stat_result,
                 locked: bool) -> None:
        self.path = path
        self.size = size
        self.read_only = read_only
        self.locked = locked
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self._regular = stat.S_ISREG(st.st_mode)
        self._guard = threading.Lock()
        self._users = 0
        self._refusing = False  # no new users (closing has begun)
        self._closing = False  # the fd is closed when the last user leaves

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, read_only: bool, lock: bool) -> ImageFile:
        """Validate and open ``path``; every problem is an ImageError naming the path."""
        image = Path(path)
        try:
            st = os.stat(image)
        except OSError as exc:
            raise _describe_open_error(image, exc) from None
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"{image}: is a directory, not a disk image")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise ImageError(f"{image}: not a regular file or block device")
        read_only = read_only or not writable(image, st)
        fd = cls._open_fd(image, read_only)
        if fd < 0:
            fd, read_only = cls._open_fd(image, True), True
        try:
            st = os.fstat(fd)  # what we actually opened (the path may have changed meanwhile)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                raise ImageError(f"{image}: not a regular file or block device")
            size = st.st_size if stat.S_ISREG(st.st_mode) else os.lseek(fd, 0, os.SEEK_END)
            try:
                validate_image_size(size)
            except ImageError as exc:
                raise ImageError(f"{image}: {exc}") from None
            locked = not read_only and lock and cls._lock(image, fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(image, fd, size, read_only, st, locked)

    @staticmethod
    def _open_fd(path: Path, read_only: bool) -> int:
        """The fd, or -1 if only the writable open is refused (fall back to read-only).

        O_NONBLOCK keeps a path swapped for a FIFO after ``stat`` from blocking the open.
        """
        flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if not read_only and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return -1
            raise _describe_open_error(path, exc) from None
        os.set_blocking(fd, True)
        return fd

    @staticmethod
    def _lock(path: Path, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ImageError(
                f"{path}: image is in use by another sdscope process (it holds the write "
                "lock); close it there or open this image read-only"
            ) from None
        except OSError as exc:
            if exc.errno in _NO_LOCKING:
                return False
            raise ImageError(f"{path}: cannot lock image: {exc.strerror or exc}") from None
        return True

    @contextmanager
    def use(self, closed_kind: StorageErrorKind, op: str) -> Iterator[int]:
        """The fd, kept open for the duration of the block even if ``close()`` runs."""
        with self._guard:
            if self._refusing:
                raise StorageError(closed_kind, f"{self.path}: {op} {closed_kind.value}: "
                                   "storage is closed", op=op)
            self._users += 1
        try:
            yield self._fd
        finally:
            with self._guard:
                self._users -= 1
                last = self._closing and self._users == 0
            if last:
                os.close(self._fd)

    def check(self, fd: int, op: str) -> None:
        """Raise StorageError(CHANGED) if the path no longer names the open file, or the
        file was truncated or extended since it was opened."""
        try:
            now = os.fstat(fd)
            try:
                named = os.stat(self.path)
            except FileNotFoundError:
                raise StorageError(StorageErrorKind.CHANGED,
                                   f"{self.path}: image file was removed while in use",
                                   op=op) from None
        except OSError as exc:
            raise error_from_oserror(exc, self.path, op, None) from None
        if (named.st_dev, named.st_ino) != self._identity:
            raise StorageError(StorageErrorKind.CHANGED,
                               f"{self.path}: image file was replaced by another file while "
                               "in use", op=op)
        if self._regular and now.st_size != self.size:
            raise StorageError(StorageErrorKind.CHANGED,
                               f"{self.path}: image file changed size from {self.size} to "
                               f"{now.st_size} bytes while in use", op=op)

    def refuse_new_users(self) -> None:
        """First step of closing: later ``use()`` calls fail; running ones go on."""
        with self._guard:
            self._refusing = True

    def close(self) -> None:
        """Release the lock now; close the fd now, or when the last user leaves. Idempotent."""
        with self._guard:
            if self._closing:
                return
            self._refusing = self._closing = True
            close_now = self._users == 0
            if self.locked:
                self.locked = False
                with suppress(OSError):  # closing the fd releases it too
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        if close_now:
            os.close(self._fd)
