"""What went wrong with a storage operation, as a kind the card model can map to the bus.

The card turns EIO/SHORT_READ into a read error (SD: no data/CRC error; SPI: data error
token), NO_SPACE into a failed write (negative CRC status / data response 0x0D), READ_ONLY
into WP_VIOLATION (§4.10.1) and CANCELLED/CLOSED into "the card went away".
"""

from __future__ import annotations

import errno
from enum import StrEnum

from sdmodel import errors

__all__ = ["StorageError", "StorageErrorKind", "error_from_oserror"]


class StorageErrorKind(StrEnum):
    EIO = "eio"  # the medium failed (real EIO or an injected one)
    NO_SPACE = "no-space"  # the backing file system is full; nothing counts as written
    SHORT_READ = "short-read"  # fewer bytes than asked for came back
    READ_ONLY = "read-only"  # write to a write-protected image
    CLOSED = "closed"  # call on a closed Storage
    OUT_OF_RANGE = "out-of-range"  # LBA range outside the image
    CANCELLED = "cancelled"  # job dropped because the Storage was closed while it waited
    CHANGED = "changed"  # the image file was truncated, resized, replaced or removed


class StorageError(errors.StorageError):
    """A failed storage operation; ``str()`` is one line naming the image and the LBA."""

    def __init__(
        self, kind: StorageErrorKind, message: str, *, lba: int | None = None, op: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.lba = lba
        self.op = op


# errno -> kind for real OS errors; anything else is reported as EIO with its strerror.
_ERRNO_KINDS: dict[int, StorageErrorKind] = {
    errno.EIO: StorageErrorKind.EIO,
    errno.ENOSPC: StorageErrorKind.NO_SPACE,
    errno.EDQUOT: StorageErrorKind.NO_SPACE,
    errno.EFBIG: StorageErrorKind.NO_SPACE,  # file-size limit (RLIMIT_FSIZE, fs maximum)
    errno.EROFS: StorageErrorKind.READ_ONLY,
    errno.EBADF: StorageErrorKind.CLOSED,
}


def error_from_oserror(exc: OSError, path: object, op: str, lba: int | None) -> StorageError:
    """The StorageError for a failed system call while performing ``op`` at ``lba``."""
    kind = _ERRNO_KINDS.get(exc.errno or 0, StorageErrorKind.EIO)
    where = "" if lba is None else f" at LBA {lba}"
    reason = exc.strerror or type(exc).__name__
    return StorageError(kind, f"{path}: {op} failed{where}: {reason}", lba=lba, op=op)
