"""A real, unmodified SPI driver against the simulated card: Adafruit's ``adafruit_sdcard``.

The driver talks to ``BlockingSpiCard`` through small ``busio``/``digitalio`` shims
(reference A.6 "What real SPI drivers rely on", Adafruit column): init in one CS# session
with CMD0, CMD8, CMD58/CMD55/ACMD41 polls, CMD9 and CMD16; CMD17/CMD18+CMD12 reads;
CMD24 and CMD25 writes with 0xFC blocks and 0xFD. The image file is checked with plain
``open()`` afterwards.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sdmodel import registers as regs
from sdmodel.spi import BlockingSpiCard

BLOCK = 512
MIB = 1024 * 1024


def _load_shims() -> ModuleType:
    # tests/ has no packages (importlib import mode): load the sibling module by path.
    spec = importlib.util.spec_from_file_location(
        "circuitpython_shims", Path(__file__).with_name("circuitpython_shims.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shims = _load_shims()


@dataclass(frozen=True)
class Image:
    kind: str
    size: int
    first_lba: int  # where the tests read and write (an SDHC address beyond 2**23 bytes)


IMAGES = [Image("SDSC", 64 * MIB, 3000), Image("SDHC", 4096 * MIB, 6_000_000)]


def pattern(lba: int, count: int, seed: int) -> bytes:
    return random.Random(seed * 1_000_003 + lba).randbytes(count * BLOCK)


@dataclass
class Session:
    image: Image
    path: Path
    bus: BlockingSpiCard
    sdcard: Any


@pytest.fixture(params=IMAGES, ids=lambda image: image.kind)
def session(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    image: Image = request.param
    path = tmp_path / f"{image.kind.lower()}.img"
    with open(path, "wb") as f:
        f.truncate(image.size)  # sparse
        f.seek(image.first_lba * BLOCK)
        f.write(pattern(image.first_lba, 128, seed=1))
    shims.install(monkeypatch)
    adafruit_sdcard = importlib.import_module("adafruit_sdcard")
    with BlockingSpiCard(path) as bus:
        sdcard = adafruit_sdcard.SDCard(shims.SPI(bus), shims.DigitalInOut(bus))
        yield Session(image, path, bus, sdcard)


def first_difference(a: bytes, b: bytes) -> int | None:
    """Offset of the first differing byte (a 64 MiB assertion diff would take seconds)."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)))


def adafruit_sector_count(csd: int) -> int:
    """What adafruit_sdcard computes from the CSD (reference A.6, "CSD decoding"): v2 reads
    only C_SIZE bits 15:0, v1 drops the two low bits of C_SIZE."""
    table = regs.csd_table(csd)
    c_size = table.field("C_SIZE").get(csd)
    if table is regs.CSD_V2:
        return ((c_size & 0xFFFF) + 1) * 1024
    block_len = 2 ** table.field("READ_BL_LEN").get(csd)
    mult = 2 ** (table.field("C_SIZE_MULT").get(csd) + 2)
    return block_len // BLOCK * mult * ((c_size & ~0b11) + 1)


def test_adafruit_initialises_and_sizes_the_card(session: Session) -> None:
    card = session.bus.card
    assert card.type.value == session.image.kind
    assert card.state.label == "tran"
    assert card.ccs is (session.image.kind == "SDHC")  # OCR byte 0 & 0x40 -> block addressing
    assert session.sdcard.count() == adafruit_sector_count(card.csd)
    if session.image.kind == "SDHC":
        assert session.sdcard.count() * BLOCK == session.image.size


def test_adafruit_reads_single_and_multiple_blocks(session: Session) -> None:
    first = session.image.first_lba
    expected = pattern(first, 128, seed=1)
    single = bytearray(BLOCK)
    for n in range(64):  # CMD17, one block per call
        assert session.sdcard.readblocks(first + n, single) == 0
        assert single == expected[n * BLOCK:(n + 1) * BLOCK]
    multi = bytearray(64 * BLOCK)  # CMD18 ... CMD12
    assert session.sdcard.readblocks(first + 64, multi) == 0
    assert multi == expected[64 * BLOCK:]


def test_adafruit_writes_land_in_the_image_byte_for_byte(session: Session) -> None:
    first = session.image.first_lba + 200
    data = pattern(first, 80, seed=2)
    for n in range(16):  # CMD24
        assert session.sdcard.writeblocks(first + n, data[n * BLOCK:(n + 1) * BLOCK]) == 0
    assert session.sdcard.writeblocks(first + 16, data[16 * BLOCK:]) == 0  # CMD25, 64 blocks
    readback = bytearray(len(data))
    assert session.sdcard.readblocks(first, readback) == 0
    assert readback == data
    session.bus.close()
    with open(session.path, "rb") as f:
        if session.image.kind == "SDSC":
            image = bytearray(session.image.size)
            start = session.image.first_lba * BLOCK
            image[start:start + 128 * BLOCK] = pattern(session.image.first_lba, 128, seed=1)
            image[first * BLOCK:first * BLOCK + len(data)] = data
            assert first_difference(f.read(), image) is None
        else:  # 4 GiB sparse: the written run, its neighbours and the untouched pattern
            f.seek((first - 8) * BLOCK)
            assert f.read((80 + 16) * BLOCK) == bytes(8 * BLOCK) + data + bytes(8 * BLOCK)
            f.seek(session.image.first_lba * BLOCK)
            assert f.read(128 * BLOCK) == pattern(session.image.first_lba, 128, seed=1)
        assert f.seek(0, 2) == session.image.size
