"""CRC7 and CRC16 of the SD protocol (Physical Layer spec §4.5).

CRC7: G(x) = x^7 + x^3 + 1, register starts at 0, MSB first.
CRC16: G(x) = x^16 + x^12 + x^5 + 1 (CRC-16/XMODEM), which is exactly
``binascii.crc_hqx(data, 0)`` for byte-aligned streams. In 4-bit mode each
DAT line carries its own CRC16 over its own bit stream (§3.6.1, §4.5).
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable

import numpy as np

__all__ = [
    "crc7",
    "crc7_bits",
    "crc16",
    "crc16_lanes",
    "crc16_bits",
    "split_lanes",
    "command_frame",
    "crc7_ok",
]


def _build_crc7_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        reg = 0
        for i in range(7, -1, -1):
            feedback = ((reg >> 6) & 1) ^ ((byte >> i) & 1)
            reg = (reg << 1) & 0x7F
            if feedback:
                reg ^= 0x09
        table.append(reg)
    return tuple(table)


_CRC7_TABLE = _build_crc7_table()


def crc7(data: bytes) -> int:
    """CRC7 over whole bytes, MSB first (§4.5). ``crc7(b"\\x40\\0\\0\\0\\0") == 0x4A``."""
    reg = 0
    for byte in data:
        # Shifting 8 bits through the 7-bit register: the table holds the
        # remainder of (reg<<1 ^ byte) for the top bits; see _build_crc7_table.
        reg = _CRC7_TABLE[((reg << 1) ^ byte) & 0xFF]
    return reg


def crc7_bits(bits: int, nbits: int) -> int:
    """CRC7 over the ``nbits`` low bits of ``bits``, MSB first (any bit count)."""
    reg = 0
    for i in range(nbits - 1, -1, -1):
        feedback = ((reg >> 6) & 1) ^ ((bits >> i) & 1)
        reg = (reg << 1) & 0x7F
        if feedback:
            reg ^= 0x09
    return reg


def crc7_ok(frame: bytes) -> bool:
    """True if the last byte of ``frame`` is ``crc7(rest) << 1 | 1``."""
    return len(frame) >= 2 and frame[-1] == ((crc7(frame[:-1]) << 1) | 1)


def command_frame(index: int, arg: int) -> bytes:
    """The 6-byte command token: ``0x40 | index``, argument, CRC7 and end bit (§4.7.2)."""
    head = bytes([0x40 | (index & 0x3F)]) + (arg & 0xFFFFFFFF).to_bytes(4, "big")
    return head + bytes([(crc7(head) << 1) | 1])


def crc16(data: bytes) -> int:
    """CRC16 of one serial stream (1-bit mode block, SPI data block)."""
    return binascii.crc_hqx(data, 0)


# 4-bit lanes of whole bytes, as one big integer. Each byte h3h2h1h0 l3l2l1l0 becomes
# h3l3 h2l2 h1l1 h0l0 (DATn's two bits side by side); a word of 4 such bytes is then a 4 x 4
# matrix of 2-bit cells (row = byte, column = line 3..0) and its transpose puts each line's
# 8 bits in one byte: DAT3 first. Two delta swaps transpose every word at once.
_PAIRS = bytes(sum(((b >> (n + 4) & 1) << 1 | (b >> n & 1)) << (2 * n) for n in range(4))
               for b in range(256))
_SWAPS = ((6, bytes.fromhex("00CC00CC")), (12, bytes.fromhex("0000F0F0")))  # shift, word mask
_swap_masks: dict[int, list[tuple[int, int]]] = {}


def _transposed_lanes(data: bytes) -> list[bytes]:
    """``split_lanes(data, 4)`` for a length that is a multiple of 4."""
    words = len(data) // 4
    swaps = _swap_masks.get(words)
    if swaps is None:
        swaps = _swap_masks[words] = [(d, int.from_bytes(m * words, "big")) for d, m in _SWAPS]
    x = int.from_bytes(data.translate(_PAIRS), "big")
    for shift, mask in swaps:
        t = ((x >> shift) ^ x) & mask
        x ^= t ^ (t << shift)
    out = x.to_bytes(len(data), "big")
    return [out[3::4], out[2::4], out[1::4], out[0::4]]


def split_lanes(data: bytes, width: int) -> list[bytes]:
    """The bit stream of each DAT line, packed MSB first, lane 0 = DAT0.

    4-bit mode sends each byte high nibble first: line DATn carries bit n+4,
    then bit n (§3.6.1). For 1-bit mode the one lane is the data itself.
    """
    if width == 1:
        return [bytes(data)]
    if width != 4:
        raise ValueError(f"bus width must be 1 or 4, not {width}")
    if len(data) % 4 == 0:
        return _transposed_lanes(bytes(data))
    bits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8)).reshape(-1, 8)
    # column c holds bit 7-c; DATn carries bit n+4 then bit n of every byte
    per_lane = bits[:, _LANE_COLUMNS].transpose(1, 0, 2).reshape(4, -1)
    return [row.tobytes() for row in np.packbits(per_lane, axis=1)]


_LANE_COLUMNS = np.array([[3 - n, 7 - n] for n in range(4)])


def crc16_lanes(data: bytes, width: int) -> list[int]:
    """CRC16 of each DAT line, index 0 = DAT0 (one value in 1-bit mode).

    A 4-bit block of n bytes puts 2n bits on each line; when n is not a multiple of 4
    (an odd CMD16 block length) a lane is not whole bytes and is CRCed bit by bit."""
    lanes = split_lanes(data, width)
    if width == 4 and len(data) % 4:
        return [crc16_bits(np.unpackbits(np.frombuffer(lane, np.uint8))[: 2 * len(data)])
                for lane in lanes]
    return [crc16(lane) for lane in lanes]


def crc16_bits(bits: Iterable[int]) -> int:
    """CRC16-CCITT (x^16 + x^12 + x^5 + 1, initial 0) of a bit stream, MSB first (§4.5)."""
    crc = 0
    for bit in bits:
        feedback = ((crc >> 15) ^ int(bit)) & 1
        crc = (crc << 1) & 0xFFFF
        if feedback:
            crc ^= 0x1021
    return crc
