"""Bit values of the SDHCI registers and the encoders shared by controller and driver.

SD Host Controller Simplified Specification v3.00 (HCS) chapter 2; values as in Linux
``drivers/mmc/host/sdhci.h`` (reference Part B.2). The field table that explains these
bits to a user is :mod:`sdmodel.sdhci.registers`.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from sdmodel.clock import PS_PER_S

__all__ = [
    "NormalInt",
    "ErrorInt",
    "PresentState",
    "TransferMode",
    "SoftwareReset",
    "HostControl",
    "PowerControl",
    "ClockControl",
    "AutoCmdError",
    "RespSelect",
    "CmdType",
    "make_command",
    "make_block_size",
    "clock_divider",
    "sd_clock_hz",
    "data_timeout_ps",
    "INT_NORMAL_MASK",
    "SPEC_VERSION_300",
    "MAX_DIVIDER",
    "MAX_TIMEOUT_COUNT",
]

SPEC_VERSION_300 = 2  # Host Controller Version [7:0]: 0 = 1.00, 1 = 2.00, 2 = 3.00
MAX_DIVIDER = 0x3FF  # 10-bit SDCLK divider N (v3 divided clock mode)
MAX_TIMEOUT_COUNT = 0xE  # Timeout Control [3:0] = 0xF is reserved (HCS 2.2.15)


class NormalInt(IntFlag):
    """Normal Interrupt Status / Status Enable / Signal Enable, 0x30/0x34/0x38 (B.2)."""

    CMD_COMPLETE = 1 << 0
    XFER_COMPLETE = 1 << 1
    BLOCK_GAP = 1 << 2
    DMA_INT = 1 << 3
    BUF_WR_READY = 1 << 4
    BUF_RD_READY = 1 << 5
    CARD_INSERT = 1 << 6
    CARD_REMOVE = 1 << 7
    CARD_INT = 1 << 8
    ERROR = 1 << 15  # summary of 0x32; read-only, never enabled or signalled itself


INT_NORMAL_MASK = 0x7FFF  # the normal bits that latch and signal by themselves (B.3.4)


class ErrorInt(IntFlag):
    """Error Interrupt Status / Status Enable / Signal Enable, 0x32/0x36/0x3A (B.2)."""

    CMD_TIMEOUT = 1 << 0
    CMD_CRC = 1 << 1
    CMD_END_BIT = 1 << 2
    CMD_INDEX = 1 << 3
    DATA_TIMEOUT = 1 << 4
    DATA_CRC = 1 << 5
    DATA_END_BIT = 1 << 6
    CURRENT_LIMIT = 1 << 7
    AUTO_CMD = 1 << 8
    ADMA = 1 << 9


class PresentState(IntFlag):
    """Present State 0x24 (B.2)."""

    CMD_INHIBIT = 1 << 0
    DAT_INHIBIT = 1 << 1
    DAT_ACTIVE = 1 << 2
    WRITE_ACTIVE = 1 << 8
    READ_ACTIVE = 1 << 9
    BUF_WR_ENABLE = 1 << 10
    BUF_RD_ENABLE = 1 << 11
    CARD_INSERTED = 1 << 16
    CARD_STABLE = 1 << 17
    CARD_DETECT = 1 << 18
    WRITE_PROTECT = 1 << 19  # the WP pin level: 1 = NOT protected
    DAT0_LEVEL = 1 << 20  # DAT[3:0] levels in 23:20; DAT0 low = busy
    DAT1_LEVEL = 1 << 21
    DAT2_LEVEL = 1 << 22
    DAT3_LEVEL = 1 << 23
    CMD_LEVEL = 1 << 24


class TransferMode(IntFlag):
    """Transfer Mode 0x0C (B.2)."""

    DMA = 1 << 0
    BLOCK_COUNT_ENABLE = 1 << 1
    AUTO_CMD12 = 1 << 2
    AUTO_CMD23 = 2 << 2
    READ = 1 << 4
    MULTI = 1 << 5


class SoftwareReset(IntFlag):
    """Software Reset 0x2F (B.2)."""

    ALL = 1
    CMD = 2
    DATA = 4


class HostControl(IntFlag):
    """Host Control 1 0x28 (B.2)."""

    LED = 1 << 0
    BUS_4BIT = 1 << 1
    HIGH_SPEED = 1 << 2
    DMA_SELECT = 0b11 << 3  # 00 SDMA, 10 32-bit ADMA2, 11 64-bit ADMA2
    BUS_8BIT = 1 << 5
    CD_TEST_LEVEL = 1 << 6
    CD_SIGNAL_SELECT = 1 << 7  # 1: card detect follows CD_TEST_LEVEL instead of the pin


class PowerControl(IntFlag):
    """Power Control 0x29 (B.2): bus power and the VDD1 voltage code in 3:1."""

    ON = 1 << 0
    VDD_33 = 0b111 << 1
    VDD_30 = 0b110 << 1
    VDD_18 = 0b101 << 1


class ClockControl(IntFlag):
    """Clock Control 0x2C (B.2): divider N = {7:6, 15:8}, SDCLK = base / 2N (N = 0: base)."""

    INT_EN = 1 << 0
    INT_STABLE = 1 << 1
    CARD_EN = 1 << 2
    DIVIDER_HI = 0b11 << 6
    DIVIDER = 0xFF << 8


class AutoCmdError(IntFlag):
    """Auto CMD Error Status 0x3C (B.2); any of them sets ErrorInt.AUTO_CMD."""

    NOT_EXECUTED = 1 << 0
    TIMEOUT = 1 << 1
    CRC = 1 << 2
    END_BIT = 1 << 3
    INDEX = 1 << 4
    NOT_ISSUED = 1 << 7  # command not issued by an Auto CMD12 error


class RespSelect(IntEnum):
    """Command register bits 1:0, Response Type Select."""

    NONE = 0
    R136 = 1
    R48 = 2
    R48_BUSY = 3


class CmdType(IntEnum):
    """Command register bits 7:6."""

    NORMAL = 0
    SUSPEND = 1
    RESUME = 2
    ABORT = 3


def make_command(index: int, resp: RespSelect, *, data: bool = False, crc_check: bool = False,
                 index_check: bool = False, cmd_type: int = 0) -> int:
    """The 16-bit value of the Command register 0x0E (Linux ``SDHCI_MAKE_CMD``).

    ``make_command(17, RespSelect.R48, data=True, crc_check=True, index_check=True)``
    is 0x113A, as Linux writes it for CMD17.
    """
    if not 0 <= index <= 63:
        raise ValueError(f"command index must be 0..63, not {index}")
    if not 0 <= cmd_type <= 3:
        raise ValueError(f"command type must be 0..3, not {cmd_type}")
    return (index << 8 | cmd_type << 6 | int(data) << 5 | int(index_check) << 4
            | int(crc_check) << 3 | int(RespSelect(resp)))


def make_block_size(block_size: int, boundary: int = 7) -> int:
    """Block Size 0x04: bytes in 11:0, SDMA buffer boundary 4 KiB << ``boundary`` in 14:12
    (Linux ``SDHCI_MAKE_BLKSZ``; it always uses boundary 7 = 512 KiB)."""
    if not 1 <= block_size <= 0xFFF:
        raise ValueError(f"block size must be 1..4095 bytes, not {block_size}")
    if not 0 <= boundary <= 7:
        raise ValueError(f"SDMA boundary code must be 0..7, not {boundary}")
    return boundary << 12 | block_size


def clock_divider(n: int) -> int:
    """The Clock Control bits that select divider N (SDCLK = base / 2N; 0 = base)."""
    if not 0 <= n <= MAX_DIVIDER:
        raise ValueError(f"clock divider N must be 0..{MAX_DIVIDER}, not {n}")
    return (n & 0xFF) << 8 | (n >> 8) << 6


def sd_clock_hz(clock_control: int, base_clock_hz: int) -> float:
    """SDCLK frequency for a Clock Control value in v3 divided clock mode (B.2)."""
    n = (clock_control >> 8 & 0xFF) | (clock_control >> 6 & 0b11) << 8
    return base_clock_hz / (2 * n) if n else float(base_clock_hz)


def data_timeout_ps(timeout_control: int, timeout_clock_hz: int) -> int:
    """Data timeout TMCLK x 2^(13 + n), n = Timeout Control [3:0], in picoseconds
    (HCS 2.2.15). The reserved code 0xF counts as 0xE, the longest defined timeout."""
    n = min(timeout_control & 0xF, MAX_TIMEOUT_COUNT)
    return -(-(PS_PER_S << (13 + n)) // timeout_clock_hz)
