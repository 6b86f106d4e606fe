"""SD registers as declarative bit-field tables (Physical Layer spec chapter 5, §4.10, §4.3.10).

Every register is one :class:`Register` holding :class:`Field` rows (name, msb, lsb, meaning,
spec section, optional value names). Encoding, decoding, the register tree and the lessons'
"explain this field" all read the same rows. Bit numbers are the spec's: bit 0 is the last
bit sent, and ``Register.to_bytes`` gives the wire order (MSB first).

CID and CSD include their CRC7 (7:1) and end bit (0), so a 128-bit value is the register as
sent inside R2 (§4.9.3) and as the 16-byte SPI data block. Reserved bits have no field.

The builders below (``build_csd``, ``default_cid``, ``build_scr``, ``build_sd_status``,
``build_switch_status``) are pure functions over these tables.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntFlag, StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import NamedTuple

from sdmodel.bitfield import BitRange
from sdmodel.crc import crc7
from sdmodel.errors import ImageError
from sdmodel.states import CardState

__all__ = [
    "Kind",
    "Field",
    "FieldValue",
    "Register",
    # tables
    "OCR",
    "CID",
    "CSD_V1",
    "CSD_V2",
    "SCR",
    "SD_STATUS",
    "CARD_STATUS",
    "R6_STATUS",
    "SWITCH_STATUS",
    "SPI_R1",
    "SPI_R2_STATUS",
    "SPI_DATA_ERROR_TOKEN",
    "ALL_REGISTERS",
    # OCR
    "OCR_BUSY",
    "OCR_CCS",
    "OCR_UHS2",
    "OCR_CO2T",
    "OCR_S18A",
    "OCR_VDD_WINDOW_2V7_3V6",
    # card status
    "CardStatus",
    "CARD_STATUS_CLASSES",
    "STATUS_CLEAR_A",
    "STATUS_CLEAR_B",
    "STATUS_CLEAR_C",
    "ERROR_BITS",
    "error_names",
    "r6_status_from_card_status",
    "card_status_from_r6_status",
    "card_status_of_response",
    "current_state",
    "spi_r1_from_card_status",
    "spi_r2_byte2_from_card_status",
    "spi_data_error_token_from_card_status",
    # CID / CSD
    "crc7_register",
    "register_crc_ok",
    "default_cid",
    "CsdInfo",
    "build_csd",
    "csd_table",
    "decode_csd",
    "csd_capacity",
    # SCR, SD Status, CMD6
    "build_scr",
    "build_sd_status",
    "SWITCH_FUNCTIONS",
    "parse_switch_arg",
    "switch_results",
    "build_switch_status",
]


# --------------------------------------------------------------------------- the table types


class Kind(StrEnum):
    """How ``Field.describe`` renders a value that has no entry in ``Field.values``."""

    DEC = "dec"  # decimal, followed by Field.unit
    HEX = "hex"  # 0x.., zero-padded to the field width
    ASCII = "ascii"  # one character per byte (CID OID/PNM)
    BCD = "bcd"  # n.m in two nibbles (CID PRV)
    DATE = "date"  # CID MDT: year - 2000 in 11:4, month in 3:0
    TAAC = "taac"  # CSD TAAC: mantissa 6:3 x time unit 2:0 (§5.3.2)
    RATE = "rate"  # CSD TRAN_SPEED: mantissa 6:3 x rate unit 2:0 (§5.3.2)
    BITS = "bits"  # a bitmap: Field.values names bit positions inside the field


@dataclass(frozen=True)
class Field(BitRange):
    """One bit field of a register, bits ``msb`` down to ``lsb`` (spec numbering)."""

    name: str
    msb: int
    lsb: int
    meaning: str
    section: str
    values: Mapping[int, str] | None = dataclasses.field(default=None, hash=False)
    kind: Kind = Kind.DEC
    unit: str = ""

    def __post_init__(self) -> None:
        self._validate(self.width if self.kind is Kind.BITS else None)
        if self.kind is Kind.ASCII and self.width % 8:
            raise ValueError(f"field {self.name}: ASCII fields need whole bytes")

    def describe(self, value: int) -> str:
        """Human text for ``value``: its name, or the value formatted by ``kind``."""
        self._check(value)
        if self.kind is Kind.BITS:
            names = self.values or {}
            bits = [names.get(i, f"bit {i}") for i in range(self.width) if value >> i & 1]
            return ", ".join(bits) if bits else "none"
        if self.values is not None:
            return self.values.get(value, f"{value} (reserved)")
        return _FORMATTERS[self.kind](self, value)


class FieldValue(NamedTuple):
    """One row of ``Register.explain``: the field, its value and that value as text."""

    field: Field
    value: int
    text: str


@dataclass(frozen=True)
class Register:
    """A register: ``width`` bits, fields listed from the most significant down."""

    name: str
    width: int
    title: str
    section: str
    fields: tuple[Field, ...]
    _by_name: Mapping[str, Field] = dataclasses.field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.width <= 0 or self.width % 8:
            raise ValueError(f"register {self.name}: width {self.width} is not whole bytes")
        by_name: dict[str, Field] = {}
        below = self.width  # the next field must end below this bit: no overlap, table order
        for f in self.fields:
            if f.name in by_name:
                raise ValueError(f"register {self.name}: field {f.name} appears twice")
            if f.msb >= below:
                raise ValueError(
                    f"register {self.name}: field {f.name} ({f.msb}:{f.lsb}) overlaps the "
                    f"previous field, leaves the register or is out of msb order"
                )
            by_name[f.name] = f
            below = f.lsb
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    @property
    def defined_mask(self) -> int:
        """Every bit covered by a field."""
        return functools.reduce(lambda acc, f: acc | f.mask, self.fields, 0)

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"register {self.name} has no field {name!r}") from None

    def decode(self, raw: int) -> dict[str, int]:
        self._check(raw)
        return {f.name: f.get(raw) for f in self.fields}

    def encode(self, values: Mapping[str, int] | None = None, /, **kw: int) -> int:
        """The raw value with the given fields set and every other field 0."""
        raw = 0
        for name, value in {**(values or {}), **kw}.items():
            raw = self.field(name).put(raw, value)
        return raw

    def explain(self, raw: int) -> list[FieldValue]:
        self._check(raw)
        return [FieldValue(f, f.get(raw), f.describe(f.get(raw))) for f in self.fields]

    def to_bytes(self, raw: int) -> bytes:
        """Big-endian, MSB first as on the wire."""
        self._check(raw)
        return raw.to_bytes(self.width // 8, "big")

    def from_bytes(self, data: bytes) -> int:
        if len(data) != self.width // 8:
            raise ValueError(f"{self.name} is {self.width // 8} bytes, got {len(data)}")
        return int.from_bytes(data, "big")

    def _check(self, raw: int) -> None:
        if not 0 <= raw < 1 << self.width:
            raise ValueError(f"{self.name} is {self.width} bits; {raw:#x} does not fit")


# --------------------------------------------------------------------------- value formatting

# §5.3.2 TAAC / TRAN_SPEED: mantissa code 6:3 in tenths (0 = reserved).
_MANTISSA_TENTHS = (0, 10, 12, 13, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 70, 80)


def _scaled(amount: Fraction, units: Sequence[tuple[str, int]]) -> str:
    name, factor = next(((n, f) for n, f in reversed(units) if amount >= f), units[0])
    return f"{float(amount / factor):g} {name}"


def _mantissa_unit(value: int, units: int) -> tuple[Fraction, int] | None:
    tenths, unit = _MANTISSA_TENTHS[(value >> 3) & 0xF], value & 0x7
    if tenths == 0 or unit >= units or value & 0x80:
        return None
    return Fraction(tenths, 10), unit


def _fmt_taac(_: Field, value: int) -> str:
    parts = _mantissa_unit(value, 8)  # unit 0 = 1 ns ... 7 = 10 ms
    if parts is None:
        return f"{value:#04x} (reserved)"
    ns = parts[0] * 10 ** parts[1]
    return _scaled(ns, (("ns", 1), ("µs", 1000), ("ms", 1000_000)))


def _fmt_rate(_: Field, value: int) -> str:
    parts = _mantissa_unit(value, 4)  # unit 0 = 100 kbit/s ... 3 = 100 Mbit/s
    if parts is None:
        return f"{value:#04x} (reserved)"
    kbit = parts[0] * 100 * 10 ** parts[1]
    return _scaled(kbit, (("kbit/s", 1), ("Mbit/s", 1000)))


def _fmt_ascii(f: Field, value: int) -> str:
    data = value.to_bytes(f.width // 8, "big")
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data) + '"'


def _fmt_date(_: Field, value: int) -> str:
    year, month = 2000 + (value >> 4), value & 0xF
    return f"{year}-{month:02d}" + ("" if 1 <= month <= 12 else " (invalid month)")


_FORMATTERS = {
    Kind.DEC: lambda f, v: f"{v} {f.unit}" if f.unit else str(v),
    Kind.HEX: lambda f, v: f"0x{v:0{(f.width + 3) // 4}X}",
    Kind.ASCII: _fmt_ascii,
    Kind.BCD: lambda _, v: f"{v >> 4}.{v & 0xF}",
    Kind.DATE: _fmt_date,
    Kind.TAAC: _fmt_taac,
    Kind.RATE: _fmt_rate,
}


def _in(section: str) -> functools.partial[Field]:
    """A Field constructor with the section of one table filled in."""
    return functools.partial(Field, section=section)


# --------------------------------------------------------------------------- OCR §5.1

_F = _in("§5.1")
OCR = Register("OCR", 32, "Operation Conditions Register", "§5.1", (
    _F("BUSY", 31, 31, "card power-up status: 1 = initialisation finished (not busy)",
       values={0: "busy (initialising)", 1: "power-up done"}),
    _F("CCS", 30, 30, "card capacity status, valid when BUSY = 1",
       values={0: "SDSC (byte addressing)", 1: "SDHC/SDXC (block addressing)"}),
    _F("UHS2", 29, 29, "UHS-II card status", values={0: "not UHS-II", 1: "UHS-II card"}),
    _F("CO2T", 27, 27, "over 2 TB support (SDUC, v7)"),
    _F("S18A", 24, 24, "switching to 1.8 V signalling accepted (only after S18R)"),
    _F("VDD_WINDOW", 23, 15, "supported VDD ranges, 2.7-3.6 V in 0.1 V steps",
       kind=Kind.BITS,
       values={i: f"{(27 + i) / 10:.1f}-{(28 + i) / 10:.1f} V" for i in range(9)}),
))

OCR_BUSY = OCR.field("BUSY").mask  # set = power-up finished (Linux MMC_CARD_BUSY)
OCR_CCS = OCR.field("CCS").mask
OCR_UHS2 = OCR.field("UHS2").mask
OCR_CO2T = OCR.field("CO2T").mask
OCR_S18A = OCR.field("S18A").mask
OCR_VDD_WINDOW_2V7_3V6 = 0x00FF8000

# --------------------------------------------------------------------------- CID §5.2

_F = _in("§5.2")
CID = Register("CID", 128, "Card Identification register", "§5.2", (
    _F("MID", 127, 120, "manufacturer ID (assigned by the SD Association)", kind=Kind.HEX),
    _F("OID", 119, 104, "OEM/application ID, 2 ASCII characters", kind=Kind.ASCII),
    _F("PNM", 103, 64, "product name, 5 ASCII characters", kind=Kind.ASCII),
    _F("PRV", 63, 56, "product revision n.m, BCD", kind=Kind.BCD),
    _F("PSN", 55, 24, "product serial number", kind=Kind.HEX),
    _F("MDT", 19, 8, "manufacturing date: year - 2000 (11:4), month 1-12 (3:0)",
       kind=Kind.DATE),
    _F("CRC", 7, 1, "CRC7 over bits 127:8", kind=Kind.HEX),
    _F("ALWAYS_1", 0, 0, "end bit, always 1"),
))

# --------------------------------------------------------------------------- CSD §5.3

# §4.7.3 command classes, one bit each in CCC.
_CCC_NAMES = {
    0: "class 0 basic", 1: "class 1 (reserved)", 2: "class 2 block read",
    3: "class 3 (reserved)", 4: "class 4 block write", 5: "class 5 erase",
    6: "class 6 write protection", 7: "class 7 lock card", 8: "class 8 application-specific",
    9: "class 9 I/O mode", 10: "class 10 switch", 11: "class 11 extension",
}
_BL_LEN = {9: "512 B", 10: "1024 B", 11: "2048 B"}
# §5.3.2 Tables "VDD_R_CURR_MIN / VDD_W_CURR_MIN" and "..._MAX" (code -> current).
_CURR_MIN = {0: "0.5 mA", 1: "1 mA", 2: "5 mA", 3: "10 mA", 4: "25 mA", 5: "35 mA",
             6: "60 mA", 7: "100 mA"}
_CURR_MAX = {0: "1 mA", 1: "5 mA", 2: "10 mA", 3: "25 mA", 4: "35 mA", 5: "45 mA",
             6: "80 mA", 7: "200 mA"}


def _csd_head(section: str) -> tuple[Field, ...]:
    """Bits 127:76, laid out alike in v1.0 and v2.0."""
    f = _in(section)
    return (
        f("CSD_STRUCTURE", 127, 126, "CSD version",
          values={0: "v1.0 (SDSC)", 1: "v2.0 (SDHC/SDXC)", 2: "v3.0 (SDUC)"}),
        f("TAAC", 119, 112, "data read access time 1 (asynchronous part)", kind=Kind.TAAC),
        f("NSAC", 111, 104, "data read access time 2, in 100-clock units",
          unit="× 100 clocks"),
        f("TRAN_SPEED", 103, 96, "maximum data transfer rate per line (= clock)",
          kind=Kind.RATE),
        f("CCC", 95, 84, "card command classes supported", kind=Kind.BITS, values=_CCC_NAMES),
        f("READ_BL_LEN", 83, 80, "maximum read block length, log2 bytes", values=_BL_LEN),
        f("READ_BL_PARTIAL", 79, 79, "partial (smaller) read blocks allowed"),
        f("WRITE_BLK_MISALIGN", 78, 78, "written block may cross a physical block"),
        f("READ_BLK_MISALIGN", 77, 77, "read block may cross a physical block"),
        f("DSR_IMP", 76, 76, "driver stage register (CMD4) implemented"),
    )


def _csd_tail(section: str) -> tuple[Field, ...]:
    """Bits 46:0, laid out alike in v1.0 and v2.0."""
    f = _in(section)
    return (
        f("ERASE_BLK_EN", 46, 46, "erase of single write blocks allowed"),
        f("SECTOR_SIZE", 45, 39, "erase sector size - 1, in write blocks"),
        f("WP_GRP_SIZE", 38, 32, "write-protect group size - 1, in erase sectors"),
        f("WP_GRP_ENABLE", 31, 31, "write-protect groups supported"),
        f("R2W_FACTOR", 28, 26, "write time as a multiple of the read access time",
          values={n: f"×{1 << n}" for n in range(6)}),
        f("WRITE_BL_LEN", 25, 22, "maximum write block length, log2 bytes", values=_BL_LEN),
        f("WRITE_BL_PARTIAL", 21, 21, "partial (smaller) write blocks allowed"),
        f("FILE_FORMAT_GRP", 15, 15, "file format group (with FILE_FORMAT)"),
        f("COPY", 14, 14, "contents are a copy (one-time programmable)"),
        f("PERM_WRITE_PROTECT", 13, 13, "whole card permanently write-protected (one-time)"),
        f("TMP_WRITE_PROTECT", 12, 12, "whole card temporarily write-protected"),
        f("FILE_FORMAT", 11, 10, "file format on the card (when FILE_FORMAT_GRP = 0)",
          values={0: "hard disk with partition table", 1: "FAT boot sector, no partitions",
                  2: "universal file format", 3: "other/unknown"}),
        f("WP_UPC", 9, 9, "write-protect until power cycle (later spec versions; else 0)"),
        f("CRC", 7, 1, "CRC7 over bits 127:8", kind=Kind.HEX),
        f("ALWAYS_1", 0, 0, "end bit, always 1"),
    )


_F = _in("§5.3.2")
CSD_V1 = Register("CSD_V1", 128, "Card-Specific Data, version 1.0 (SDSC)", "§5.3.2", (
    *_csd_head("§5.3.2"),
    _F("C_SIZE", 73, 62, "device size: (C_SIZE+1) × 2^(C_SIZE_MULT+2) × 2^READ_BL_LEN bytes"),
    _F("VDD_R_CURR_MIN", 61, 59, "maximum read current at VDD min", values=_CURR_MIN),
    _F("VDD_R_CURR_MAX", 58, 56, "maximum read current at VDD max", values=_CURR_MAX),
    _F("VDD_W_CURR_MIN", 55, 53, "maximum write current at VDD min", values=_CURR_MIN),
    _F("VDD_W_CURR_MAX", 52, 50, "maximum write current at VDD max", values=_CURR_MAX),
    _F("C_SIZE_MULT", 49, 47, "device size multiplier 2^(C_SIZE_MULT+2)",
       values={m: f"×{1 << (m + 2)}" for m in range(8)}),
    *_csd_tail("§5.3.2"),
))

_F = _in("§5.3.3")
CSD_V2 = Register("CSD_V2", 128, "Card-Specific Data, version 2.0 (SDHC/SDXC)", "§5.3.3", (
    *_csd_head("§5.3.3"),
    _F("C_SIZE", 69, 48, "device size: (C_SIZE+1) × 512 KiB"),
    *_csd_tail("§5.3.3"),
))

# --------------------------------------------------------------------------- SCR §5.6

_F = _in("§5.6")
SCR = Register("SCR", 64, "SD Configuration Register", "§5.6", (
    _F("SCR_STRUCTURE", 63, 60, "SCR version (Linux rejects anything but 0)",
       values={0: "SCR v1.0"}),
    _F("SD_SPEC", 59, 56, "physical layer spec version (with SD_SPEC3/4/X)",
       values={0: "1.0/1.01", 1: "1.10", 2: "2.00 or later"}),
    _F("DATA_STAT_AFTER_ERASE", 55, 55, "value that erased bits read as"),
    _F("SD_SECURITY", 54, 52, "CPRM security version",
       values={0: "none", 1: "not used", 2: "SDSC (v1.01)", 3: "SDHC (v2.00)",
               4: "SDXC (v3.xx)"}),
    _F("SD_BUS_WIDTHS", 51, 48, "DAT bus widths supported", kind=Kind.BITS,
       values={0: "1 bit", 2: "4 bit"}),
    _F("SD_SPEC3", 47, 47, "spec version 3.0x or later"),
    _F("EX_SECURITY", 46, 43, "extended security support"),
    _F("SD_SPEC4", 42, 42, "spec version 4.xx or later"),
    _F("SD_SPECX", 41, 38, "spec version 5.xx and later",
       values={0: "see SD_SPEC/SD_SPEC3/SD_SPEC4", 1: "5.xx", 2: "6.xx", 3: "7.xx",
               4: "8.xx", 5: "9.xx"}),
    _F("CMD_SUPPORT", 35, 32, "optional commands supported", kind=Kind.BITS,
       values={0: "CMD20 speed class control", 1: "CMD23 set block count",
               2: "CMD48/49 extension register single block",
               3: "CMD58/59 extension register multi-block"}),
))

# --------------------------------------------------------------------------- SD Status §4.10.2

_AU_SIZES = {0: "undefined", 1: "16 KB", 2: "32 KB", 3: "64 KB", 4: "128 KB", 5: "256 KB",
             6: "512 KB", 7: "1 MB", 8: "2 MB", 9: "4 MB", 0xA: "8 MB", 0xB: "12 MB",
             0xC: "16 MB", 0xD: "24 MB", 0xE: "32 MB", 0xF: "64 MB"}
_F = _in("§4.10.2")
SD_STATUS = Register("SD_STATUS", 512, "SD Status (ACMD13)", "§4.10.2", (
    _F("DAT_BUS_WIDTH", 511, 510, "current bus width (set by ACMD6)",
       values={0: "1 bit", 2: "4 bit"}),
    _F("SECURED_MODE", 509, 509, "card is in secured mode"),
    _F("SD_CARD_TYPE", 495, 480, "card type", values={0: "regular R/W", 1: "ROM", 2: "OTP"}),
    _F("SIZE_OF_PROTECTED_AREA", 479, 448,
       "protected area (SDSC: MULT × BLOCK_LEN units; SDHC/SDXC: bytes)"),
    _F("SPEED_CLASS", 447, 440, "speed class",
       values={0: "class 0", 1: "class 2", 2: "class 4", 3: "class 6", 4: "class 10"}),
    _F("PERFORMANCE_MOVE", 439, 432, "move performance (0 = sequential write, 255 = infinity)",
       unit="MB/s"),
    _F("AU_SIZE", 431, 428, "allocation unit size", values=_AU_SIZES),
    _F("ERASE_SIZE", 423, 408, "AUs erased per ERASE_TIMEOUT (0 = not supported)"),
    _F("ERASE_TIMEOUT", 407, 402, "timeout for erasing ERASE_SIZE AUs", unit="s"),
    _F("ERASE_OFFSET", 401, 400, "fixed offset added to erase time", unit="s"),
    _F("UHS_SPEED_GRADE", 399, 396, "UHS speed grade",
       values={0: "< 10 MB/s", 1: "U1 (10 MB/s)", 3: "U3 (30 MB/s)"}),
    _F("UHS_AU_SIZE", 395, 392, "allocation unit size in UHS mode", values=_AU_SIZES),
    _F("VIDEO_SPEED_CLASS", 391, 384, "video speed class",
       values={0: "none", 6: "V6", 10: "V10", 30: "V30", 60: "V60", 90: "V90"}),
    _F("VSC_AU_SIZE", 377, 368, "allocation unit size for video speed class", unit="MB"),
    _F("SUS_ADDR", 367, 346, "suspension address (video speed class)"),
    _F("APP_PERF_CLASS", 339, 336, "application performance class",
       values={0: "none", 1: "A1", 2: "A2"}),
    _F("PERFORMANCE_ENHANCE", 335, 328, "cache / command queue support", kind=Kind.HEX),
    _F("DISCARD_SUPPORT", 313, 313, "discard (CMD38 argument 1) supported"),
    _F("FULE_SUPPORT", 312, 312, "full user area logical erase supported"),
))

# --------------------------------------------------------------------------- card status §4.10.1


class CardStatus(IntFlag):
    """The single-bit card-status flags (§4.10.1); CURRENT_STATE is the field 12:9."""

    OUT_OF_RANGE = 1 << 31
    ADDRESS_ERROR = 1 << 30
    BLOCK_LEN_ERROR = 1 << 29
    ERASE_SEQ_ERROR = 1 << 28
    ERASE_PARAM = 1 << 27
    WP_VIOLATION = 1 << 26
    CARD_IS_LOCKED = 1 << 25
    LOCK_UNLOCK_FAILED = 1 << 24
    COM_CRC_ERROR = 1 << 23
    ILLEGAL_COMMAND = 1 << 22
    CARD_ECC_FAILED = 1 << 21
    CC_ERROR = 1 << 20
    ERROR = 1 << 19
    CSD_OVERWRITE = 1 << 16
    WP_ERASE_SKIP = 1 << 15
    CARD_ECC_DISABLED = 1 << 14
    ERASE_RESET = 1 << 13
    READY_FOR_DATA = 1 << 8
    FX_EVENT = 1 << 6
    APP_CMD = 1 << 5
    AKE_SEQ_ERROR = 1 << 3


# §4.10.1 Table 4-41: flag, type (E error / S status; R detected at decode / X at execution),
# clear condition (A follows the card state, B cleared one valid command later, C on read).
_S = CardStatus
_STATUS_ROWS: tuple[tuple[CardStatus, str, str, str], ...] = (
    (_S.OUT_OF_RANGE, "E R X", "C", "address argument beyond capacity, or ran past the end"),
    (_S.ADDRESS_ERROR, "E R X", "C", "misaligned address (block length vs. physical block)"),
    (_S.BLOCK_LEN_ERROR, "E R X", "C", "block length not allowed, or transfer length wrong"),
    (_S.ERASE_SEQ_ERROR, "E R", "C", "erase commands in the wrong order"),
    (_S.ERASE_PARAM, "E R X", "C", "invalid selection of write blocks to erase"),
    (_S.WP_VIOLATION, "E R X", "C", "write/erase hit a protected block or protected card"),
    (_S.CARD_IS_LOCKED, "S X", "A", "card is locked by password"),
    (_S.LOCK_UNLOCK_FAILED, "E R X", "C", "CMD42 sequence or password error"),
    (_S.COM_CRC_ERROR, "E R", "B", "CRC7 of the previous command was wrong"),
    (_S.ILLEGAL_COMMAND, "E R", "B", "previous command not legal in that state"),
    (_S.CARD_ECC_FAILED, "E R X", "C", "internal ECC could not correct the data"),
    (_S.CC_ERROR, "E R X", "C", "internal card controller error"),
    (_S.ERROR, "E R X", "C", "general or unknown error"),
    (_S.CSD_OVERWRITE, "E R X", "C", "CMD27 tried to change a read-only or one-time field"),
    (_S.WP_ERASE_SKIP, "E R X", "C", "erase skipped protected blocks"),
    (_S.CARD_ECC_DISABLED, "S X", "A", "command executed without internal ECC"),
    (_S.ERASE_RESET, "S R", "C", "erase sequence cancelled by another command"),
    (_S.READY_FOR_DATA, "S X", "A", "buffer empty: card can accept write data"),
    (_S.FX_EVENT, "S X", "A", "extension-function event (later spec versions, unverified)"),
    (_S.APP_CMD, "S R", "C", "card expects an ACMD, or took this command as one"),
    (_S.AKE_SEQ_ERROR, "E R", "C", "security authentication sequence error"),
)

CARD_STATUS_CLASSES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {str(flag.name): (kind, clear) for flag, kind, clear, _ in _STATUS_ROWS}
)


def _status_field(flag: CardStatus, kind: str, clear: str, meaning: str) -> Field:
    bit = flag.bit_length() - 1
    return Field(str(flag.name), bit, bit, f"{meaning} [{kind}, clear {clear}]", "§4.10.1")


_CURRENT_STATE = Field(
    "CURRENT_STATE", 12, 9, "card state when the command was received [S X, clear B]",
    "§4.10.1", values={s.value: s.label for s in CardState if s is not CardState.INA},
)
CARD_STATUS = Register("CARD_STATUS", 32, "Card status (R1)", "§4.10.1", tuple(sorted(
    (*(_status_field(*row) for row in _STATUS_ROWS), _CURRENT_STATE),
    key=lambda f: -f.msb,
)))

# The clear classes as QEMU masks them (sd.c CARD_STATUS_A/B/C). FX_EVENT (A in later spec
# versions) is left out of A: the model never raises it.
STATUS_CLEAR_A = 0x02004100
STATUS_CLEAR_B = 0x00C01E00
STATUS_CLEAR_C = 0xFD39A028
ERROR_BITS = functools.reduce(
    lambda acc, row: acc | row[0] if "E" in row[1] else acc, _STATUS_ROWS, CardStatus(0)
)


def error_names(status: int, mask: int = ERROR_BITS) -> list[str]:
    """Names of the card-status flags set in both ``status`` and ``mask`` (by default
    the error bits of §4.10.1), most significant first."""
    return [str(f.name) for f in CardStatus if f & status & mask]

# --------------------------------------------------------------------------- R6 status §4.9.5

R6_STATUS = Register("R6_STATUS", 16, "Status bits of R6 (CMD3)", "§4.9.5", (
    Field("COM_CRC_ERROR", 15, 15, "card status bit 23: CRC7 of the previous command wrong",
          "§4.9.5"),
    Field("ILLEGAL_COMMAND", 14, 14, "card status bit 22: previous command illegal", "§4.9.5"),
    Field("ERROR", 13, 13, "card status bit 19: general or unknown error", "§4.9.5"),
    *(f for f in CARD_STATUS.fields if f.msb <= 12),  # bits 12:0 are card status 12:0
))

# R6 bit <- card status bit (§4.9.5); bits 12:0 are copied unchanged.
_R6_MOVED = ((1 << 15, CardStatus.COM_CRC_ERROR), (1 << 14, CardStatus.ILLEGAL_COMMAND),
             (1 << 13, CardStatus.ERROR))
_LOW13 = 0x1FFF


def _gather(status: int, table: Sequence[tuple[int, int]]) -> int:
    """OR of each ``out`` mask whose ``source`` bits overlap ``status``."""
    return functools.reduce(lambda acc, row: acc | row[0] if status & row[1] else acc, table, 0)


def _check_width(value: int, bits: int, what: str) -> None:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{what} is {bits} bits; {value:#x} does not fit")


def r6_status_from_card_status(cs: int) -> int:
    """The 16 status bits sent in R6 for card status ``cs`` (§4.9.5)."""
    _check_width(cs, 32, "card status")
    return _gather(cs, _R6_MOVED) | (cs & _LOW13)


def card_status_from_r6_status(s16: int) -> int:
    """The card-status bits an R6 status field stands for (the inverse of the above)."""
    _check_width(s16, 16, "R6 status")
    return _gather(s16, [(int(flag), out) for out, flag in _R6_MOVED]) | (s16 & _LOW13)


def card_status_of_response(kind: str, value: int) -> int | None:
    """The card status an SD-mode response carries: R1/R1b its 32 bits, R6 its 16 status
    bits mapped back (§4.9.5); None for the other types."""
    if kind in ("R1", "R1b"):
        return value
    if kind == "R6":
        return card_status_from_r6_status(value & 0xFFFF)
    return None


def current_state(status: int) -> CardState:
    """CURRENT_STATE of a card status (§4.10.1); ValueError for a reserved code."""
    return CardState(_CURRENT_STATE.get(status))


# --------------------------------------------------------------------------- CMD6 §4.3.10

# §4.3.10 function names per group (group number -> function number -> name).
SWITCH_FUNCTIONS: Mapping[int, Mapping[int, str]] = MappingProxyType({
    1: {0: "default/SDR12", 1: "high speed/SDR25", 2: "SDR50", 3: "SDR104", 4: "DDR50"},
    2: {0: "default", 1: "eC", 3: "OTP", 4: "ASSD"},
    3: {0: "type B", 1: "type A", 2: "type C", 3: "type D"},
    4: {0: "200 mA / 0.72 W", 1: "400 mA / 1.44 W", 2: "600 mA / 2.16 W",
        3: "800 mA / 2.88 W", 4: "1.80 W"},
    5: {0: "default"},
    6: {0: "default"},
})
_GROUP_TITLES = {1: "access mode", 2: "command system", 3: "driver strength",
                 4: "current/power limit", 5: "reserved group 5", 6: "reserved group 6"}
_GROUPS_DOWN = range(6, 0, -1)  # the status lists group 6 first


def _switch_fields() -> tuple[Field, ...]:
    f = _in("§4.3.10")
    support = [
        f(f"GROUP{g}_SUPPORT", 415 + 16 * (g - 1), 400 + 16 * (g - 1),
          f"group {g} ({_GROUP_TITLES[g]}) functions supported", kind=Kind.BITS,
          values={**SWITCH_FUNCTIONS[g], 15: "15 (no change)"})
        for g in _GROUPS_DOWN
    ]
    result = [
        f(f"GROUP{g}_RESULT", 379 + 4 * (g - 1), 376 + 4 * (g - 1),
          f"group {g} function selected (mode 0: would be; mode 1: now in use)",
          values={**SWITCH_FUNCTIONS[g], 15: "error: invalid argument"})
        for g in _GROUPS_DOWN
    ]
    busy = [
        f(f"GROUP{g}_BUSY", 287 + 16 * (g - 1), 272 + 16 * (g - 1),
          f"group {g} functions busy (version 1 only)", kind=Kind.BITS,
          values=SWITCH_FUNCTIONS[g])
        for g in _GROUPS_DOWN
    ]
    return (
        f("MAX_CURRENT", 511, 496, "maximum current of the selected setting (0 = error)",
          unit="mA"),
        *support,
        *result,
        f("DATA_STRUCTURE_VERSION", 375, 368, "status layout version",
          values={0: "v0: bits 511:376 valid", 1: "v1: busy bits valid too"}),
        *busy,
    )


SWITCH_STATUS = Register("SWITCH_STATUS", 512, "CMD6 switch function status", "§4.3.10",
                         _switch_fields())


def parse_switch_arg(arg: int) -> list[int]:
    """The six requested function numbers of a CMD6 argument, group 1 first (§4.3.10)."""
    _check_width(arg, 32, "CMD6 argument")
    return [(arg >> (4 * i)) & 0xF for i in range(6)]


def _six(values: Sequence[int], what: str) -> list[int]:
    if len(values) != 6:
        raise ValueError(f"{what} needs 6 entries (groups 1..6), got {len(values)}")
    return list(values)


def switch_results(
    arg: int, current_functions: Sequence[int], supported: Sequence[int]
) -> list[int]:
    """The result nibble of each group, group 1 first (§4.3.10).

    A group given as 0xF keeps (and reports) its current function; a supported function is
    selected; anything else gives 0xF. Function 0 is always supported.
    """
    current = _six(current_functions, "current_functions")
    masks = _six(supported, "supported")
    results = []
    for requested, now, mask in zip(parse_switch_arg(arg), current, masks, strict=True):
        if requested == 0xF:
            results.append(now)
        elif (mask | 1) >> requested & 1:
            results.append(requested)
        else:
            results.append(0xF)
    return results


def build_switch_status(
    *,
    mode: int,
    arg: int,
    current_functions: Sequence[int],
    supported: Sequence[int],
    max_current_ma: int,
    version: int = 0,
    busy: Sequence[int] = (0,) * 6,
) -> bytes:
    """The 64-byte CMD6 status block (§4.3.10).

    ``supported`` and ``busy`` hold one bitmask per group (group 1 first); functions 0 and
    15 are always reported as supported. The block is the same in both modes: in mode 0 the
    results are what would be selected, in mode 1 what the card now uses (it applies every
    result that is not 0xF). Any 0xF result makes MAX_CURRENT 0 (error).
    """
    if mode not in (0, 1):
        raise ValueError(f"CMD6 mode must be 0 (check) or 1 (switch), not {mode}")
    if version not in (0, 1):
        raise ValueError(f"CMD6 status data structure version must be 0 or 1, not {version}")
    busy = _six(busy, "busy")
    if version == 0 and any(busy):
        raise ValueError("busy bits need data structure version 1")
    results = switch_results(arg, current_functions, supported)
    values = {
        "MAX_CURRENT": 0 if 0xF in results else max_current_ma,
        "DATA_STRUCTURE_VERSION": version,
    }
    for g, result, mask, busy_mask in zip(range(1, 7), results, supported, busy, strict=True):
        values[f"GROUP{g}_SUPPORT"] = mask | 0x8001
        values[f"GROUP{g}_RESULT"] = result
        values[f"GROUP{g}_BUSY"] = busy_mask
    return SWITCH_STATUS.to_bytes(SWITCH_STATUS.encode(values))


# --------------------------------------------------------------------------- SPI mode (§7.3)

_F = _in("§7.3.2")
SPI_R1 = Register("SPI_R1", 8, "SPI response R1", "§7.3.2", (
    _F("ALWAYS_0", 7, 7, "start bit, always 0 (0xFF means no response yet)"),
    _F("PARAMETER_ERROR", 6, 6, "argument (address, block length) outside the allowed range"),
    _F("ADDRESS_ERROR", 5, 5, "misaligned address for the block length"),
    _F("ERASE_SEQ_ERROR", 4, 4, "error in the sequence of erase commands"),
    _F("COM_CRC_ERROR", 3, 3, "CRC of the last command failed"),
    _F("ILLEGAL_COMMAND", 2, 2, "illegal command code"),
    _F("ERASE_RESET", 1, 1, "erase sequence cleared by an out-of-sequence command"),
    _F("IN_IDLE_STATE", 0, 0, "card is in idle state, running initialisation"),
))
SPI_R2_STATUS = Register("SPI_R2_STATUS", 8, "SPI response R2, second byte", "§7.3.2", (
    _F("OUT_OF_RANGE_CSD_OVERWRITE", 7, 7, "out of range, or CSD overwrite"),
    _F("ERASE_PARAM", 6, 6, "invalid selection of blocks to erase"),
    _F("WP_VIOLATION", 5, 5, "write to a write-protected block"),
    _F("CARD_ECC_FAILED", 4, 4, "internal ECC could not correct the data"),
    _F("CC_ERROR", 3, 3, "internal card controller error"),
    _F("ERROR", 2, 2, "general or unknown error"),
    _F("WP_ERASE_SKIP_LOCK_UNLOCK_FAILED", 1, 1,
       "erase skipped protected blocks, or lock/unlock command failed"),
    _F("CARD_IS_LOCKED", 0, 0, "card is locked by password"),
))
_F = _in("§7.3.3")
SPI_DATA_ERROR_TOKEN = Register("SPI_DATA_ERROR_TOKEN", 8, "SPI data error token", "§7.3.3", (
    _F("ALWAYS_0", 7, 5, "000b marks a data error token (sent instead of 0xFE)"),
    _F("CARD_IS_LOCKED", 4, 4, "card is locked"),
    _F("OUT_OF_RANGE", 3, 3, "address out of range"),
    _F("CARD_ECC_FAILED", 2, 2, "internal ECC could not correct the data"),
    _F("CC_ERROR", 1, 1, "internal card controller error"),
    _F("ERROR", 0, 0, "general or unknown error"),
))

# SPI bit        <- SD card-status bits (SPI names the same conditions; §7.3.2, §7.3.3)
# R1 PARAMETER_ERROR  <- OUT_OF_RANGE | BLOCK_LEN_ERROR  ("argument, e.g. address or block
#                        length, outside the allowed range for this card")
# R1 ADDRESS_ERROR    <- ADDRESS_ERROR                   (misaligned address)
# R1 ERASE_SEQ_ERROR  <- ERASE_SEQ_ERROR
# R1 COM_CRC_ERROR    <- COM_CRC_ERROR
# R1 ILLEGAL_COMMAND  <- ILLEGAL_COMMAND
# R1 ERASE_RESET      <- ERASE_RESET
# R1 IN_IDLE_STATE    <- the ``idle`` argument (state idle, initialisation running)
# R2 bit 7 <- OUT_OF_RANGE | CSD_OVERWRITE   R2 bit 6 <- ERASE_PARAM   bit 5 <- WP_VIOLATION
# R2 bit 4 <- CARD_ECC_FAILED   bit 3 <- CC_ERROR   bit 2 <- ERROR
# R2 bit 1 <- WP_ERASE_SKIP | LOCK_UNLOCK_FAILED     R2 bit 0 <- CARD_IS_LOCKED
# Data error token: CARD_IS_LOCKED, OUT_OF_RANGE, CARD_ECC_FAILED, CC_ERROR, ERROR.
_SPI_R1_SOURCES = (
    ("PARAMETER_ERROR", _S.OUT_OF_RANGE | _S.BLOCK_LEN_ERROR),
    ("ADDRESS_ERROR", _S.ADDRESS_ERROR),
    ("ERASE_SEQ_ERROR", _S.ERASE_SEQ_ERROR),
    ("COM_CRC_ERROR", _S.COM_CRC_ERROR),
    ("ILLEGAL_COMMAND", _S.ILLEGAL_COMMAND),
    ("ERASE_RESET", _S.ERASE_RESET),
)
_SPI_R2_SOURCES = (
    ("OUT_OF_RANGE_CSD_OVERWRITE", _S.OUT_OF_RANGE | _S.CSD_OVERWRITE),
    ("ERASE_PARAM", _S.ERASE_PARAM),
    ("WP_VIOLATION", _S.WP_VIOLATION),
    ("CARD_ECC_FAILED", _S.CARD_ECC_FAILED),
    ("CC_ERROR", _S.CC_ERROR),
    ("ERROR", _S.ERROR),
    ("WP_ERASE_SKIP_LOCK_UNLOCK_FAILED", _S.WP_ERASE_SKIP | _S.LOCK_UNLOCK_FAILED),
    ("CARD_IS_LOCKED", _S.CARD_IS_LOCKED),
)
_SPI_TOKEN_SOURCES = (
    ("CARD_IS_LOCKED", _S.CARD_IS_LOCKED),
    ("OUT_OF_RANGE", _S.OUT_OF_RANGE),
    ("CARD_ECC_FAILED", _S.CARD_ECC_FAILED),
    ("CC_ERROR", _S.CC_ERROR),
    ("ERROR", _S.ERROR),
)


def _spi_bits(cs: int, register: Register, sources: Sequence[tuple[str, int]]) -> int:
    _check_width(cs, 32, "card status")
    return _gather(cs, [(register.field(name).mask, src) for name, src in sources])


def spi_r1_from_card_status(cs: int, idle: bool) -> int:
    """The SPI R1 byte for card status ``cs``; ``idle`` sets "in idle state" (§7.3.2)."""
    r1 = _spi_bits(cs, SPI_R1, _SPI_R1_SOURCES)
    return r1 | SPI_R1.field("IN_IDLE_STATE").mask if idle else r1


def spi_r2_byte2_from_card_status(cs: int) -> int:
    """The second byte of SPI R2 (CMD13, ACMD13) for card status ``cs`` (§7.3.2)."""
    return _spi_bits(cs, SPI_R2_STATUS, _SPI_R2_SOURCES)


def spi_data_error_token_from_card_status(cs: int) -> int:
    """The data error token sent instead of a read block (§7.3.3); 0 if no bit applies."""
    return _spi_bits(cs, SPI_DATA_ERROR_TOKEN, _SPI_TOKEN_SOURCES)


ALL_REGISTERS: Mapping[str, Register] = MappingProxyType({
    r.name: r
    for r in (OCR, CID, CSD_V1, CSD_V2, SCR, SD_STATUS, CARD_STATUS, R6_STATUS,
              SWITCH_STATUS, SPI_R1, SPI_R2_STATUS, SPI_DATA_ERROR_TOKEN)
})

# --------------------------------------------------------------------------- CID/CSD builders


def crc7_register(raw128: int) -> int:
    """``raw128`` with CRC (7:1) = CRC7 over bits 127:8 and the end bit set (§5.2, §5.3)."""
    _check_width(raw128, 128, "CID/CSD")
    crc = crc7((raw128 >> 8).to_bytes(15, "big"))
    return (raw128 & ~0xFF) | (crc << 1) | 1


def register_crc_ok(raw128: int) -> bool:
    """True if the CRC7 and end bit of a CID/CSD value are right."""
    return crc7_register(raw128) == raw128


def _ascii(text: str, length: int, name: str) -> int:
    data = text.encode("ascii", errors="replace")
    if len(data) != length or not text.isascii():
        raise ValueError(f"{name} must be {length} ASCII characters, got {text!r}")
    return int.from_bytes(data, "big")


def default_cid(
    *,
    mid: int = 0x1D,
    oid: str = "SS",
    pnm: str = "SDSCP",
    prv: int = 0x10,
    psn: int = 0x5D5C0001,
    year: int = 2024,
    month: int = 1,
) -> int:
    """The emulated card's CID with CRC (§5.2).

    Default identity: MID 0x1D, OEM "SS", product "SDSCP" (sdscope), revision 1.0, serial
    0x5D5C0001, made 2024-01. Everything is a parameter, so traces are reproducible.
    """
    if not 2000 <= year <= 2255 or not 1 <= month <= 12:
        raise ValueError(f"CID date must be 2000-01 .. 2255-12, got {year}-{month:02d}")
    raw = CID.encode(
        MID=mid, OID=_ascii(oid, 2, "OID"), PNM=_ascii(pnm, 5, "PNM"), PRV=prv, PSN=psn,
        MDT=(year - 2000) << 4 | month,
    )
    return crc7_register(raw)


@dataclass(frozen=True)
class CsdInfo:
    """A built CSD and the geometry behind it."""

    raw: int  # 128 bits with CRC
    version: int  # 1 (SDSC, CSD v1.0) or 2 (SDHC/SDXC, CSD v2.0)
    exposed_bytes: int  # capacity the CSD announces (<= the image size)
    read_bl_len: int
    c_size: int
    c_size_mult: int | None  # v1 only


_GIB = 1 << 30
_V2_UNIT = 512 * 1024
_V1_MAX_BLOCKS = 4096  # C_SIZE is 12 bits

# Fixed fields. v1 (SDSC): TAAC 0x26 = 1.5 ms (Linux caps the read timeout at 100 ms anyway),
# CCC 0x5F5 = classes 0,2,4,5,6,7,8,10 as on the real XMORE card (class 6: SDSC supports
# write-protect groups, WP_GRP_SIZE 0x7F), VDD currents 5/5/5/5 as on that card.
# v2 (SDHC/SDXC): the fixed values of §5.3.3 and CCC 0x5B5 (no class 6), which reproduces the
# reference's verified 8 GiB CSD `40 0E 00 32 5B 59 00 00 3F FF 7F 80 0A 40 00`.
_CSD_COMMON = {
    "NSAC": 0, "ERASE_BLK_EN": 1, "SECTOR_SIZE": 0x7F, "R2W_FACTOR": 2,
}
_CSD_V1_FIXED = {
    **_CSD_COMMON, "CSD_STRUCTURE": 0, "TAAC": 0x26, "CCC": 0x5F5, "READ_BL_PARTIAL": 1,
    "VDD_R_CURR_MIN": 5, "VDD_R_CURR_MAX": 5, "VDD_W_CURR_MIN": 5, "VDD_W_CURR_MAX": 5,
    "WP_GRP_SIZE": 0x7F, "WP_GRP_ENABLE": 1,
}
_CSD_V2_FIXED = {
    **_CSD_COMMON, "CSD_STRUCTURE": 1, "TAAC": 0x0E, "CCC": 0x5B5, "READ_BL_LEN": 9,
    "WRITE_BL_LEN": 9,
}


def _v1_geometry(size: int, legacy_4gb: bool) -> tuple[int, int, int]:
    """(READ_BL_LEN, C_SIZE_MULT, blocks) for the smallest unit giving <= 4096 units."""
    bl_lens = (9, 10, 11) if legacy_4gb else (9, 10)
    # Units 2^(MULT+2+BL) in increasing order; on a tie READ_BL_LEN 9 comes first.
    for _, bl, mult in sorted((mult + 2 + bl, bl, mult) for bl in bl_lens for mult in range(8)):
        blocks = size >> (mult + 2 + bl)
        if blocks <= _V1_MAX_BLOCKS:
            return bl, mult, blocks
    raise ImageError(f"image of {size} bytes does not fit a CSD v1.0")


def build_csd(
    capacity_bytes: int,
    *,
    legacy_4gb: bool = False,
    high_speed: bool = False,
    perm_wp: bool = False,
    tmp_wp: bool = False,
) -> CsdInfo:
    """The CSD for an image of ``capacity_bytes`` (reference "Choosing the CSD").

    Up to 2 GiB (4 GiB with ``legacy_4gb``, READ_BL_LEN 11): v1.0 with the smallest unit
    that needs at most 4096 of them; above: v2.0 with 512 KiB units. The tail that is not a
    whole unit is not addressable (``exposed_bytes``).
    """
    size = capacity_bytes
    if size > 2 * 1024 * _GIB:
        raise ImageError(f"image is {size} bytes; cards above 2 TiB (SDUC) are not supported")
    common = {
        "TRAN_SPEED": 0x5A if high_speed else 0x32,
        "PERM_WRITE_PROTECT": int(perm_wp),
        "TMP_WRITE_PROTECT": int(tmp_wp),
    }
    if size <= 2 * _GIB or (legacy_4gb and size <= 4 * _GIB):
        bl, mult, blocks = _v1_geometry(size, legacy_4gb)
        if blocks == 0:
            raise ImageError(f"image of {size} bytes is below the smallest SDSC size, 2048 B")
        raw = CSD_V1.encode(
            _CSD_V1_FIXED, **common, READ_BL_LEN=bl, WRITE_BL_LEN=bl, C_SIZE=blocks - 1,
            C_SIZE_MULT=mult,
        )
        exposed = blocks << (mult + 2 + bl)
        return CsdInfo(crc7_register(raw), 1, exposed, bl, blocks - 1, mult)
    units = size // _V2_UNIT
    raw = CSD_V2.encode(_CSD_V2_FIXED, **common, C_SIZE=units - 1)
    return CsdInfo(crc7_register(raw), 2, units * _V2_UNIT, 9, units - 1, None)


def csd_table(raw128: int) -> Register:
    """CSD_V1 or CSD_V2, chosen by CSD_STRUCTURE (§5.3.1)."""
    structure = CSD_V1.field("CSD_STRUCTURE").get(raw128)
    if structure == 0:
        return CSD_V1
    if structure == 1:
        return CSD_V2
    raise ValueError(f"CSD_STRUCTURE {structure} (SDUC or reserved) is not supported")


def decode_csd(raw128: int) -> dict[str, int]:
    return csd_table(raw128).decode(raw128)


def csd_capacity(raw128: int) -> int:
    """Card capacity in bytes from a CSD of either version (§5.3.2, §5.3.3)."""
    table = csd_table(raw128)
    f = table.decode(raw128)
    if table is CSD_V2:
        return (f["C_SIZE"] + 1) * _V2_UNIT
    return (f["C_SIZE"] + 1) << (f["C_SIZE_MULT"] + 2 + f["READ_BL_LEN"])


# --------------------------------------------------------------------------- SCR, SD Status


def build_scr(
    *,
    sd_spec: int = 2,
    spec3: int = 1,
    spec4: int = 0,
    specx: int = 0,
    data_stat_after_erase: int = 0,
    security: int = 3,
    bus_widths: int = 0b0101,
    cmd23: bool = True,
    cmd20: bool = False,
) -> int:
    """The 64-bit SCR (§5.6). Defaults: spec 3.0x, SDHC security, 1- and 4-bit bus, CMD23.

    ``build_scr(data_stat_after_erase=1)`` is the reference's suggested `02 B5 80 02 00..`.
    """
    return SCR.encode(
        SD_SPEC=sd_spec, SD_SPEC3=spec3, SD_SPEC4=spec4, SD_SPECX=specx,
        DATA_STAT_AFTER_ERASE=data_stat_after_erase, SD_SECURITY=security,
        SD_BUS_WIDTHS=bus_widths, CMD_SUPPORT=int(cmd23) << 1 | int(cmd20),
    )


# SPEED_CLASS code for each class number (§4.10.2).
_SPEED_CLASS_CODES = {0: 0, 2: 1, 4: 2, 6: 3, 10: 4}


def build_sd_status(
    *,
    bus_width_4: bool,
    speed_class: int = 10,
    au_size: int = 9,
    card_type: int = 0,
    protected_area: int = 0,
    erase_size: int = 0,
    erase_timeout: int = 0,
    erase_offset: int = 0,
    discard: bool = False,
) -> bytes:
    """The 64-byte SD Status block of ACMD13 (§4.10.2).

    ``speed_class`` is the class number (0, 2, 4, 6, 10); ``au_size`` the AU_SIZE code
    (default 9 = 4 MB). ERASE_SIZE 0 tells the host erase timing is not given.
    """
    if speed_class not in _SPEED_CLASS_CODES:
        raise ValueError(f"speed class must be one of 0, 2, 4, 6, 10, not {speed_class}")
    raw = SD_STATUS.encode(
        DAT_BUS_WIDTH=2 if bus_width_4 else 0, SD_CARD_TYPE=card_type,
        SIZE_OF_PROTECTED_AREA=protected_area, SPEED_CLASS=_SPEED_CLASS_CODES[speed_class],
        AU_SIZE=au_size, ERASE_SIZE=erase_size, ERASE_TIMEOUT=erase_timeout,
        ERASE_OFFSET=erase_offset, DISCARD_SUPPORT=int(discard),
    )
    return SD_STATUS.to_bytes(raw)
