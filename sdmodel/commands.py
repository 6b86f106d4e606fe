"""The SD command table (Physical Layer spec §4.7.3 classes, §4.7.4 commands, §4.8 states).

One row per command: index, name, class, type, SD- and SPI-mode response kinds, the
states that accept it with the state it leads to, its data phase and its argument
fields. The card model, the SPI framing, the decoder, the views and the lessons all
read this table; nothing else hard-codes a response type or a legal state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from sdmodel.states import CardState

__all__ = [
    "CmdType",
    "Resp",
    "SpiResp",
    "DataDir",
    "ArgField",
    "Command",
    "COMMANDS",
    "APP_COMMANDS",
    "SECURITY_APP_INDEXES",
    "lookup",
    "command_name",
]

S = CardState


class CmdType(str, Enum):
    """Command types, §4.7.3."""

    BC = "bc"  # broadcast, no response
    BCR = "bcr"  # broadcast with response
    AC = "ac"  # addressed, no data
    ADTC = "adtc"  # addressed, data transfer on DAT


class Resp(str, Enum):
    """SD-mode response kinds, §4.9."""

    NONE = "none"
    R1 = "R1"
    R1B = "R1b"
    R2 = "R2"
    R3 = "R3"
    R6 = "R6"
    R7 = "R7"

    @property
    def bits(self) -> int:
        return {"none": 0, "R2": 136}.get(self.value, 48)

    @property
    def has_crc(self) -> bool:
        """R3 carries all-ones instead of a CRC7 (§4.9.3)."""
        return self not in (Resp.NONE, Resp.R3)

    @property
    def busy(self) -> bool:
        return self is Resp.R1B


class SpiResp(str, Enum):
    """SPI-mode response formats (§7.3.2; reference Part 2 A.3)."""

    R1 = "R1"
    R1B = "R1b"
    R2 = "R2"
    R3 = "R3"
    R7 = "R7"

    @property
    def nbytes(self) -> int:
        return {"R1": 1, "R1b": 1, "R2": 2, "R3": 5, "R7": 5}[self.value]


class DataDir(str, Enum):
    NONE = "none"
    READ = "read"  # card -> host
    WRITE = "write"  # host -> card


@dataclass(frozen=True)
class ArgField:
    name: str
    msb: int
    lsb: int
    meaning: str

    def get(self, arg: int) -> int:
        return (arg >> self.lsb) & ((1 << (self.msb - self.lsb + 1)) - 1)


@dataclass(frozen=True)
class Command:
    index: int
    name: str
    cls: int
    type: CmdType
    resp: Resp
    # state -> next state for the card addressed by the command (§4.8 matrix).
    transitions: Mapping[CardState, CardState]
    summary: str
    section: str = "§4.7.4"
    app: bool = False
    spi: SpiResp | None = None  # None: illegal in SPI mode
    sd: bool = True  # False: exists in SPI mode only (CMD1, CMD58, CMD59)
    data: DataDir = DataDir.NONE
    # Fixed length of a register-style data block (CMD6 64 bytes, ACMD51 8...); None = block length.
    data_len: int | None = None
    args: tuple[ArgField, ...] = ()
    addressed: bool = False  # argument [31:16] is the RCA in SD mode
    # CMD7 with another RCA (or 0): the deselect transitions of §4.8.
    other_rca: Mapping[CardState, CardState] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{'ACMD' if self.app else 'CMD'}{self.index}"

    def describe_arg(self, arg: int) -> str:
        if not self.args:
            return f"0x{arg:08X}"
        return ", ".join(f"{a.name}=0x{a.get(arg):X}" for a in self.args)


_RCA = ArgField("RCA", 31, 16, "relative card address")
_ADDR = ArgField("ADDRESS", 31, 0, "data address: bytes on SDSC, 512-byte blocks on SDHC/SDXC")

# State sets used by many rows (§4.8).
_ADDRESSED = (S.STBY, S.TRAN, S.DATA, S.RCV, S.PRG, S.DIS)


def _same(*states: CardState) -> dict[CardState, CardState]:
    return {s: s for s in states}


def _tran_to(state: CardState) -> dict[CardState, CardState]:
    return {S.TRAN: state}


_ROWS: tuple[Command, ...] = (
    # --- class 0, basic (§4.7.4 table 4-21) ---
    Command(0, "GO_IDLE_STATE", 0, CmdType.BC, Resp.NONE,
            {s: S.IDLE for s in CardState if s is not S.INA},
            "reset every card to idle (with CS# low: enter SPI mode)", "§4.2.1", spi=SpiResp.R1),
    Command(1, "SEND_OP_COND", 0, CmdType.BCR, Resp.NONE, {S.IDLE: S.IDLE},
            "SPI mode only: start initialisation (MMC-style)", "§7.3.1.3", spi=SpiResp.R1,
            sd=False),
    Command(2, "ALL_SEND_CID", 0, CmdType.BCR, Resp.R2, {S.READY: S.IDENT},
            "every card in ready sends its CID", "§4.2.3"),
    Command(3, "SEND_RELATIVE_ADDR", 0, CmdType.BCR, Resp.R6, {S.IDENT: S.STBY, S.STBY: S.STBY},
            "card publishes a new relative address (RCA)", "§4.2.3"),
    Command(4, "SET_DSR", 0, CmdType.BC, Resp.NONE, _same(S.STBY),
            "program the driver stage register", "§4.7.4",
            args=(ArgField("DSR", 31, 16, "driver stage register value"),)),
    Command(6, "SWITCH_FUNC", 10, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "check (mode 0) or switch (mode 1) card functions; 64-byte status on DAT", "§4.3.10",
            spi=SpiResp.R1, data=DataDir.READ, data_len=64,
            args=(ArgField("MODE", 31, 31, "0 = check, 1 = switch"),
                  ArgField("GROUP6", 23, 20, "reserved group"),
                  ArgField("GROUP5", 19, 16, "reserved group"),
                  ArgField("GROUP4", 15, 12, "power limit"),
                  ArgField("GROUP3", 11, 8, "driver strength"),
                  ArgField("GROUP2", 7, 4, "command system"),
                  ArgField("GROUP1", 3, 0, "access mode / bus speed"))),
    Command(7, "SELECT_DESELECT_CARD", 0, CmdType.AC, Resp.R1B, {S.STBY: S.TRAN, S.DIS: S.PRG},
            "select the card with this RCA, deselect every other", "§4.3.1",
            args=(_RCA,), addressed=True,
            other_rca={S.STBY: S.STBY, S.TRAN: S.STBY, S.DATA: S.STBY, S.PRG: S.DIS}),
    Command(8, "SEND_IF_COND", 0, CmdType.BCR, Resp.R7, {S.IDLE: S.IDLE},
            "interface condition: supply voltage and check pattern, echoed in R7", "§4.3.13",
            spi=SpiResp.R7,
            args=(ArgField("VHS", 11, 8, "supply voltage (0001b = 2.7-3.6 V)"),
                  ArgField("CHECK_PATTERN", 7, 0, "echoed back (0xAA recommended)"))),
    Command(9, "SEND_CSD", 0, CmdType.AC, Resp.R2, _same(S.STBY),
            "card sends its CSD (SPI mode: as a 16-byte data block)", "§4.7.4",
            spi=SpiResp.R1, args=(_RCA,), addressed=True, data_len=16),
    Command(10, "SEND_CID", 0, CmdType.AC, Resp.R2, _same(S.STBY),
            "card sends its CID (SPI mode: as a 16-byte data block)", "§4.7.4",
            spi=SpiResp.R1, args=(_RCA,), addressed=True, data_len=16),
    Command(11, "VOLTAGE_SWITCH", 0, CmdType.AC, Resp.R1, _same(S.READY),
            "switch signalling to 1.8 V (UHS-I, only after S18A)", "§4.2.4"),
    Command(12, "STOP_TRANSMISSION", 0, CmdType.AC, Resp.R1B, {S.DATA: S.TRAN, S.RCV: S.PRG},
            "stop a multiple-block read or write", "§4.3.3", spi=SpiResp.R1B),
    Command(13, "SEND_STATUS", 0, CmdType.AC, Resp.R1, _same(*_ADDRESSED),
            "card sends its status register", "§4.10.1", spi=SpiResp.R2,
            args=(_RCA, ArgField("SEND_TASK_STATUS", 15, 15, "1 = task status (command queue)")),
            addressed=True),
    Command(15, "GO_INACTIVE_STATE", 0, CmdType.AC, Resp.NONE, dict.fromkeys(_ADDRESSED, S.INA),
            "send the addressed card to inactive (until power cycle)", "§4.7.4",
            args=(_RCA,), addressed=True),
    # --- class 2 block read, class 4 block write (§4.3.3, §4.3.4) ---
    Command(16, "SET_BLOCKLEN", 2, CmdType.AC, Resp.R1, _same(S.TRAN),
            "set the block length (SDSC reads, CMD42)", "§4.3.2", spi=SpiResp.R1,
            args=(ArgField("BLOCK_LENGTH", 31, 0, "block length in bytes"),)),
    Command(17, "READ_SINGLE_BLOCK", 2, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "read one block", "§4.3.3", spi=SpiResp.R1, data=DataDir.READ, args=(_ADDR,)),
    Command(18, "READ_MULTIPLE_BLOCK", 2, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "read blocks until CMD12 (or the CMD23 count)", "§4.3.3", spi=SpiResp.R1,
            data=DataDir.READ, args=(_ADDR,)),
    Command(19, "SEND_TUNING_BLOCK", 2, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "64-byte tuning pattern (SDR50/SDR104 only)", "§4.2.4.5", data=DataDir.READ,
            data_len=64),
    Command(20, "SPEED_CLASS_CONTROL", 2, CmdType.AC, Resp.R1B, _tran_to(S.PRG),
            "speed class recording control", "§4.3.15",
            args=(ArgField("SCC", 31, 28, "speed class control code"),)),
    Command(23, "SET_BLOCK_COUNT", 2, CmdType.AC, Resp.R1, _same(S.TRAN),
            "block count for the next CMD18/CMD25", "§4.3.3",
            args=(ArgField("BLOCK_COUNT", 31, 0, "number of blocks"),)),
    Command(24, "WRITE_BLOCK", 4, CmdType.ADTC, Resp.R1, _tran_to(S.RCV),
            "write one block", "§4.3.4", spi=SpiResp.R1, data=DataDir.WRITE, args=(_ADDR,)),
    Command(25, "WRITE_MULTIPLE_BLOCK", 4, CmdType.ADTC, Resp.R1, _tran_to(S.RCV),
            "write blocks until CMD12 (or the CMD23 count)", "§4.3.4", spi=SpiResp.R1,
            data=DataDir.WRITE, args=(_ADDR,)),
    Command(27, "PROGRAM_CSD", 4, CmdType.ADTC, Resp.R1, _tran_to(S.RCV),
            "program the writable bits of the CSD (16-byte block)", "§4.3.4", spi=SpiResp.R1,
            data=DataDir.WRITE, data_len=16),
    # --- class 6 write protection (SDSC only) ---
    Command(28, "SET_WRITE_PROT", 6, CmdType.AC, Resp.R1B, _tran_to(S.PRG),
            "set the write-protect bit of the group holding the address", "§4.3.6",
            spi=SpiResp.R1B, args=(_ADDR,)),
    Command(29, "CLR_WRITE_PROT", 6, CmdType.AC, Resp.R1B, _tran_to(S.PRG),
            "clear the write-protect bit of the group holding the address", "§4.3.6",
            spi=SpiResp.R1B, args=(_ADDR,)),
    Command(30, "SEND_WRITE_PROT", 6, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "32 write-protect bits, one per group from the address", "§4.3.6",
            spi=SpiResp.R1, data=DataDir.READ, data_len=4, args=(_ADDR,)),
    # --- class 5 erase ---
    Command(32, "ERASE_WR_BLK_START", 5, CmdType.AC, Resp.R1, _same(S.TRAN),
            "first block of the erase range", "§4.3.5", spi=SpiResp.R1, args=(_ADDR,)),
    Command(33, "ERASE_WR_BLK_END", 5, CmdType.AC, Resp.R1, _same(S.TRAN),
            "last block of the erase range", "§4.3.5", spi=SpiResp.R1, args=(_ADDR,)),
    Command(38, "ERASE", 5, CmdType.AC, Resp.R1B, _tran_to(S.PRG),
            "erase the selected range (DAT0 busy until done)", "§4.3.5", spi=SpiResp.R1B,
            args=(ArgField("FUNCTION", 31, 0, "0 = erase, 1 = discard, 2 = FULE"),)),
    # --- class 7 lock card ---
    Command(42, "LOCK_UNLOCK", 7, CmdType.ADTC, Resp.R1, _tran_to(S.RCV),
            "set/clear password, lock/unlock, force erase (data block sized by CMD16)", "§4.3.7",
            spi=SpiResp.R1, data=DataDir.WRITE),
    # --- class 8 application specific ---
    Command(55, "APP_CMD", 8, CmdType.AC, Resp.R1,
            _same(S.IDLE, S.STBY, S.TRAN, S.DATA, S.RCV, S.PRG, S.DIS),
            "the next command is an application command (ACMD)", "§4.3.9", spi=SpiResp.R1,
            args=(_RCA,), addressed=True),
    Command(56, "GEN_CMD", 8, CmdType.ADTC, Resp.R1, {S.TRAN: S.DATA},
            "general-purpose data block (bit 0: 1 = read from card, 0 = write)", "§4.3.9",
            spi=SpiResp.R1, data=DataDir.READ,
            args=(ArgField("RD_WR", 0, 0, "1 = read from the card, 0 = write to it"),)),
    # --- SPI mode only (§7.3.1.3) ---
    Command(58, "READ_OCR", 0, CmdType.BCR, Resp.NONE, _same(*CardState),
            "SPI mode: read the OCR (R3)", "§7.3.1.3", spi=SpiResp.R3, sd=False,
            args=(ArgField("HCS", 30, 30, "host capacity support (ignored)"),)),
    Command(59, "CRC_ON_OFF", 0, CmdType.BCR, Resp.NONE, _same(*CardState),
            "SPI mode: turn command/data CRC checking on (1) or off (0)", "§7.3.1.3",
            spi=SpiResp.R1, sd=False,
            args=(ArgField("CRC_OPTION", 0, 0, "1 = CRC checking on"),)),
)

# Application commands, each after CMD55 (§4.3.9, table 4-32).
_APP_ROWS: tuple[Command, ...] = (
    Command(6, "SET_BUS_WIDTH", 8, CmdType.AC, Resp.R1, _same(S.TRAN),
            "data bus width: 0 = 1 bit, 2 = 4 bits", "§4.3.9", app=True,
            args=(ArgField("BUS_WIDTH", 1, 0, "00b = 1 bit, 10b = 4 bits"),)),
    Command(13, "SD_STATUS", 8, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "64-byte SD Status on DAT", "§4.10.2", app=True, spi=SpiResp.R2,
            data=DataDir.READ, data_len=64),
    Command(22, "SEND_NUM_WR_BLOCKS", 8, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "number of blocks written without error (4 bytes)", "§4.3.9", app=True,
            spi=SpiResp.R1, data=DataDir.READ, data_len=4),
    Command(23, "SET_WR_BLK_ERASE_COUNT", 8, CmdType.AC, Resp.R1, _same(S.TRAN),
            "number of blocks to pre-erase before the next CMD25", "§4.3.9", app=True,
            spi=SpiResp.R1,
            args=(ArgField("NUMBER_OF_BLOCKS", 22, 0, "blocks to pre-erase"),)),
    Command(41, "SD_SEND_OP_COND", 8, CmdType.BCR, Resp.R3, {S.IDLE: S.READY},
            "start/poll initialisation; R3 carries the OCR (busy bit 31)", "§4.2.3.1", app=True,
            spi=SpiResp.R1,
            args=(ArgField("HCS", 30, 30, "host supports SDHC/SDXC"),
                  ArgField("XPC", 28, 28, "SDXC power control"),
                  ArgField("S18R", 24, 24, "request 1.8 V signalling"),
                  ArgField("VDD_WINDOW", 23, 0, "OCR voltage window (0 = inquiry)"))),
    Command(42, "SET_CLR_CARD_DETECT", 8, CmdType.AC, Resp.R1, _same(S.TRAN),
            "connect (1) or disconnect (0) the DAT3 pull-up", "§4.3.9", app=True,
            spi=SpiResp.R1, args=(ArgField("SET_CD", 0, 0, "1 = connect the pull-up"),)),
    Command(51, "SEND_SCR", 8, CmdType.ADTC, Resp.R1, _tran_to(S.DATA),
            "8-byte SCR on DAT", "§5.6", app=True, spi=SpiResp.R1, data=DataDir.READ,
            data_len=8),
)

COMMANDS: dict[int, Command] = {c.index: c for c in _ROWS}
APP_COMMANDS: dict[int, Command] = {c.index: c for c in _APP_ROWS}

# Indexes reserved for SD security after CMD55: rejected as illegal (QEMU sd_app_command).
SECURITY_APP_INDEXES = frozenset({18, 25, 26, 38, 43, 44, 45, 46, 47, 48, 49})


def lookup(index: int, app: bool = False) -> Command | None:
    """The command a card takes for ``index``; after CMD55 an undefined ACMD index falls
    back to the normal command (§4.3.9), except the security indexes."""
    if app:
        if index in APP_COMMANDS:
            return APP_COMMANDS[index]
        if index in SECURITY_APP_INDEXES:
            return None
    return COMMANDS.get(index)


def command_name(index: int, app: bool = False) -> str:
    """``"CMD17 READ_SINGLE_BLOCK"``-style label; unknown indexes keep their number."""
    cmd = lookup(index, app)
    prefix = "ACMD" if app and cmd is not None and cmd.app else "CMD"
    return f"{prefix}{index} {cmd.name}" if cmd else f"{'ACMD' if app else 'CMD'}{index}"
