"""``image-open``: how long ``Storage.open`` + ``close`` take on a 64 GiB (sparse) image.

Opening must not read the image, so the time should not depend on its size.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from app.bench.base import Benchmark, Result
from sdmodel.images import create_image

__all__ = ["BENCHMARK", "IMAGE_SIZE"]

IMAGE_SIZE = 64 * 1024**3


def run(quick: bool) -> Result:
    from sdmodel.storage import Storage

    runs = 5 if quick else 25
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sdscope-bench-") as tmp:
        path = create_image(Path(tmp) / "card-64g.img", IMAGE_SIZE)
        for _ in range(runs):
            start = time.perf_counter()
            storage = Storage.open(path)
            storage.close()
            times.append(time.perf_counter() - start)
    return {
        "ms": round(statistics.median(times) * 1000.0, 3),
        "max_ms": round(max(times) * 1000.0, 3),
        "runs": runs,
        "image_bytes": IMAGE_SIZE,
    }


BENCHMARK = Benchmark(
    name="image-open",
    summary="Storage.open + close of a 64 GiB sparse image, median",
    metric="ms",
    run=run,
    digits=3,
)
