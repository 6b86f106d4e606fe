"""Helpers the streaming decoders share: a reorder queue and the edge buffer.

Decoders walk several lines (CMD and DAT, or the SPI byte stream) with their own
cursors and sometimes learn about a token only after passing it (a missing response is
known at the next event, a busy period at its end). ``TokenQueue`` holds tokens until
every cursor has passed their start, so the output is in start-time order.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from sdmodel.decode.edges import EdgeBatch
from sdmodel.tokens import Token

__all__ = ["TokenQueue", "EdgeBuffer"]


class TokenQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Token]] = []
        self._seq = itertools.count()

    def push(self, token: Token) -> None:
        heapq.heappush(self._heap, (token.start, next(self._seq), token))

    def pop_before(self, frontier: int | None) -> list[Token]:
        """Tokens starting before ``frontier`` ps (all of them for None), in order."""
        out = []
        while self._heap and (frontier is None or self._heap[0][0] < frontier):
            out.append(heapq.heappop(self._heap)[2])
        return out


class EdgeBuffer:
    """A sliding window over the edge stream, addressed by absolute edge index.

    ``levels[r]`` is line ``r`` at each edge. ``falls(r)`` lists (absolute) edges where
    line r is 0 and was 1 at the edge before: every SD token starts with such a 1 -> 0
    transition because the lines idle high between tokens (§4.12 timing diagrams).
    """

    def __init__(self, nlines: int) -> None:
        self.base = 0  # absolute index of element 0
        self.times = np.zeros(0, dtype=np.int64)
        self.levels = np.zeros((nlines, 0), dtype=np.uint8)
        self._falls: dict[int, np.ndarray] = {}
        self._rises: dict[int, np.ndarray] = {}
        self._first_prev = np.ones(nlines, dtype=np.uint8)  # level before element 0

    @property
    def end(self) -> int:
        """Absolute index one past the last edge held."""
        return self.base + int(self.times.size)

    def append(self, batch: EdgeBatch) -> None:
        if not len(batch):
            return
        self.times = np.concatenate((self.times, batch.times))
        self.levels = np.concatenate((self.levels, batch.levels), axis=1)
        self._falls.clear()
        self._rises.clear()

    def trim(self, keep_from: int) -> None:
        """Drop edges before absolute index ``keep_from``."""
        cut = min(max(0, keep_from - self.base), int(self.times.size))
        if cut == 0:
            return
        self._first_prev = self.levels[:, cut - 1].copy()
        self.times = self.times[cut:]
        self.levels = self.levels[:, cut:]
        self.base += cut
        self._falls.clear()
        self._rises.clear()

    def time(self, index: int) -> int:
        """Time of absolute edge ``index`` (clamped to the edges held)."""
        n = int(self.times.size)
        if n == 0:
            return 0
        return int(self.times[min(max(index - self.base, 0), n - 1)])

    def period(self, first: int, last: int) -> int:
        """Mean clock period between two absolute edges (0 if unknown)."""
        a, b = max(first - self.base, 0), min(last - self.base, int(self.times.size) - 1)
        if b > a:
            return int(self.times[b] - self.times[a]) // (b - a)
        if self.times.size > 1:
            return int(self.times[-1] - self.times[0]) // (self.times.size - 1)
        return 0

    def span(self, first: int, nbits: int) -> tuple[int, int, int]:
        """(start ps, end ps, period ps) of ``nbits`` bits starting at edge ``first``."""
        last = min(first + nbits - 1, self.end - 1)
        period = self.period(first, last)
        return self.time(first), self.time(last) + period, period

    def bits(self, line: int, first: int, nbits: int) -> np.ndarray:
        a = first - self.base
        return self.levels[line, a:a + nbits]

    def level(self, line: int, index: int) -> int:
        return int(self.levels[line, index - self.base])

    def _transitions(self, line: int, falling: bool) -> np.ndarray:
        cache = self._falls if falling else self._rises
        found = cache.get(line)
        if found is None:
            row = self.levels[line]
            prev = np.empty_like(row)
            if row.size:
                prev[0] = self._first_prev[line]
                prev[1:] = row[:-1]
            found = np.flatnonzero(row < prev if falling else row > prev) + self.base
            cache[line] = found
        return found

    def next_fall(self, line: int, start: int, stop: int | None = None) -> int | None:
        """First absolute edge >= start (and < stop) where ``line`` falls from 1 to 0."""
        return self._next(self._transitions(line, True), start, stop)

    def next_rise(self, line: int, start: int, stop: int | None = None) -> int | None:
        """First absolute edge >= start (and < stop) where ``line`` rises from 0 to 1."""
        return self._next(self._transitions(line, False), start, stop)

    @staticmethod
    def _next(found: np.ndarray, start: int, stop: int | None) -> int | None:
        i = int(np.searchsorted(found, start, side="left"))
        if i >= found.size:
            return None
        value = int(found[i])
        return value if stop is None or value < stop else None
