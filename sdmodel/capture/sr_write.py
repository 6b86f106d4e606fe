"""Write sigrok session files (``.sr``) from an edge source, window by window.

The layout is what libsigrok's ``srzip`` output writes and ``sr.read_sr`` reads: a zip
with ``version`` ("2"), a ``metadata`` INI file and the samples in ``logic-1-1``,
``logic-1-2``, ... members of ``CHUNK_BYTES``. Sample k is the level of every signal at
``t0 + k / samplerate`` (bit n = probe n+1). Samples are rendered ``WINDOW_SAMPLES`` at a
time from the source's edges, so memory stays bounded for any length. A level the trace
dropped (``UNKNOWN``) is refused rather than written as made-up data.

An edge source is anything with ``edges(signal, t0, t1)`` returning edges in the shape of
``sdmodel.waveform.Edges``: ``times`` (int64 ps, ``times[0] == t0``) and ``levels``
(uint8; ``levels[i]`` holds from ``times[i]`` to the next time).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from sdmodel.capture.sr import sample_dtype
from sdmodel.errors import SdscopeError
from sdmodel.tokens import PS_PER_S
from sdmodel.waveform import UNKNOWN  # level of a bit whose payload the trace dropped

__all__ = [
    "CHUNK_BYTES",
    "WINDOW_SAMPLES",
    "EdgeSource",
    "EdgesLike",
    "ExportError",
    "default_samplerate",
    "format_samplerate",
    "known_edges",
    "write_sr",
]

CHUNK_BYTES = 4 << 20  # bytes per logic-1-N member ("a few MB", like sigrok)
WINDOW_SAMPLES = 1 << 20  # samples rendered at a time; j * 10**12 stays inside int64
# deflate level 1: 4x faster than the default 6 on logic samples, files ~1/3 larger
COMPRESS_LEVEL = 1
SR_FORMAT_VERSION = "2"  # the `version` member of srzip files since libsigrok 0.4
SIGROK_VERSION = "0.5.2"  # `[global] sigrok version`: the libsigrok whose format we write
_MAX_PROBES = 64
_RATE_STEPS = (1, 2, 5)  # sample rates sigrok's drivers offer: 1/2/5 x 10^n Hz
_SI_PREFIXES = ("", "k", "M", "G", "T")


class ExportError(SdscopeError):
    """A waveform cannot be exported (payload dropped, bad window or signal list)."""


class EdgesLike(Protocol):
    @property
    def times(self) -> np.ndarray: ...  # int64 ps, times[0] == t0 of the request

    @property
    def levels(self) -> np.ndarray: ...  # uint8, levels[i] holds from times[i]


class EdgeSource(Protocol):
    def edges(self, signal: str, t0: int, t1: int) -> EdgesLike: ...


def known_edges(source: EdgeSource, signal: str, t0: int, t1: int) -> EdgesLike:
    """``source.edges(signal, t0, t1)``, checked: it starts at ``t0`` and no level in it is
    ``UNKNOWN``; raises ExportError otherwise."""
    edges = source.edges(signal, t0, t1)
    if len(edges.times) == 0 or int(edges.times[0]) != t0:
        raise ExportError(f"the waveform of {signal} does not start at {t0} ps")
    unknown = np.flatnonzero(edges.levels == UNKNOWN)
    if unknown.size:
        at = int(edges.times[unknown[0]]) / PS_PER_S
        raise ExportError(
            f"cannot export {signal} at {at:.9f} s: payload dropped; raise the trace budget"
        )
    return edges


def default_samplerate(fastest_period_ps: int, per_period: int = 8) -> int:
    """The lowest rate of 1/2/5 x 10^n Hz giving at least ``per_period`` samples per period
    of the fastest clock: 25 MHz (40 000 ps) -> 200 MHz, 400 kHz -> 5 MHz."""
    if fastest_period_ps <= 0 or per_period <= 0:
        raise ExportError(f"no sample rate for a clock period of {fastest_period_ps} ps")
    needed = -(-per_period * PS_PER_S // fastest_period_ps)  # ceil, in Hz
    decade = 1
    while True:
        for step in _RATE_STEPS:
            if step * decade >= needed:
                return step * decade
        decade *= 10


def format_samplerate(rate: int) -> str:
    """A rate as libsigrok spells it in ``metadata`` (``sr_samplerate_string``):
    ``"100 MHz"``, ``"1.5 MHz"``, ``"500 Hz"``."""
    if rate <= 0:
        raise ExportError(f"sample rate must be positive, not {rate}")
    exponent = 0
    while rate // 1000 ** exponent >= 1000 and exponent + 1 < len(_SI_PREFIXES):
        exponent += 1
    whole, rest = divmod(rate, 1000 ** exponent)
    fraction = f"{rest:0{3 * exponent}d}".rstrip("0") if exponent else ""
    return f"{whole}{'.' + fraction if fraction else ''} {_SI_PREFIXES[exponent]}Hz"


def _metadata(signals: Sequence[str], samplerate: int, unitsize: int) -> str:
    # Keys in libsigrok's order (output/srzip.c: zip_create, then unitsize in zip_append).
    lines = ["[global]", f"sigrok version={SIGROK_VERSION}", "", "[device 1]",
             "capturefile=logic-1", f"total probes={len(signals)}",
             f"samplerate={format_samplerate(samplerate)}", "total analog=0"]
    lines += [f"probe{n}={name}" for n, name in enumerate(signals, start=1)]
    lines.append(f"unitsize={unitsize}")
    return "\n".join(lines) + "\n"


def _unitsize(count: int) -> int:
    """Bytes per sample: 1, 2, 4 or 8 (the sizes numpy packs without padding)."""
    return next(size for size in (1, 2, 4, 8) if count <= 8 * size)


def _check_signals(signals: Sequence[str]) -> None:
    if not 1 <= len(signals) <= _MAX_PROBES:
        raise ExportError(f"a .sr file holds 1 to {_MAX_PROBES} signals, not {len(signals)}")
    if len(set(signals)) != len(signals):
        raise ExportError(f"signal names repeat: {', '.join(signals)}")
    for name in signals:
        if not name or "\n" in name or name != name.strip():
            raise ExportError(f"signal name {name!r} cannot be a sigrok probe name")


def _sample_times(t0: int, first: int, count: int, samplerate: int) -> np.ndarray:
    """Exact times (ps, rounded down) of samples ``first .. first + count - 1``."""
    base, rest = divmod(first * PS_PER_S, samplerate)  # Python ints: no overflow
    offsets = np.arange(count, dtype=np.int64) * PS_PER_S + rest
    return t0 + base + offsets // samplerate


def _render(source: EdgeSource, signals: Sequence[str], times: np.ndarray,
            dtype: np.dtype) -> np.ndarray:
    """One window of packed samples: bit n holds ``signals[n]`` at each of ``times``."""
    first, last = int(times[0]), int(times[-1]) + 1
    packed = np.zeros(len(times), dtype=dtype)
    for bit, signal in enumerate(signals):
        edges = known_edges(source, signal, first, last)
        # each level holds from the first sample at or after its edge to the next edge's:
        # a run per edge (fewer edges than samples: cheaper than a search per sample)
        starts = np.searchsorted(times, edges.times, side="left")
        runs = np.diff(starts, append=len(times))
        levels = np.repeat(edges.levels.astype(dtype) & 1, runs)
        packed |= levels << dtype.type(bit)
    return packed


def write_sr(path: str | Path, source: EdgeSource, signals: Sequence[str], t0: int, t1: int,
             samplerate: int) -> int:
    """Write ``signals`` of ``source`` over ``[t0, t1)`` ps to a sigrok ``.sr`` file at
    ``samplerate`` Hz; returns the number of samples written. The file appears only when
    complete; raises ExportError (nothing written) for a dropped payload or a bad request."""
    path = Path(path)
    _check_signals(signals)
    if t1 <= t0:
        raise ExportError(f"empty time window: {t0} ps .. {t1} ps")
    if samplerate <= 0:
        raise ExportError(f"sample rate must be positive, not {samplerate}")
    total = -(-(t1 - t0) * samplerate // PS_PER_S)  # samples k with t0 + k/rate < t1
    unitsize = _unitsize(len(signals))
    dtype = sample_dtype(unitsize)
    chunk_samples = CHUNK_BYTES // unitsize
    partial = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED,
                             compresslevel=COMPRESS_LEVEL) as archive:
            archive.writestr("version", SR_FORMAT_VERSION)
            archive.writestr("metadata", _metadata(signals, samplerate, unitsize))
            for chunk, start in enumerate(range(0, total, chunk_samples), start=1):
                end = min(start + chunk_samples, total)
                with archive.open(f"logic-1-{chunk}", "w") as member:
                    for first in range(start, end, WINDOW_SAMPLES):
                        count = min(WINDOW_SAMPLES, end - first)
                        times = _sample_times(t0, first, count, samplerate)
                        member.write(_render(source, signals, times, dtype).tobytes())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return total
