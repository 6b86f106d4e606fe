"""User-facing errors of the model. The CLI prints ``str(error)`` on one line and exits 2;
the GUI shows it in a dialog. Each module raises its own subclass."""

from __future__ import annotations

__all__ = [
    "SdscopeError", "ImageError", "StorageError", "CaptureError", "WorkloadError", "SizeError",
]


class SdscopeError(Exception):
    """Base of every error whose message is meant for the user (one line, no traceback)."""


class ImageError(SdscopeError):
    """A disk image cannot be used as a card (missing, directory, bad size, locked...)."""


class StorageError(SdscopeError):
    """A backing-store operation failed (EIO, disk full, short read, closed...)."""


class CaptureError(SdscopeError):
    """A logic-analyzer capture file cannot be read or is malformed."""


class WorkloadError(SdscopeError):
    """A workload text or host request is malformed."""


class SizeError(SdscopeError, ValueError):
    """A byte size that cannot be read (unknown unit, not a whole number of bytes)."""
