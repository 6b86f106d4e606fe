"""Open a logic-analyzer capture in the window: decode it off the event loop into a Trace.

The header is read and the channels mapped first; when the file's names do not say which
channel is which, the caller asks the user (channel-map dialog) and calls again with the
mapping. Decoding runs in a worker thread (numpy does the work there) and reports
progress through the loop; the Trace is built in that thread too and handed over whole,
so the window never runs per-token work for an import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sdmodel.capture.channels import map_channels
from sdmodel.capture.source import Capture, open_capture
from sdmodel.decode import DecodeSummary
from sdmodel.decode.api import DecodePlan
from sdmodel.errors import CaptureError
from sdmodel.trace import Trace
from sdmodel.trace_registers import SeenRegisters

__all__ = ["CaptureHeader", "ImportedCapture", "read_header", "decode_into_trace"]


@dataclass(frozen=True)
class CaptureHeader:
    path: Path
    capture: Capture
    mapping_problem: str  # "" when the channels map by name (or by the given mapping)


@dataclass(frozen=True)
class ImportedCapture:
    path: Path
    trace: Trace
    summary: DecodeSummary
    mode: str
    registers: SeenRegisters  # the card registers and state its responses carried


async def read_header(path: str | Path, mode: str = "auto",
                      mapping: str | None = None) -> CaptureHeader:
    """The capture's header (CaptureError for a broken file); a channel-mapping problem is
    returned, not raised, so the caller can ask for a mapping."""
    loop = asyncio.get_running_loop()
    capture = await loop.run_in_executor(None, open_capture, Path(path))
    try:
        map_channels(capture.names, capture.nprobes, mode, mapping)
    except CaptureError as error:
        return CaptureHeader(Path(path), capture, str(error))
    return CaptureHeader(Path(path), capture, "")


async def decode_into_trace(header: CaptureHeader, mode: str = "auto",
                            mapping: str | None = None,
                            progress: Callable[[float], None] | None = None) -> ImportedCapture:
    """Decode the whole capture in a worker thread; ``progress(0..1)`` runs on the loop."""
    loop = asyncio.get_running_loop()
    channels = map_channels(header.capture.names, header.capture.nprobes, mode, mapping)
    plan = DecodePlan(header.capture, channels)

    def report(fraction: float) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, fraction)

    def work() -> tuple[Trace, DecodeSummary, SeenRegisters]:
        trace = Trace()
        summary = DecodeSummary()
        registers = SeenRegisters()
        for token in plan.tokens(report):
            trace.append(token)
            summary.add(token)
            registers.feed(token)
        return trace, summary, registers

    trace, summary, registers = await loop.run_in_executor(None, work)
    return ImportedCapture(header.path, trace, summary, plan.mode.value, registers)
