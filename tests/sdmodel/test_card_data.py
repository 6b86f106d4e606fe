"""Data transfer: addressing, ranges, block lengths, multi-block transfers and the CSD
capacity (Physical Layer spec §4.3.3, §4.3.4, §4.3.14, §5.3; reference §6.3, §9).

Every byte is compared with the image file read through plain ``open()``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.registers import CardStatus
from sdmodel.states import CardState
from sdmodel.tokens import CrcStatus

if TYPE_CHECKING:
    from conftest import CardHarness

S = CardState
BLOCK = 512
MIB = 1024 * 1024
GIB = 1024 * MIB


def bits(value: int, msb: int, lsb: int) -> int:
    return (value >> lsb) & ((1 << (msb - lsb + 1)) - 1)


def random_blocks(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(BLOCK) for _ in range(count)]


# --- addressing (§4.3.14) ----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "arg"), [("SDSC", 5 * BLOCK), ("SDHC", 5), ("SDXC", 5)],
                         ids=["sdsc_byte_address", "sdhc_block_address", "sdxc_block_address"])
async def test_cmd17_address_unit(kind: str, arg: int,
                                  make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    reply = h.cmd(17, arg)
    assert not reply.errors and h.card.state is S.DATA
    assert (await h.read()).data == h.file_blocks(5)
    assert h.card.state is S.TRAN  # data -> tran after the single block


async def test_sdsc_byte_address_inside_a_block(make_card: Callable[..., CardHarness]) -> None:
    h = make_card("SDSC")
    await h.to_state(S.TRAN)
    h.cmd(16, 100)
    h.cmd(17, 5 * BLOCK + 400)
    assert (await h.read()).data == h.file_blocks(5)[400:500]


async def test_sdsc_read_crossing_a_block_is_address_error(
        make_card: Callable[..., CardHarness]) -> None:
    """READ_BLK_MISALIGN = 0: a partial block may not cross a physical block."""
    h = make_card("SDSC")
    await h.to_state(S.TRAN)
    h.cmd(16, 100)
    reply = h.cmd(17, 450)
    assert reply.errors & CardStatus.ADDRESS_ERROR and reply.value & CardStatus.ADDRESS_ERROR
    assert h.card.state is S.TRAN and not (await h.card.read_block()).ok


@pytest.mark.parametrize("length", [1, 256, 511])
async def test_sdsc_write_with_a_short_block_length_is_block_len_error(
        length: int, make_card: Callable[..., CardHarness]) -> None:
    """WRITE_BL_PARTIAL = 0: writes need a block length of 512."""
    h = make_card("SDSC")
    await h.to_state(S.TRAN)
    h.cmd(16, length)
    for index in (24, 25):
        reply = h.cmd(index, 0)
        assert reply.errors & CardStatus.BLOCK_LEN_ERROR and h.card.state is S.TRAN


async def test_sdhc_ignores_cmd16_for_data(make_card: Callable[..., CardHarness]) -> None:
    """SDHC/SDXC blocks are 512 bytes whatever CMD16 says (it only sizes CMD42)."""
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    h.cmd(16, 100)
    h.cmd(17, 3)
    assert (await h.read()).data == h.file_blocks(3)


# --- ranges (§4.3.3; reference §9 OUT_OF_RANGE) ----------------------------------------------


@pytest.mark.parametrize("index", [17, 18, 24, 25])
async def test_transfer_starting_at_capacity_is_out_of_range(
        kind: str, index: int, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    end = h.card.capacity // BLOCK
    reply = h.cmd(index, h.addr(end))
    assert reply.errors & CardStatus.OUT_OF_RANGE and reply.resp.value == "R1"
    assert h.card.state is S.TRAN  # no data phase
    assert not (await h.card.read_block()).ok
    assert h.card.accept_block(bytes(BLOCK)) is None


async def test_the_last_block_is_readable(kind: str,
                                          make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    last = h.card.capacity // BLOCK - 1
    assert not h.cmd(17, h.addr(last)).errors
    assert (await h.read()).data == h.file_blocks(last) == bytes(BLOCK)


async def test_cmd18_past_the_end_stops_at_the_boundary(
        kind: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    first = h.card.capacity // BLOCK - 2
    assert not h.cmd(18, h.addr(first)).errors
    assert [(await h.read()).data for _ in range(2)] == [bytes(BLOCK)] * 2
    beyond = await h.read()
    assert beyond.data is None and beyond.error == "out_of_range"
    stop = h.cmd(12)
    assert stop.value & CardStatus.OUT_OF_RANGE  # type X: in the CMD12 response
    assert h.card.state is S.TRAN
    assert not h.cmd(13, h.rca_arg).value & CardStatus.OUT_OF_RANGE  # cleared


async def test_cmd18_stopped_before_the_end_has_no_error(
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card()
    await h.to_state(S.TRAN)
    h.cmd(18, 0)
    await h.read()
    assert h.cmd(13, h.rca_arg).value == 0xB00  # data, READY_FOR_DATA (real capture)
    assert h.cmd(12).value == 0xB00


# --- multiple blocks, byte-exact (§4.3.3, §4.3.4) ---------------------------------------------


async def test_multiple_block_write_then_read_is_byte_exact(
        kind: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    await h.to_state(S.TRAN)
    blocks = random_blocks(9, seed=len(kind))
    h.cmd(25, h.addr(10))
    for block in blocks:
        assert await h.write(block) is CrcStatus.ACCEPTED
        assert h.card.state is S.RCV
    h.cmd(12)
    await h.card.wait_ready()
    assert h.card.state is S.TRAN
    assert h.file_blocks(10, 9) == b"".join(blocks)
    h.cmd(18, h.addr(9))
    read = [(await h.read()).data for _ in range(11)]
    h.cmd(12)
    assert b"".join(block or b"" for block in read) == h.file_blocks(9, 11)


async def test_read_ahead_delivers_a_long_read_in_order(
        make_card: Callable[..., CardHarness]) -> None:
    """The read-ahead batches grow to 64 KiB; the blocks still come in address order."""
    h = make_card("SDHC")
    await h.to_state(S.TRAN)
    h.cmd(18, 0)
    data = b"".join([(await h.read()).data or b"" for _ in range(300)])
    h.cmd(12)
    assert data == h.file_blocks(0, 300)


async def test_write_crc_error_discards_the_block_and_ignores_the_rest(
        make_card: Callable[..., CardHarness]) -> None:
    """§4.3.4: CRC status 101, the block is not written and every further block of the
    write is ignored (no CRC status); the host must send CMD12."""
    h = make_card()
    await h.to_state(S.TRAN)
    before = h.file_blocks(0, 3)
    h.cmd(25, 0)
    assert await h.write(b"\xA1" * BLOCK) is CrcStatus.ACCEPTED
    assert await h.write(b"\xA2" * BLOCK, crc_ok=False) is CrcStatus.CRC_ERROR
    assert int(CrcStatus.CRC_ERROR) == 0b101
    assert await h.write(b"\xA3" * BLOCK) is None
    h.cmd(12)
    await h.card.wait_ready()
    assert h.card.state is S.TRAN
    assert h.file_blocks(0, 3) == b"\xA1" * BLOCK + before[BLOCK:]
    h.acmd(22)
    assert (await h.read()).data == (1).to_bytes(4, "big")


# --- capacity (§5.3; reference §6.3 "Choosing the CSD") ------------------------------------


def csd_capacity(csd: int) -> int:
    """Capacity by the reference's formulas (v1: C_SIZE, C_SIZE_MULT, READ_BL_LEN)."""
    if bits(csd, 127, 126) == 1:
        return (bits(csd, 69, 48) + 1) * 512 * 1024
    return (bits(csd, 73, 62) + 1) << (bits(csd, 49, 47) + 2 + bits(csd, 83, 80))


async def test_csd_capacity_and_ocr_ccs_match_the_image(
        kind: str, make_card: Callable[..., CardHarness]) -> None:
    h = make_card(kind)
    ocr = h.init().value
    assert bits(ocr, 31, 31) == 1 and bits(ocr, 30, 30) == (kind != "SDSC")  # CCS
    h.cmd(2)
    h.cmd(3)
    csd = h.cmd(9, h.rca_arg).value
    size = h.path.stat().st_size
    assert csd_capacity(csd) == h.card.capacity == size
    assert bits(csd, 127, 126) == (0 if kind == "SDSC" else 1)
    if kind == "SDXC":
        assert bits(csd, 69, 48) >= 0xFFFF  # Linux flags SDXC from C_SIZE 0xFFFF on
    elif kind == "SDHC":
        assert 0x1010 <= bits(csd, 69, 48) < 0xFFFF


@pytest.mark.parametrize(
    ("size", "c_size", "mult", "bl_len", "exposed"),
    [(1 * GIB, 4095, 7, 9, 1 * GIB),
     (2 * GIB, 4095, 7, 10, 2 * GIB),
     (100_000_256, 3050, 4, 9, 99_975_168),  # the tail is not addressable
     (4 * GIB + 256 * 1024, None, None, None, 4 * GIB)],  # v2: below 512 KiB is cut
    ids=["sdsc_1gib", "sdsc_2gib", "sdsc_odd_size", "sdhc_odd_size"],
)
async def test_csd_geometry_of_the_reference_examples(
        size: int, c_size: int | None, mult: int | None, bl_len: int | None, exposed: int,
        make_card: Callable[..., CardHarness]) -> None:
    h = make_card(size=size)
    await h.to_state(S.STBY)
    csd = h.cmd(9, h.rca_arg).value
    if c_size is not None:
        assert (bits(csd, 73, 62), bits(csd, 49, 47), bits(csd, 83, 80)) == (c_size, mult,
                                                                             bl_len)
    assert csd_capacity(csd) == h.card.capacity == exposed
    h.cmd(7, h.rca_arg)
    last = exposed // BLOCK - 1
    assert not h.cmd(17, h.addr(last)).errors
    await h.read()
    assert h.cmd(17, h.addr(last + 1)).errors & CardStatus.OUT_OF_RANGE
