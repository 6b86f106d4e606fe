"""`sdscope bench simulate`: card data through the whole model, write and read apart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.bench.simulate import IMAGE_BYTES, Throughput, measure_throughput

BLOCKS = 32


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "card.img"
    with path.open("wb") as f:
        f.truncate(IMAGE_BYTES)
    return path


@pytest.mark.parametrize("waveforms", [False, True], ids=["transaction", "waveform"])
def test_write_and_read_are_timed_apart_and_add_up(image: Path, waveforms: bool) -> None:
    result = asyncio.run(measure_throughput(image, BLOCKS * 512 / 2**20, waveforms=waveforms))
    assert result.nbytes == BLOCKS * 512
    assert result.write_s > 0 and result.read_s > 0
    assert result.mb_s == pytest.approx(2 * result.nbytes / (result.write_s + result.read_s)
                                        / 1e6)
    with image.open("rb") as card:  # the write really reached the image
        assert card.read(BLOCKS * 512) == b"\x5a" * BLOCKS * 512


def test_figures_are_megabytes_per_wall_second() -> None:
    result = Throughput(nbytes=2_000_000, write_s=2.0, read_s=0.5)
    assert (result.write_mb_s, result.read_mb_s, result.mb_s) == (1.0, 4.0, 1.6)
