"""CRC7 and CRC16 against the spec's vectors (Physical Layer spec §4.5; reference §3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdmodel.crc import (
    command_frame,
    crc7,
    crc7_bits,
    crc7_ok,
    crc16,
    crc16_bits,
    crc16_lanes,
    split_lanes,
)


@pytest.mark.parametrize(
    ("index", "arg", "frame"),
    [
        (0, 0, "40 00 00 00 00 95"),
        (8, 0x000001AA, "48 00 00 01 AA 87"),
        (17, 0, "51 00 00 00 00 55"),
        (55, 0, "77 00 00 00 00 65"),
        (41, 0, "69 00 00 00 00 E5"),
        (41, 0x40300000, "69 40 30 00 00 AB"),
        (41, 0x51300000, "69 51 30 00 00 CD"),
        (41, 0x40000000, "69 40 00 00 00 77"),
        (41, 0x40FF8000, "69 40 FF 80 00 17"),
        (2, 0, "42 00 00 00 00 4D"),
        (3, 0, "43 00 00 00 00 21"),
        (6, 0x00FFFFF0, "46 00 FF FF F0 0D"),
        (6, 0x80FFFFF1, "46 80 FF FF F1 29"),
        (12, 0, "4C 00 00 00 00 61"),
        (18, 0, "52 00 00 00 00 E1"),
        (24, 0, "58 00 00 00 00 6F"),
        (16, 512, "50 00 00 02 00 15"),
        (1, 0, "41 00 00 00 00 F9"),
        (58, 0, "7A 00 00 00 00 FD"),
        (59, 1, "7B 00 00 00 01 83"),
    ],
)
def test_command_frames_match_the_spec_vectors(index: int, arg: int, frame: str) -> None:
    assert command_frame(index, arg) == bytes.fromhex(frame)
    assert crc7_ok(bytes.fromhex(frame))


@pytest.mark.parametrize(
    ("response", "ok"),
    [
        ("08 00 00 01 AA 13", True),  # real R7 (card reader capture)
        ("03 B3 68 05 00 19", True),  # real R6
        ("3F 00 FF 80 00 FF", False),  # R3 carries all ones, not a CRC (§4.9.3)
    ],
)
def test_real_responses_crc7(response: str, ok: bool) -> None:
    assert crc7_ok(bytes.fromhex(response)) is ok


def test_register_crc7_of_the_real_cid_is_0x3a() -> None:
    cid = bytes.fromhex("09 41 50 41 46 53 44 49 10 26 78 06 7B 00 87 75")
    assert crc7(cid[:15]) == 0x3A == cid[15] >> 1


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"\xff" * 512, 0x7FA1),
        (b"\x00" * 512, 0x0000),
        (b"Sigrok rocks" + bytes(500), 0x291D),  # real SPI read
        (bytes.fromhex("00 5E 00 32 5F 59 83 D2 ED B7 7F 8F 96 40 00 F7"), 0xFFEA),  # real CSD
    ],
)
def test_crc16_vectors(data: bytes, crc: int) -> None:
    assert crc16(data) == crc
    assert crc16_lanes(data, 1) == [crc]


@pytest.mark.parametrize(
    ("data", "dat0", "dat1", "dat2", "dat3"),
    [
        (b"\xff" * 512, 0xEDA9, 0xEDA9, 0xEDA9, 0xEDA9),
        (bytes(range(256)) * 2, 0x6AA3, 0xA97D, 0x10B5, 0x7357),
    ],
)
def test_four_bit_mode_has_one_crc16_per_line(
    data: bytes, dat0: int, dat1: int, dat2: int, dat3: int
) -> None:
    assert crc16_lanes(data, 4) == [dat0, dat1, dat2, dat3]


def test_byte_a5_puts_high_nibble_first_on_the_four_lines() -> None:
    # 0xA5 = 1010 0101: clock 1 carries bits 7..4, clock 2 bits 3..0 (reference §3).
    lanes = split_lanes(b"\xa5", 4)
    first_two_bits = [lane[0] >> 6 for lane in lanes]  # DAT0..DAT3
    assert first_two_bits == [0b01, 0b10, 0b01, 0b10]


@given(st.binary(min_size=1, max_size=64))
def test_a_frame_followed_by_its_crc_leaves_zero_remainder(data: bytes) -> None:
    bits = int.from_bytes(data, "big")
    crc = crc7_bits(bits, len(data) * 8)
    assert crc7_bits(bits << 7 | crc, len(data) * 8 + 7) == 0
    assert crc7(data) == crc
    assert crc16(data + crc16(data).to_bytes(2, "big")) == 0


@given(st.binary(max_size=1100))
def test_each_4bit_lane_carries_bit_n_plus_4_then_bit_n_of_every_byte(data: bytes) -> None:
    """§3.6.1, for whole-word lengths (one pass over the block) and any other length."""
    for line, lane in enumerate(split_lanes(data, 4)):
        bits = [(byte >> shift) & 1 for byte in data for shift in (line + 4, line)]
        padded = bits + [0] * (-len(bits) % 8)
        assert lane == bytes(int("".join(map(str, padded[i:i + 8])), 2)
                             for i in range(0, len(padded), 8))


def test_bus_width_other_than_1_or_4_is_refused() -> None:
    with pytest.raises(ValueError, match="bus width"):
        split_lanes(b"\x00", 8)


def test_4bit_crc_of_a_block_not_a_multiple_of_4_bytes_is_bit_serial_per_line() -> None:
    # 3 bytes put 6 bits on each line: the CRC covers those 6 bits, not a padded byte
    data = bytes([0xA5, 0x3C, 0x77])
    for line, crc in enumerate(crc16_lanes(data, 4)):
        bits = [(byte >> shift) & 1 for byte in data for shift in (line + 4, line)]
        assert crc == crc16_bits(bits)
    assert crc16_lanes(data, 4)[0] == 0xA35A


def test_crc16_bits_agrees_with_the_bytewise_crc() -> None:
    data = b"Sigrok rocks" + bytes(500)
    bits = [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]
    assert crc16_bits(bits) == crc16(data) == 0x291D
