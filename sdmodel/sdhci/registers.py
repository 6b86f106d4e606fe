"""The SDHCI standard register set as a declarative table (HCS v3.00 chapter 2; reference
Part B.1 register map, B.2 field definitions).

One :class:`SdhciRegister` per register: offset, width in bytes, access, meaning, HCS
section and its :class:`RegField` rows (bits relative to the register's own bit 0). The
controller derives its write masks from the field access types, the GUI's register view
and the lessons explain values with ``explain``. Bits without a field are reserved: they
read 0 and ignore writes. Only what a v3.00 controller without UHS-I, ADMA or shared-bus
support defines is listed.

The bit values (IntFlags) and the command/clock/timeout encoders live in
:mod:`sdmodel.sdhci.flags` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum
from types import MappingProxyType

from sdmodel.bitfield import BitRange
from sdmodel.sdhci.flags import (
    INT_NORMAL_MASK,
    MAX_DIVIDER,
    MAX_TIMEOUT_COUNT,
    SPEC_VERSION_300,
    AutoCmdError,
    ClockControl,
    CmdType,
    ErrorInt,
    HostControl,
    NormalInt,
    PowerControl,
    PresentState,
    RespSelect,
    SoftwareReset,
    TransferMode,
    clock_divider,
    data_timeout_ps,
    make_block_size,
    make_command,
    sd_clock_hz,
)

__all__ = [
    "Access",
    "RegField",
    "SdhciRegister",
    "REGISTERS",
    "REG",
    "Offset",
    "register_at",
    "capabilities_value",
    # re-exported from sdmodel.sdhci.flags: the bit values belong with the table
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


class Access(StrEnum):
    """Access types, legend of reference B.1."""

    RW = "RW"  # read/write
    RO = "RO"  # read-only
    ROC = "ROC"  # read-only, set and cleared by the hardware
    RW1C = "RW1C"  # write 1 to clear
    RWAC = "RWAC"  # write, cleared by the hardware when done
    WO = "WO"  # write-only, reads 0
    HWINIT = "HWInit"  # fixed by the implementation at reset


@dataclass(frozen=True)
class RegField(BitRange):
    """Bits ``msb``..``lsb`` of a register (relative to the register's bit 0)."""

    name: str
    msb: int
    lsb: int
    access: Access
    meaning: str
    values: Mapping[int, str] | None = dataclasses.field(default=None, hash=False)

    def __post_init__(self) -> None:
        self._validate()

    def describe(self, value: int) -> str:
        if self.values is not None and value in self.values:
            return self.values[value]
        if self.width == 1:
            return "set" if value else "clear"
        return f"0x{value:0{(self.width + 3) // 4}X}"


@dataclass(frozen=True)
class SdhciRegister:
    """One register: ``width`` bytes at ``offset``; fields listed from the LSB up."""

    name: str
    offset: int
    width: int
    access: Access
    meaning: str
    section: str
    fields: tuple[RegField, ...]

    def __post_init__(self) -> None:
        used = 0
        for f in self.fields:
            if f.msb >= self.width * 8 or used & f.mask:
                raise ValueError(f"register {self.name}: field {f.name} overlaps or leaves it")
            used |= f.mask

    @property
    def end(self) -> int:
        return self.offset + self.width

    def mask_of(self, *access: Access) -> int:
        """Bits of the fields with one of the given access types."""
        return functools.reduce(lambda acc, f: acc | f.mask,
                                (f for f in self.fields if f.access in access), 0)

    def field(self, name: str) -> RegField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    def explain(self, value: int) -> list[tuple[RegField, int, str]]:
        """Each field with its value in ``value`` and that value as text."""
        if not 0 <= value < 1 << (8 * self.width):
            raise ValueError(f"{self.name} is {8 * self.width} bits; {value:#x} does not fit")
        return [(f, f.get(value), f.describe(f.get(value))) for f in self.fields]


class Offset(IntEnum):
    """Register offsets (B.1; Linux ``SDHCI_*``)."""

    DMA_ADDRESS = 0x00
    BLOCK_SIZE = 0x04
    BLOCK_COUNT = 0x06
    ARGUMENT = 0x08
    TRANSFER_MODE = 0x0C
    COMMAND = 0x0E
    RESPONSE = 0x10
    BUFFER = 0x20
    PRESENT_STATE = 0x24
    HOST_CONTROL = 0x28
    POWER_CONTROL = 0x29
    BLOCK_GAP_CONTROL = 0x2A
    WAKE_UP_CONTROL = 0x2B
    CLOCK_CONTROL = 0x2C
    TIMEOUT_CONTROL = 0x2E
    SOFTWARE_RESET = 0x2F
    INT_STATUS = 0x30
    ERR_INT_STATUS = 0x32
    INT_ENABLE = 0x34
    ERR_INT_ENABLE = 0x36
    SIGNAL_ENABLE = 0x38
    ERR_SIGNAL_ENABLE = 0x3A
    AUTO_CMD_STATUS = 0x3C
    HOST_CONTROL2 = 0x3E
    CAPABILITIES = 0x40
    CAPABILITIES_1 = 0x44
    MAX_CURRENT = 0x48
    SET_ACMD12_ERROR = 0x50
    SET_INT_ERROR = 0x52
    ADMA_ERROR = 0x54
    ADMA_ADDRESS = 0x58
    SLOT_INT_STATUS = 0xFC
    HOST_VERSION = 0xFE


# --------------------------------------------------------------------------- field helpers

A = Access


def _bit(name: str, bit: int, access: Access, meaning: str) -> RegField:
    return RegField(name, bit, bit, access, meaning)


def _flag_fields(flags: Iterable[tuple[IntFlag, str]], access: Access) -> tuple[RegField, ...]:
    """One field per IntFlag member (single- or multi-bit), named after the member."""
    out = []
    for flag, meaning in flags:
        value = int(flag)
        lsb = (value & -value).bit_length() - 1
        out.append(RegField(str(flag.name), value.bit_length() - 1, lsb, access, meaning))
    return tuple(out)


# HCS 2.2.17 / 2.2.18: the interrupt bits, shared by status, status enable, signal enable.
_NORMAL_BITS: tuple[tuple[NormalInt, str], ...] = (
    (NormalInt.CMD_COMPLETE, "response received (no response: command sent)"),
    (NormalInt.XFER_COMPLETE, "data transfer or R1b busy finished"),
    (NormalInt.BLOCK_GAP, "transfer stopped at a block gap"),
    (NormalInt.DMA_INT, "SDMA paused at a buffer boundary"),
    (NormalInt.BUF_WR_READY, "buffer can take one block (PIO write)"),
    (NormalInt.BUF_RD_READY, "one block readable in the buffer (PIO read)"),
    (NormalInt.CARD_INSERT, "card inserted"),
    (NormalInt.CARD_REMOVE, "card removed"),
)
_CARD_INT = (NormalInt.CARD_INT, "card interrupt (SDIO; a memory card never raises it)")
_ERROR_BITS: tuple[tuple[ErrorInt, str], ...] = (
    (ErrorInt.CMD_TIMEOUT, "no response within 64 clocks"),
    (ErrorInt.CMD_CRC, "response CRC7 wrong"),
    (ErrorInt.CMD_END_BIT, "response end bit 0 (or wrong response length)"),
    (ErrorInt.CMD_INDEX, "response index differs from the command index"),
    (ErrorInt.DATA_TIMEOUT, "no data start bit / CRC status / busy end within the timeout"),
    (ErrorInt.DATA_CRC, "read block CRC16 wrong or write CRC status not 'accepted'"),
    (ErrorInt.DATA_END_BIT, "data end bit 0"),
    (ErrorInt.CURRENT_LIMIT, "bus power current limit exceeded"),
    (ErrorInt.AUTO_CMD, "Auto CMD12/CMD23 failed, see 0x3C"),
    (ErrorInt.ADMA, "ADMA error (no ADMA in this controller)"),
)
_AUTO_CMD_BITS: tuple[tuple[AutoCmdError, str], ...] = (
    (AutoCmdError.NOT_EXECUTED, "Auto CMD12 not executed"),
    (AutoCmdError.TIMEOUT, "Auto CMD response timeout"),
    (AutoCmdError.CRC, "Auto CMD response CRC error"),
    (AutoCmdError.END_BIT, "Auto CMD response end bit error"),
    (AutoCmdError.INDEX, "Auto CMD response index error"),
    (AutoCmdError.NOT_ISSUED, "command not issued because of an Auto CMD12 error"),
)

_ON_OFF = {0: "off", 1: "on"}
_RESP_SELECT = {0: "no response", 1: "136-bit (R2)", 2: "48-bit", 3: "48-bit with busy (R1b)"}
_VOLTAGE = {7: "3.3 V", 6: "3.0 V", 5: "1.8 V"}
_BOUNDARY = {n: f"{4 << n} KiB" for n in range(8)}
_TIMEOUT = {n: f"TMCLK x 2^{13 + n}" for n in range(MAX_TIMEOUT_COUNT + 1)} | {15: "reserved"}
_SPEC_VERSION = {0: "1.00", 1: "2.00", 2: "3.00", 3: "4.00", 4: "4.10", 5: "4.20"}


def _reg(name: str, width: int, access: Access, meaning: str, section: str,
         *fields: RegField) -> SdhciRegister:
    return SdhciRegister(name, int(Offset[name]), width, access, meaning, section, fields)


# --------------------------------------------------------------------------- the table

REGISTERS: tuple[SdhciRegister, ...] = (
    _reg("DMA_ADDRESS", 4, A.RW, "SDMA system address; Argument 2 of Auto CMD23", "HCS 2.2.1",
         RegField("ADDRESS", 31, 0, A.RW, "SDMA address; next address when paused at a "
                  "boundary (writing byte 3 resumes); Auto CMD23 argument")),
    _reg("BLOCK_SIZE", 2, A.RW, "transfer block size and SDMA buffer boundary", "HCS 2.2.2",
         RegField("BLOCK_SIZE", 11, 0, A.RW, "bytes per block (512 for memory data)"),
         RegField("SDMA_BOUNDARY", 14, 12, A.RW, "SDMA buffer boundary 4 KiB x 2^n",
                  _BOUNDARY)),
    _reg("BLOCK_COUNT", 2, A.RW, "blocks to transfer; counts down", "HCS 2.2.3",
         RegField("BLOCK_COUNT", 15, 0, A.RW, "blocks left (with Block Count Enable)")),
    _reg("ARGUMENT", 4, A.RW, "command argument (bits 39:8 of the command)", "HCS 2.2.4",
         RegField("ARGUMENT", 31, 0, A.RW, "command argument")),
    _reg("TRANSFER_MODE", 2, A.RW, "data transfer of the next command", "HCS 2.2.5",
         _bit("DMA_ENABLE", 0, A.RW, "move data by DMA (SDMA) instead of the buffer port"),
         _bit("BLOCK_COUNT_ENABLE", 1, A.RW, "Block Count counts down and ends the transfer"),
         RegField("AUTO_CMD", 3, 2, A.RW, "command the controller adds",
                  {0: "off", 1: "Auto CMD12", 2: "Auto CMD23", 3: "reserved"}),
         RegField("DIRECTION", 4, 4, A.RW, "data direction", {0: "write", 1: "read"}),
         RegField("MULTI_BLOCK", 5, 5, A.RW, "block mode", {0: "single", 1: "multiple"})),
    _reg("COMMAND", 2, A.RW, "command to send; writing byte 0x0F issues it", "HCS 2.2.6",
         RegField("RESPONSE_TYPE", 1, 0, A.RW, "response length and busy", _RESP_SELECT),
         _bit("CRC_CHECK", 3, A.RW, "check the response CRC7"),
         _bit("INDEX_CHECK", 4, A.RW, "check the response index"),
         _bit("DATA_PRESENT", 5, A.RW, "the command has a data phase"),
         RegField("COMMAND_TYPE", 7, 6, A.RW, "command type",
                  {0: "normal", 1: "suspend", 2: "resume", 3: "abort"}),
         RegField("COMMAND_INDEX", 13, 8, A.RW, "command index")),
    _reg("RESPONSE", 16, A.ROC, "response: R48 bits 39:8 in 31:0; R2 bits 127:8 in 119:0; "
         "Auto CMD12/23 response in 127:96", "HCS 2.2.7",
         RegField("RESPONSE0", 31, 0, A.ROC, "R48 payload; R2 bits 39:8"),
         RegField("RESPONSE1", 63, 32, A.ROC, "R2 bits 71:40"),
         RegField("RESPONSE2", 95, 64, A.ROC, "R2 bits 103:72"),
         RegField("RESPONSE3", 127, 96, A.ROC, "R2 bits 127:104 (31:24 = 0); Auto CMD "
                  "response")),
    _reg("BUFFER", 4, A.RW, "buffer data port: the block, byte 0 first, in 7:0", "HCS 2.2.8",
         RegField("DATA", 31, 0, A.RW, "next bytes of the block buffer")),
    _reg("PRESENT_STATE", 4, A.RO, "controller and slot state", "HCS 2.2.9",
         *_flag_fields((
             (PresentState.CMD_INHIBIT, "a command is on the CMD line"),
             (PresentState.DAT_INHIBIT, "DAT line in use (data or R1b busy)"),
             (PresentState.DAT_ACTIVE, "DAT line active"),
             (PresentState.WRITE_ACTIVE, "write transfer active"),
             (PresentState.READ_ACTIVE, "read transfer active"),
             (PresentState.BUF_WR_ENABLE, "buffer port can take one block"),
             (PresentState.BUF_RD_ENABLE, "buffer port holds one block"),
         ), A.ROC),
         *_flag_fields((
             (PresentState.CARD_INSERTED, "card inserted (debounced)"),
             (PresentState.CARD_STABLE, "card detect stable"),
             (PresentState.CARD_DETECT, "card detect pin level (1 = card present)"),
             (PresentState.WRITE_PROTECT, "WP pin level (1 = writable)"),
         ), A.RO),
         RegField("DAT_LEVEL", 23, 20, A.RO, "DAT[3:0] levels (DAT0 low = busy)"),
         _bit("CMD_LEVEL", 24, A.RO, "CMD line level")),
    _reg("HOST_CONTROL", 1, A.RW, "bus width, speed, DMA select, card detect test",
         "HCS 2.2.10",
         _bit("LED", 0, A.RW, "activity LED"),
         RegField("DATA_WIDTH", 1, 1, A.RW, "DAT width", {0: "1-bit", 1: "4-bit"}),
         _bit("HIGH_SPEED", 2, A.RW, "high speed enable (host samples on the rising edge)"),
         RegField("DMA_SELECT", 4, 3, A.RW, "DMA kind",
                  {0: "SDMA", 1: "reserved", 2: "32-bit ADMA2", 3: "64-bit ADMA2"}),
         _bit("BUS_8BIT", 5, A.RW, "8-bit bus (not offered: Capabilities bit 18 = 0)"),
         _bit("CD_TEST_LEVEL", 6, A.RW, "card detect test level (1 = inserted)"),
         _bit("CD_SIGNAL_SELECT", 7, A.RW, "card detect from the test level, not the pin")),
    _reg("POWER_CONTROL", 1, A.RW, "SD bus power", "HCS 2.2.11",
         RegField("BUS_POWER", 0, 0, A.RW, "SD bus power (stays 0 for an unsupported "
                  "voltage)", _ON_OFF),
         RegField("BUS_VOLTAGE", 3, 1, A.RW, "SD bus voltage select", _VOLTAGE)),
    _reg("BLOCK_GAP_CONTROL", 1, A.RW, "stop and continue at block gaps", "HCS 2.2.12",
         _bit("STOP_AT_GAP", 0, A.RW, "stop the transfer at the next block gap"),
         RegField("CONTINUE", 1, 1, A.RWAC, "restart a transfer stopped at a gap"),
         _bit("READ_WAIT", 2, A.RW, "read wait control (SDIO)"),
         _bit("INT_AT_GAP", 3, A.RW, "interrupt at block gap (SDIO 4-bit)")),
    _reg("WAKE_UP_CONTROL", 1, A.RW, "wake-up events (stored; the model never sleeps)",
         "HCS 2.2.13",
         _bit("WAKE_CARD_INT", 0, A.RW, "wake up on card interrupt"),
         _bit("WAKE_INSERT", 1, A.RW, "wake up on card insertion"),
         _bit("WAKE_REMOVE", 2, A.RW, "wake up on card removal")),
    _reg("CLOCK_CONTROL", 2, A.RW, "internal clock and SD clock divider", "HCS 2.2.14",
         RegField("INT_CLOCK_ENABLE", 0, 0, A.RW, "internal clock", _ON_OFF),
         _bit("INT_CLOCK_STABLE", 1, A.ROC, "internal clock stable"),
         RegField("SD_CLOCK_ENABLE", 2, 2, A.RW, "SDCLK to the card", _ON_OFF),
         RegField("DIVIDER_HI", 7, 6, A.RW, "divider N bits 9:8"),
         RegField("DIVIDER", 15, 8, A.RW, "divider N bits 7:0; SDCLK = base / 2N (N = 0: "
                  "base)")),
    _reg("TIMEOUT_CONTROL", 1, A.RW, "data timeout counter", "HCS 2.2.15",
         RegField("DATA_TIMEOUT", 3, 0, A.RW, "timeout = TMCLK x 2^(13 + n)", _TIMEOUT)),
    _reg("SOFTWARE_RESET", 1, A.RWAC, "software reset; bits clear when done", "HCS 2.2.16",
         *_flag_fields((
             (SoftwareReset.ALL, "whole controller except capabilities and card detect"),
             (SoftwareReset.CMD, "command circuit: CMD inhibit, command complete"),
             (SoftwareReset.DATA, "data circuit: buffer, DAT inhibit, transfer status"),
         ), A.RWAC)),
    _reg("INT_STATUS", 2, A.RW1C, "normal interrupt status (write 1 to clear)", "HCS 2.2.17",
         *_flag_fields(_NORMAL_BITS, A.RW1C), *_flag_fields((_CARD_INT,), A.ROC),
         _bit("ERROR", 15, A.ROC, "any bit of the error interrupt status is set")),
    _reg("ERR_INT_STATUS", 2, A.RW1C, "error interrupt status (write 1 to clear)",
         "HCS 2.2.18", *_flag_fields(_ERROR_BITS, A.RW1C)),
    _reg("INT_ENABLE", 2, A.RW, "normal interrupt status enable: what may latch",
         "HCS 2.2.19", *_flag_fields((*_NORMAL_BITS, _CARD_INT), A.RW)),
    _reg("ERR_INT_ENABLE", 2, A.RW, "error interrupt status enable: what may latch",
         "HCS 2.2.20", *_flag_fields(_ERROR_BITS, A.RW)),
    _reg("SIGNAL_ENABLE", 2, A.RW, "normal interrupt signal enable: what reaches the IRQ",
         "HCS 2.2.21", *_flag_fields((*_NORMAL_BITS, _CARD_INT), A.RW)),
    _reg("ERR_SIGNAL_ENABLE", 2, A.RW, "error interrupt signal enable: what reaches the IRQ",
         "HCS 2.2.22", *_flag_fields(_ERROR_BITS, A.RW)),
    _reg("AUTO_CMD_STATUS", 2, A.ROC, "Auto CMD12/CMD23 error status", "HCS 2.2.23",
         *_flag_fields(_AUTO_CMD_BITS, A.ROC)),
    _reg("HOST_CONTROL2", 2, A.RW, "UHS-I controls (stored; no UHS-I in this model)",
         "HCS 2.2.24",
         RegField("UHS_MODE", 2, 0, A.RW, "UHS mode select",
                  {0: "SDR12", 1: "SDR25", 2: "SDR50", 3: "SDR104", 4: "DDR50"}),
         _bit("SIGNALING_1V8", 3, A.RW, "1.8 V signalling"),
         RegField("DRIVER_STRENGTH", 5, 4, A.RW, "driver strength select",
                  {0: "type B", 1: "type A", 2: "type C", 3: "type D"}),
         _bit("EXECUTE_TUNING", 6, A.RW, "execute tuning"),
         _bit("SAMPLING_CLOCK", 7, A.RW, "tuned sampling clock select"),
         _bit("ASYNC_INT_ENABLE", 14, A.RW, "asynchronous interrupt enable"),
         _bit("PRESET_ENABLE", 15, A.RW, "preset value enable")),
    _reg("CAPABILITIES", 4, A.HWINIT, "what the controller supports (bits 31:0)",
         "HCS 2.2.25",
         RegField("TIMEOUT_CLOCK", 5, 0, A.HWINIT, "timeout clock frequency (TMCLK)"),
         RegField("TIMEOUT_UNIT", 7, 7, A.HWINIT, "timeout clock unit", {0: "kHz", 1: "MHz"}),
         RegField("BASE_CLOCK", 15, 8, A.HWINIT, "base clock frequency for SDCLK in MHz"),
         RegField("MAX_BLOCK", 17, 16, A.HWINIT, "max block length",
                  {0: "512 bytes", 1: "1024 bytes", 2: "2048 bytes"}),
         _bit("BUS_8BIT", 18, A.HWINIT, "8-bit bus"),
         _bit("ADMA2", 19, A.HWINIT, "ADMA2"),
         _bit("HIGH_SPEED", 21, A.HWINIT, "high speed"),
         _bit("SDMA", 22, A.HWINIT, "SDMA"),
         _bit("SUSPEND_RESUME", 23, A.HWINIT, "suspend/resume"),
         _bit("VOLTAGE_33", 24, A.HWINIT, "3.3 V"),
         _bit("VOLTAGE_30", 25, A.HWINIT, "3.0 V"),
         _bit("VOLTAGE_18", 26, A.HWINIT, "1.8 V"),
         _bit("SYS_BUS_64BIT", 28, A.HWINIT, "64-bit system bus"),
         _bit("ASYNC_INT", 29, A.HWINIT, "asynchronous interrupt"),
         RegField("SLOT_TYPE", 31, 30, A.HWINIT, "slot type",
                  {0: "removable", 1: "embedded", 2: "shared bus"})),
    _reg("CAPABILITIES_1", 4, A.HWINIT, "what the controller supports (bits 63:32)",
         "HCS 2.2.25",
         _bit("SDR50", 0, A.HWINIT, "SDR50"),
         _bit("SDR104", 1, A.HWINIT, "SDR104"),
         _bit("DDR50", 2, A.HWINIT, "DDR50"),
         _bit("DRIVER_TYPE_A", 4, A.HWINIT, "driver type A"),
         _bit("DRIVER_TYPE_C", 5, A.HWINIT, "driver type C"),
         _bit("DRIVER_TYPE_D", 6, A.HWINIT, "driver type D"),
         RegField("RETUNING_TIMER", 11, 8, A.HWINIT, "re-tuning timer (0 = off)"),
         _bit("TUNING_SDR50", 13, A.HWINIT, "use tuning for SDR50"),
         RegField("RETUNING_MODE", 15, 14, A.HWINIT, "re-tuning mode"),
         RegField("CLOCK_MULTIPLIER", 23, 16, A.HWINIT, "programmable clock multiplier "
                  "(0 = none)")),
    _reg("MAX_CURRENT", 8, A.HWINIT, "maximum current per voltage, 4 mA steps "
         "(0 = from another source)", "HCS 2.2.26",
         RegField("MAX_CURRENT_33", 7, 0, A.HWINIT, "3.3 V"),
         RegField("MAX_CURRENT_30", 15, 8, A.HWINIT, "3.0 V"),
         RegField("MAX_CURRENT_18", 23, 16, A.HWINIT, "1.8 V")),
    _reg("SET_ACMD12_ERROR", 2, A.WO, "force event: writing 1 sets the 0x3C bit",
         "HCS 2.2.27", *_flag_fields(_AUTO_CMD_BITS, A.WO)),
    _reg("SET_INT_ERROR", 2, A.WO, "force event: writing 1 sets the 0x32 bit (if enabled)",
         "HCS 2.2.28", *_flag_fields(_ERROR_BITS, A.WO)),
    _reg("ADMA_ERROR", 1, A.ROC, "ADMA error status (no ADMA in this controller)",
         "HCS 2.2.29",
         RegField("ADMA_STATE", 1, 0, A.ROC, "ADMA state at the error",
                  {0: "ST_STOP", 1: "ST_FDS", 3: "ST_TFR"}),
         _bit("LENGTH_MISMATCH", 2, A.ROC, "ADMA length mismatch")),
    _reg("ADMA_ADDRESS", 8, A.RW, "ADMA descriptor address (stored; no ADMA)", "HCS 2.2.30",
         RegField("ADDRESS", 31, 0, A.RW, "32-bit descriptor address"),
         RegField("ADDRESS_HI", 63, 32, A.RW, "upper half (64-bit addressing only)")),
    _reg("SLOT_INT_STATUS", 2, A.RO, "which slots interrupt", "HCS 2.2.32",
         RegField("SLOT_INT", 7, 0, A.RO, "one bit per slot; bit 0 = this slot's IRQ line")),
    _reg("HOST_VERSION", 2, A.HWINIT, "host controller version", "HCS 2.2.33",
         RegField("SPEC_VERSION", 7, 0, A.HWINIT, "specification version", _SPEC_VERSION),
         RegField("VENDOR_VERSION", 15, 8, A.HWINIT, "vendor version")),
)

REG: Mapping[str, SdhciRegister] = MappingProxyType({r.name: r for r in REGISTERS})

_BY_BYTE: tuple[SdhciRegister | None, ...] = tuple(
    next((r for r in REGISTERS if r.offset <= offset < r.end), None) for offset in range(256)
)


def register_at(offset: int) -> SdhciRegister | None:
    """The register that holds byte ``offset`` (None: unassigned, reads 0)."""
    if not 0 <= offset <= 0xFF:
        raise ValueError(f"SDHCI offset must be 0x00..0xFF, not {offset:#x}")
    return _BY_BYTE[offset]


def capabilities_value(base_clock_hz: int, timeout_clock_hz: int) -> int:
    """Capabilities 0x40 for this model: SDMA, high speed, 3.3 V, 512-byte blocks, no
    ADMA2, no 8-bit bus, removable slot; base clock in MHz, TMCLK in kHz or MHz."""
    if base_clock_hz % 1_000_000 or not 1 <= base_clock_hz // 1_000_000 <= 255:
        raise ValueError(f"base clock must be 1..255 whole MHz, not {base_clock_hz} Hz")
    if timeout_clock_hz % 1_000_000 == 0 and 1 <= timeout_clock_hz // 1_000_000 <= 63:
        tmclk, unit = timeout_clock_hz // 1_000_000, 1
    elif timeout_clock_hz % 1000 == 0 and 1 <= timeout_clock_hz // 1000 <= 63:
        tmclk, unit = timeout_clock_hz // 1000, 0
    else:
        raise ValueError(f"timeout clock must be 1..63 whole kHz or MHz, not {timeout_clock_hz} Hz")
    caps = REG["CAPABILITIES"]
    value = tmclk | unit << 7 | (base_clock_hz // 1_000_000) << 8
    for name in ("HIGH_SPEED", "SDMA", "VOLTAGE_33"):
        value |= caps.field(name).mask
    return value
