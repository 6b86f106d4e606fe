"""Open a capture file of either supported format (sigrok ``.sr`` or VCD)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

from sdmodel.capture.sr import SrCapture, read_sr
from sdmodel.capture.vcd import VcdCapture, read_vcd
from sdmodel.errors import CaptureError

__all__ = ["Capture", "open_capture"]

Capture: TypeAlias = SrCapture | VcdCapture

_ZIP_MAGIC = b"PK\x03\x04"


def open_capture(path: str | Path) -> Capture:
    """Read and check a capture's header; samples stay on disk until decoded.

    The format comes from the content (a zip archive is ``.sr``, text starting with a
    ``$`` keyword is VCD), so a misnamed file still opens.
    """
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: no such capture file")
    with path.open("rb") as stream:
        head = stream.read(4096)
    if head.startswith(_ZIP_MAGIC) or path.suffix.lower() == ".sr":
        return read_sr(path)
    if head.lstrip().startswith(b"$") or path.suffix.lower() == ".vcd":
        return read_vcd(path)
    raise CaptureError(f"{path.name}: unknown capture format (expected a sigrok .sr or a VCD)")
