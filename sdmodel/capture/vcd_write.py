"""Write Value Change Dump files (IEEE 1364 §18) from an edge source, window by window.

Every signal is a scalar ``wire`` in one ``sdscope`` scope, with its level at ``t0`` in
``$dumpvars`` and then only its changes, at their exact times: edges need no sampling.
Times are absolute (ps since power-on, as in the trace), in the coarsest timescale of
1/10/100 x ps/ns/us/ms/s that divides ``t0``, ``t1`` and every edge (found by a first pass
over the edges unless given), so GTKWave, PulseView and ``sigrok-cli -I vcd`` (which
makes one sample per time unit) get small numbers. A final ``#t1`` marks the end. Edges
are fetched ``window_ps`` at a time; memory stays bounded for any length. A level the
trace dropped (``UNKNOWN``) is refused like in ``write_sr``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from vcd import VCDWriter

from sdmodel.capture.sr_write import EdgesLike, EdgeSource, ExportError, known_edges

__all__ = ["WINDOW_PS", "exact_timescale", "timescale_text", "write_vcd"]

WINDOW_PS = 1_000_000_000  # 1 ms of edges per request
SCOPE = "sdscope"
_UNITS = ("ps", "ns", "us", "ms", "s")  # 10^(3k) ps
_MAX_EXPONENT = 12  # 1 s


def timescale_text(scale_ps: int) -> str:
    """``1000`` -> ``"1 ns"``; ``scale_ps`` must be a power of ten from 1 ps to 1 s."""
    exponent = round(math.log10(scale_ps)) if scale_ps > 0 else -1
    if not 0 <= exponent <= _MAX_EXPONENT or 10**exponent != scale_ps:
        raise ExportError(f"a VCD timescale is 1/10/100 x ps..s, not {scale_ps} ps")
    return f"{10 ** (exponent % 3)} {_UNITS[exponent // 3]}"


def _windows(t0: int, t1: int, window_ps: int) -> Iterator[tuple[int, int]]:
    for start in range(t0, t1, window_ps):
        yield start, min(start + window_ps, t1)


def exact_timescale(source: EdgeSource, signals: Sequence[str], t0: int, t1: int,
                    window_ps: int = WINDOW_PS) -> int:
    """The coarsest power-of-ten ps (up to 1 s) dividing ``t0``, ``t1`` and every edge."""
    common = math.gcd(t0, t1)
    for start, end in _windows(t0, t1, window_ps):
        for signal in signals:
            times = known_edges(source, signal, start, end).times
            common = math.gcd(common, int(np.gcd.reduce(times)))
            if common % 10:
                return 1
    scale = 1
    while scale < 10**_MAX_EXPONENT and common % (scale * 10) == 0:
        scale *= 10
    return scale


def _check(signals: Sequence[str], t0: int, t1: int) -> None:
    if not signals:
        raise ExportError("no signals to export")
    if len(set(signals)) != len(signals):
        raise ExportError(f"signal names repeat: {', '.join(signals)}")
    for name in signals:
        if not name or any(c.isspace() for c in name):
            raise ExportError(f"signal name {name!r} cannot be a VCD identifier")
    if t0 < 0 or t1 <= t0:
        raise ExportError(f"empty time window: {t0} ps .. {t1} ps")


def write_vcd(path: str | Path, source: EdgeSource, signals: Sequence[str], t0: int, t1: int,
              *, timescale_ps: int | None = None, window_ps: int = WINDOW_PS) -> int:
    """Write ``signals`` of ``source`` over ``[t0, t1)`` ps to a VCD file; returns the
    number of value changes after ``$dumpvars``. ``timescale_ps`` (a power of ten) skips
    the search for the coarsest exact one; raises ExportError if an edge is not on it.
    The file appears only when complete."""
    path = Path(path)
    _check(signals, t0, t1)
    if timescale_ps is None:
        timescale_ps = exact_timescale(source, signals, t0, t1, window_ps)
    scale_text = timescale_text(timescale_ps)
    if t0 % timescale_ps or t1 % timescale_ps:
        raise ExportError(f"{t0} ps .. {t1} ps is not on a timescale of {scale_text}")
    first = [known_edges(source, s, t0, min(t0 + window_ps, t1)) for s in signals]
    levels = [int(edges.levels[0]) for edges in first]
    partial = path.with_name(path.name + ".part")
    changes = 0
    try:
        with partial.open("w", encoding="ascii") as stream:
            writer = VCDWriter(stream, timescale=scale_text, date="", version="sdscope",
                               init_timestamp=t0 // timescale_ps)
            wires = [writer.register_var(SCOPE, name, "wire", size=1, init=level)
                     for name, level in zip(signals, levels, strict=True)]
            for start, end in _windows(t0, t1, window_ps):
                windows = first if start == t0 else [
                    known_edges(source, s, start, end) for s in signals]
                times, wire, value = _changes(windows, levels)
                if np.any(times % timescale_ps):
                    bad = int(times[np.flatnonzero(times % timescale_ps)[0]])
                    raise ExportError(f"an edge at {bad} ps is not on a timescale of "
                                      f"{scale_text}")
                for t, i, v in zip((times // timescale_ps).tolist(), wire.tolist(),
                                   value.tolist(), strict=True):
                    writer.change(wires[i], t, v)
                changes += len(times)
            writer.close(t1 // timescale_ps)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return changes


def _changes(windows: Sequence[EdgesLike], levels: list[int]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The value changes of one window, all signals merged in time order: (times, signal
    index, new level). ``levels`` holds each signal's level before the window and is
    updated to its level at the end."""
    parts = []
    for index, edges in enumerate(windows):
        series = np.concatenate(([levels[index]], edges.levels))
        moved = np.flatnonzero(series[1:] != series[:-1])
        times = edges.times[moved]
        parts.append((times, np.full(len(moved), index), series[1:][moved]))
        levels[index] = int(series[-1])
    times = np.concatenate([p[0] for p in parts]).astype(np.int64)
    order = np.argsort(times, kind="stable")
    return (times[order], np.concatenate([p[1] for p in parts])[order],
            np.concatenate([p[2] for p in parts])[order])
