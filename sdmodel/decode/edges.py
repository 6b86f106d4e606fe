"""Samples -> the levels of the bus lines at every rising clock edge (vectorised).

Both SD mode and SPI mode 0 sample on the rising CLK/SCLK edge (reference §1 decoder
rule, §A.1), so the decoders only ever see, per edge, its time and the level of each
line. A line's level at an edge is its level in the first sample where the clock is high
(sigrok's rule too). The sample before the edge would be wrong for hosts that change CMD
late in the low phase: the card reader of ``cmd13_r1_2.sr`` changes CMD in the very sample
interval in which CLK rises, and only the value at the edge gives a correct CRC7.

Edges are found per block of samples with numpy (``flatnonzero`` on the clock's rising
transitions) with the previous sample carried across blocks, so memory stays bounded by
one block plus its edges.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sdmodel.capture.source import Capture
from sdmodel.capture.sr import SrCapture
from sdmodel.capture.vcd import VcdCapture, VcdSignal
from sdmodel.tokens import PS_PER_S

__all__ = ["EdgeBatch", "sample_edges", "edges_from_samples", "edges_from_changes"]

_VCD_BATCH = 1 << 20  # edges per batch from a VCD


@dataclass(frozen=True)
class EdgeBatch:
    times: np.ndarray  # int64 ps of each rising clock edge
    levels: np.ndarray  # uint8 [lines, edges]: level of each requested line at the edge
    frames: np.ndarray | None  # int64 [edges]: rises of the framing line (CS#) so far
    progress: float  # fraction of the capture read, 0..1

    def __len__(self) -> int:
        return int(self.times.size)


def sample_edges(
    capture: Capture, clock: int, lines: Sequence[int], framing: int | None = None
) -> Iterator[EdgeBatch]:
    """The edge batches of ``capture``: ``lines`` (channel indexes) sampled at every rising
    edge of channel ``clock``; ``framing`` counts rising edges of that channel (CS#)."""
    if isinstance(capture, SrCapture):
        return edges_from_samples(
            capture.chunks(), capture.samplerate, capture.total_samples, clock, lines, framing
        )
    if isinstance(capture, VcdCapture):
        return edges_from_changes(capture, clock, lines, framing)
    raise TypeError(f"not a capture: {capture!r}")


def _times(index: np.ndarray, samplerate: int) -> np.ndarray:
    """Sample index -> integer picoseconds (exact when the period is a whole ps)."""
    period, rest = divmod(PS_PER_S, samplerate)
    if rest == 0:
        return index.astype(np.int64) * period
    return np.rint(index.astype(np.float64) * (PS_PER_S / samplerate)).astype(np.int64)


def edges_from_samples(
    chunks: Iterator[np.ndarray],
    samplerate: int,
    total_samples: int,
    clock: int,
    lines: Sequence[int],
    framing: int | None = None,
) -> Iterator[EdgeBatch]:
    """Edge batches from blocks of samples (bit n of a sample = channel n)."""
    offset = 0
    last: int | None = None  # previous sample, carried across blocks
    rises_so_far = 0
    for block in chunks:
        n = block.size
        if n == 0:
            continue
        edges = _rising_in(block, clock, last)
        at = block[edges]
        levels = np.empty((len(lines), edges.size), dtype=np.uint8)
        for row, line in enumerate(lines):
            levels[row] = (at & block.dtype.type(1 << line)) != 0
        frames = None
        if framing is not None:
            rises = _rising_in(block, framing, last)
            # Rises strictly before each edge; an edge in the very sample CS# rises sees
            # CS# high and is not part of any session.
            frames = rises_so_far + np.searchsorted(rises, edges, side="left").astype(np.int64)
            rises_so_far += int(rises.size)
        times = _times(offset + edges, samplerate)
        offset += n
        last = int(block[-1])
        progress = min(1.0, offset / total_samples) if total_samples else 1.0
        yield EdgeBatch(times, levels, frames, progress)


def _rising_in(block: np.ndarray, bit: int, last: int | None) -> np.ndarray:
    """Indexes in ``block`` where channel ``bit`` goes from 0 to 1 (``last`` = the sample
    before the block; a capture that starts high has no edge at its first sample)."""
    high = (block & block.dtype.type(1 << bit)) != 0
    edges = np.flatnonzero(high[1:] > high[:-1]) + 1
    if high[0] and last is not None and not (last >> bit) & 1:
        edges = np.concatenate(([0], edges))
    return edges


def _vcd_rising(signal: VcdSignal) -> np.ndarray:
    v = signal.values
    if v.size == 0:
        return np.zeros(0, dtype=np.int64)
    up = np.flatnonzero((v[1:] == 1) & (v[:-1] == 0)) + 1
    return signal.times[up]


def _levels_at(signal: VcdSignal, times: np.ndarray) -> np.ndarray:
    """Level at each time (a change at that very time counts); before the first change a
    line reads 1 (pull-up)."""
    i = np.searchsorted(signal.times, times, side="right") - 1
    out = signal.values[np.maximum(i, 0)].astype(np.uint8) if signal.values.size else None
    if out is None:
        return np.ones(times.size, dtype=np.uint8)
    out[i < 0] = 1
    return out


def edges_from_changes(
    capture: VcdCapture, clock: int, lines: Sequence[int], framing: int | None = None
) -> Iterator[EdgeBatch]:
    """Edge batches from a VCD's change lists."""
    all_edges = _vcd_rising(capture.signals[clock])
    rises = _vcd_rising(capture.signals[framing]) if framing is not None else None
    total = all_edges.size
    for start in range(0, max(total, 1), _VCD_BATCH):
        times = all_edges[start:start + _VCD_BATCH]
        levels = np.vstack([_levels_at(capture.signals[k], times) for k in lines]) if len(
            lines
        ) else np.zeros((0, times.size), dtype=np.uint8)
        frames = (
            np.searchsorted(rises, times, side="left").astype(np.int64)
            if rises is not None
            else None
        )
        done = min(total, start + _VCD_BATCH)
        yield EdgeBatch(times, levels, frames, done / total if total else 1.0)
