"""Export a simulation trace as a capture file (sigrok ``.sr`` or VCD).

The signals follow the bus the trace holds (SD: CLK, CMD, DAT0-3; SPI: CS, SCLK,
MOSI, MISO) and the ``.sr`` sample rate defaults to 8 samples per period of the
fastest clock in the window, enough for sigrok's and our own decoders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sdmodel.capture.sr_write import ExportError, default_samplerate, write_sr
from sdmodel.capture.vcd_write import write_vcd
from sdmodel.trace import Trace
from sdmodel.waveform import is_bus_token, signals_for

__all__ = ["export_trace", "export_format"]

Format = Literal["sr", "vcd"]


def export_format(path: str | Path) -> Format:
    """The format a file name asks for; ExportError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix == ".sr":
        return "sr"
    if suffix == ".vcd":
        return "vcd"
    raise ExportError(f"{Path(path).name}: export as .sr (sigrok session) or .vcd, "
                      f"not {suffix or 'a file without extension'}")


def export_trace(trace: Trace, path: str | Path, fmt: Format | None = None, *,
                 t0: int | None = None, t1: int | None = None,
                 samplerate: int | None = None) -> int:
    """Write the bus signals of ``trace`` over [t0, t1) (default: all of it) to ``path``;
    returns the samples (``.sr``) or value changes (VCD) written."""
    fmt = fmt or export_format(path)
    first, last = trace.span()
    t0 = first if t0 is None else t0
    t1 = last if t1 is None else t1
    bus = [t for t in trace.window(t0, t1) if is_bus_token(t)]
    if not bus or t1 <= t0:
        raise ExportError("nothing to export: the trace has no bus activity in that window")
    signals = signals_for(bus)
    if fmt == "vcd":
        return write_vcd(path, trace, signals, t0, t1)
    if samplerate is None:
        samplerate = default_samplerate(min(t.period for t in bus if t.period))
    return write_sr(path, trace, signals, t0, t1, samplerate)
