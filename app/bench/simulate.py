"""``simulate``: card-data throughput of the whole simulation, with and without waveforms.

One run measures both: a 4-bit SD session (SDHCI driver, SDMA, CMD23 multi-block) writes
and reads back a block range on a sparse SDHC image, once at transaction level (tokens
only) and once rendering the exact edges of every bus token on every signal as it is
produced (what a live waveform view costs at most). Throughput is card data (read +
written bytes) per wall second, initialisation excluded; waveforms are rendered per
window of new tokens, exactly (no decimation), on all six lines. The write and the read are
also given apart at transaction level: every written block waits for its own storage job
(busy is released only once the block is in the file), a read is served by read-ahead
batches. The SD bus limits are printed beside it for scale: 25 MB/s at High Speed 4-bit,
104 MB/s at UHS-I SDR104.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from app.bench.base import Benchmark, Result
from sdmodel.tokens import Token
from sdmodel.trace import Trace
from sdmodel.waveform import SD_SIGNALS, is_bus_token

__all__ = ["BENCHMARK", "Throughput", "measure_throughput"]

HS_4BIT_MB_S = 25.0  # 50 MHz x 4 lines / 8 (§4.3.10)
SDR104_MB_S = 104.0  # UHS-I SDR104 (not modelled; the peer figure of issue 10)
IMAGE_BYTES = 4 * 1024**3  # SDHC
MIB = 1024 * 1024
BATCH_TOKENS = 256


class _WindowRenderer:
    """Renders the exact edges of every signal over each new stretch of the trace as it
    grows, in contiguous windows of at least ``BATCH_TOKENS`` bus tokens (what a live view
    does once per frame): every token is rendered once, on every line."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.rendered_to = trace.span()[1]
        self.pending = 0
        self.edges = 0

    def token_added(self, token: Token) -> None:
        if is_bus_token(token):
            self.pending += 1
            if self.pending >= BATCH_TOKENS:
                self.render()

    def render(self) -> None:
        end = self.trace.span()[1]
        if end > self.rendered_to:
            for signal in SD_SIGNALS:
                self.edges += len(self.trace.edges(signal, self.rendered_to, end))
        self.rendered_to, self.pending = end, 0


@dataclass(frozen=True)
class Throughput:
    """Wall seconds of the write and of the read of ``nbytes`` of card data each."""

    nbytes: int
    write_s: float
    read_s: float

    @property
    def mb_s(self) -> float:
        """MB/s (10^6 bytes per wall second) of card data, read + written."""
        return 2 * self.nbytes / (self.write_s + self.read_s) / 1e6

    @property
    def write_mb_s(self) -> float:
        return self.nbytes / self.write_s / 1e6

    @property
    def read_mb_s(self) -> float:
        return self.nbytes / self.read_s / 1e6


async def measure_throughput(image: Path, data_mib: float, *, waveforms: bool) -> Throughput:
    """Time a write, then a read back, of ``data_mib`` (each with its waveforms rendered)."""
    from sdmodel.sim.simulator import SimOptions, Simulator

    sim = Simulator(image, SimOptions(bus_width=4, trace_budget=8 * MIB))
    blocks = int(data_mib * MIB) // 512
    seconds: list[float] = []
    try:
        await sim.run("init")
        renderer = _WindowRenderer(sim.trace) if waveforms else None
        if renderer is not None:
            sim.trace.events.appended.connect(renderer.token_added)
        for statement in (f"write 0 {blocks} pattern=0x5A", f"read 0 {blocks}"):
            start = time.perf_counter()
            result = await sim.run(statement)
            if renderer is not None:
                renderer.render()  # the last partial window
            seconds.append(time.perf_counter() - start)
            if not result.ok:
                raise RuntimeError(f"benchmark workload failed: {result.errors}")
    finally:
        await sim.aclose()
    return Throughput(blocks * 512, *seconds)


def run(quick: bool) -> Result:
    data_mib = 0.25 if quick else 16
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        image = Path(tmp) / "card.img"
        with image.open("wb") as f:
            f.truncate(IMAGE_BYTES)
        transaction = asyncio.run(measure_throughput(image, data_mib, waveforms=False))
        waveform = asyncio.run(measure_throughput(image, data_mib, waveforms=True))
    return {
        "transaction_mb_s": round(transaction.mb_s, 2),
        "waveform_mb_s": round(waveform.mb_s, 2),
        # the two directions apart: every written block waits for its storage job
        "transaction_write_mb_s": round(transaction.write_mb_s, 2),
        "transaction_read_mb_s": round(transaction.read_mb_s, 2),
        "data_mib": data_mib,
        "hs_4bit_bus_mb_s": HS_4BIT_MB_S,
        "sdr104_bus_mb_s": SDR104_MB_S,
    }


BENCHMARK = Benchmark(
    name="simulate",
    summary="card data throughput of a 4-bit SD write+read, tokens only and with waveforms",
    metric="transaction_mb_s",
    run=run,
)
