"""``simulate``: card-data throughput of the whole simulation, with and without waveforms.

One run measures both: a 4-bit SD session (SDHCI driver, SDMA, CMD23 multi-block) writes
and reads back a block range on a sparse SDHC image, once at transaction level (tokens
only) and once rendering the exact edges of every bus token on every signal as it is
produced (what a live waveform view costs at most). Throughput is card data (read +
written bytes) per wall second, initialisation excluded; waveforms are rendered per
window of new tokens, exactly (no decimation), on all six lines. The SD bus limits are printed
beside it for scale: 25 MB/s at High Speed 4-bit, 104 MB/s at UHS-I SDR104.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from app.bench.base import Benchmark, Result
from sdmodel.tokens import Token
from sdmodel.trace import Trace
from sdmodel.waveform import SD_SIGNALS, is_bus_token

__all__ = ["BENCHMARK", "measure_throughput"]

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


async def measure_throughput(image: Path, data_mib: float, *, waveforms: bool) -> float:
    """MB/s (10^6 bytes per wall second) of card data for a write + read of ``data_mib``."""
    from sdmodel.sim.simulator import SimOptions, Simulator

    sim = Simulator(image, SimOptions(bus_width=4, trace_budget=8 * MIB))
    try:
        await sim.run("init")
        if waveforms:
            renderer = _WindowRenderer(sim.trace)
            sim.trace.events.appended.connect(renderer.token_added)
        blocks = int(data_mib * MIB) // 512
        start = time.perf_counter()
        result = await sim.run(f"write 0 {blocks} pattern=0x5A; read 0 {blocks}")
        if waveforms:
            renderer.render()  # the last partial window
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise RuntimeError(f"benchmark workload failed: {result.errors}")
    finally:
        await sim.aclose()
    return 2 * blocks * 512 / elapsed / 1e6


def run(quick: bool) -> Result:
    data_mib = 0.25 if quick else 16
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        image = Path(tmp) / "card.img"
        with image.open("wb") as f:
            f.truncate(IMAGE_BYTES)
        transaction = asyncio.run(measure_throughput(image, data_mib, waveforms=False))
        waveform = asyncio.run(measure_throughput(image, data_mib, waveforms=True))
    return {
        "transaction_mb_s": round(transaction, 2),
        "waveform_mb_s": round(waveform, 2),
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
