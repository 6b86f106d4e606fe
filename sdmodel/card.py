"""The SD memory card: state machine, command execution and status bits.

Physical Layer spec §4.8 (state transitions), §4.10.1 (card status), chapter 5
(registers). One core serves SD mode and SPI mode: ``execute`` takes a command and
returns a :class:`Reply` describing the response, the state change and the data phase;
SD-mode timing lives in :mod:`sdmodel.sdbus`, SPI framing in :mod:`sdmodel.spi`.

Storage is asynchronous (design.md "the contract"): the command is answered at once,
a read's data comes when the backing store delivers it (long N_AC), and a written
block keeps the card busy until the backing write has completed. A block is never
acknowledged (busy released without an error bit) before it is on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sdmodel import registers as regs
from sdmodel.capacity import BLOCK_SIZE, CardType, card_type_for_size
from sdmodel.commands import Command, DataDir, Resp, SpiResp, lookup
from sdmodel.dataphase import ReadPhase, ReadResult, WritePhase
from sdmodel.events import EmitterGroup
from sdmodel.lock import LockAction, LockState, parse_lock_block
from sdmodel.registers import CardStatus
from sdmodel.states import CardState
from sdmodel.storage import Storage, StorageError
from sdmodel.tokens import CrcStatus

__all__ = ["CardOptions", "CardTiming", "Reply", "Card"]

log = logging.getLogger("sdmodel.card")

S = CardState
ERASED_CHUNK = 4 * 1024 * 1024  # bytes written per storage job while erasing

# SPI mode: states in which a card still initialising accepts a command (reference A.4).
_SPI_IDLE_COMMANDS = frozenset({(0, False), (1, False), (8, False), (55, False), (41, True),
                                (58, False), (59, False)})
# SCR SD_SECURITY per card type (§5.6): 2 = SDSC (v1.01), 3 = SDHC (v2.00), 4 = SDXC.
_SD_SECURITY = {CardType.SDSC: 2, CardType.SDHC: 3, CardType.SDXC: 4}
# Locked card: class 0 and 7, CMD16, ACMD41 and CMD55 only (§4.3.7.5 / reference §4.3).
_LOCKED_CLASSES = frozenset({0, 7})
# Commands that do not break an erase sequence (§4.3.5).
_ERASE_SEQUENCE = frozenset({32, 33, 38, 13})
# CSD bits CMD27 may change: FILE_FORMAT_GRP, COPY, PERM/TMP_WRITE_PROTECT, FILE_FORMAT
# (§5.3, bits 15:10); COPY (14) and PERM_WRITE_PROTECT (13) are one-time programmable.
_CSD_WRITABLE = 0xFC00
_CSD_OTP = (1 << 14) | (1 << 13)


@dataclass
class CardTiming:
    """Clock counts of the card's own latencies (§4.12; reference §10)."""

    n_cr: int = 2  # command end bit -> response start bit (2..64)
    n_id: int = 5  # CMD2 / ACMD41 (fixed by the spec)
    n_ac: int = 2  # read command end bit -> first data start bit, and block to block
    n_crc: int = 2  # write data end bit -> CRC status start bit
    program_clocks: int = 8  # busy after a written block when storage answers at once
    r1b_clocks: int = 4  # R1b busy of CMD7/CMD12/CMD20/CMD28/CMD29 without storage work
    spi_n_cr: int = 1  # SPI: bytes of 0xFF before R1 (reference A.6: real cards use 1)
    spi_n_ac: int = 1  # SPI: bytes of 0xFF before a data token


@dataclass
class CardOptions:
    cid: int | None = None  # 128-bit CID with CRC; None: registers.default_cid()
    psn: int = 0x5D5C0DE5  # serial number of the default CID
    first_rca: int = 0xB368  # RCA published by the first CMD3 (as in the real capture)
    high_speed: bool = True  # CMD6 group 1 function 1 (50 MHz)
    cmd23: bool = True  # SCR CMD_SUPPORT bit 33
    cmd20: bool = True  # SCR CMD_SUPPORT bit 32 (speed class control)
    erased_byte: int = 0x00  # SCR DATA_STAT_AFTER_ERASE: 0 -> 0x00, 1 -> 0xFF
    acmd41_busy_polls: int = 1  # ACMD41 answers "busy" this many times before "ready"
    legacy_4gb: bool = False  # allow the non-standard 4 GB SDSC CSD (READ_BL_LEN 11)
    dsr_imp: bool = False  # CSD DSR_IMP: CMD4 is legal only when set
    write_protect: bool = False  # mechanical write-protect switch
    timing: CardTiming = field(default_factory=CardTiming)


@dataclass(frozen=True)
class Reply:
    """What the card did with one command."""

    index: int
    arg: int
    app: bool  # taken as an application command
    command: Command | None
    resp: Resp  # SD-mode response kind (NONE: the card stays silent)
    value: int = 0  # R1/R1b/R6/R7/R3 payload, or the 128-bit CID/CSD for R2
    state_before: CardState = S.IDLE
    state_after: CardState = S.IDLE
    rejected: str = ""  # "", "crc", "illegal", "not_addressed", "no_response"
    errors: int = 0  # error bits this command itself raised (type R)
    status: int = 0  # full card status at the response (for SPI R1/R2 mapping)
    busy: bool = False  # DAT0 (SD) / MISO (SPI) busy follows the response
    data: DataDir = DataDir.NONE  # a data phase starts
    n_cr: int = 0  # clocks before the response

    @property
    def name(self) -> str:
        if self.command is None:
            return f"{'ACMD' if self.app else 'CMD'}{self.index}"
        return f"{self.command.label} {self.command.name}"


class Card:
    """An SD memory card backed by a disk image (:class:`Storage`)."""

    def __init__(self, storage: Storage, options: CardOptions | None = None) -> None:
        self.storage = storage
        self.options = options or CardOptions()
        self.events = EmitterGroup("state", "status", "registers", "busy", "storage_error")
        self.type: CardType = card_type_for_size(storage.size_bytes)
        csd = regs.build_csd(storage.size_bytes, legacy_4gb=self.options.legacy_4gb)
        self.csd: int = csd.raw
        self.capacity: int = csd.exposed_bytes  # addressable bytes (tail may be cut)
        self.block_count: int = self.capacity // BLOCK_SIZE
        if self.options.dsr_imp:
            dsr_imp = regs.csd_table(self.csd).field("DSR_IMP")
            self.csd = regs.crc7_register(dsr_imp.put(self.csd, 1))
        self.cid: int = self.options.cid if self.options.cid is not None else regs.default_cid(
            psn=self.options.psn
        )
        self.scr: int = regs.build_scr(
            data_stat_after_erase=1 if self.options.erased_byte == 0xFF else 0,
            security=_SD_SECURITY[self.type],
            cmd23=self.options.cmd23,
            cmd20=self.options.cmd20,
        )
        self.lock = LockState()
        self.wp_groups: set[int] = set()
        self.dsr = 0x0404
        self.spi = False
        self.spi_crc_on = False
        self._busy_work: asyncio.Future[None] | None = None  # done when DAT0 is released
        self._busy_reason = ""
        self.read_phase: ReadPhase | None = None
        self.write_phase: WritePhase | None = None
        self.powered = False
        self.power_on()

    # --- power and reset ------------------------------------------------------------

    def power_on(self) -> None:
        """Power-up: SD mode, idle, every volatile register at its reset value."""
        self.powered = True
        self.spi = False
        self.spi_crc_on = False
        self.lock.locked = bool(self.lock.password)  # a card with a password powers up locked
        self._reset(S.IDLE)

    def power_off(self) -> None:
        """Lose power. Programming already under way is left to finish: a block the host
        saw acknowledged is on disk, and one still in flight is not acknowledged."""
        self.powered = False
        self._abort_phase()
        self._set_state(S.IDLE, "power off")

    def _reset(self, state: CardState) -> None:
        self._abort_phase()
        self.rca = 0
        self.status = 0
        self.expect_acmd = False
        self.cmd8_seen = False
        self.hcs = False
        self.init_polls = 0
        self.init_started = False
        self.ready = False  # OCR power-up status
        self.ccs = False
        self.block_len = BLOCK_SIZE
        self.block_count_next: int | None = None  # CMD23
        self.pre_erase = 0  # ACMD23
        self.erase_start: int | None = None
        self.erase_end: int | None = None
        self.bus_width = 1
        self.functions = [0, 0, 0, 0, 0, 0]  # current function of CMD6 groups 1..6
        self.num_wr_blocks = 0
        self.card_detect_pullup = True
        self.next_rca = self.options.first_rca
        self.state = state
        self.events.state.emit(state, state, "reset")

    def _set_state(self, new: CardState, reason: str) -> None:
        old = self.state
        if new != old:
            self.state = new
            self.events.state.emit(old, new, reason)

    # --- registers --------------------------------------------------------------------

    @property
    def block_addressed(self) -> bool:
        return self.type.block_addressed

    @property
    def ocr(self) -> int:
        value = regs.OCR_VDD_WINDOW_2V7_3V6
        if self.ready:
            value |= 1 << 31
            if self.ccs:
                value |= 1 << 30
        return value

    @property
    def write_protected(self) -> bool:
        """Whole-card protection: switch, read-only image, or CSD PERM/TMP_WRITE_PROTECT."""
        table = regs.csd_table(self.csd)
        return (
            self.options.write_protect
            or self.storage.read_only
            or bool(table.field("PERM_WRITE_PROTECT").get(self.csd))
            or bool(table.field("TMP_WRITE_PROTECT").get(self.csd))
        )

    @property
    def high_speed_active(self) -> bool:
        return self.functions[0] == 1

    def current_csd(self) -> int:
        """The CSD as read now: TRAN_SPEED shows 50 MHz after the switch to HS (§4.3.10)."""
        table = regs.csd_table(self.csd)
        speed = 0x5A if self.high_speed_active else 0x32
        return regs.crc7_register(table.field("TRAN_SPEED").put(self.csd, speed))

    def sd_status(self) -> bytes:
        return regs.build_sd_status(bus_width_4=self.bus_width == 4)

    def register_values(self) -> dict[str, int | bytes]:
        """Every register as the card would send it now, for views: OCR, CID, CSD (as
        CMD9 reads it), SCR, SD_STATUS (64 bytes) and CARD_STATUS (what CMD13 returns,
        without clearing anything)."""
        return {"OCR": self.ocr, "CID": self.cid, "CSD": self.current_csd(),
                "SCR": self.scr, "SD_STATUS": self.sd_status(),
                "CARD_STATUS": self._status_word(self.state, self.expect_acmd)}

    def wp_group_bytes(self) -> int:
        table = regs.csd_table(self.csd)
        sector_blocks = table.field("SECTOR_SIZE").get(self.csd) + 1
        group_sectors = table.field("WP_GRP_SIZE").get(self.csd) + 1
        return sector_blocks * group_sectors * BLOCK_SIZE

    def _wp_groups_enabled(self) -> bool:
        return not self.block_addressed and bool(
            regs.csd_table(self.csd).field("WP_GRP_ENABLE").get(self.csd)
        )

    def _ccc(self) -> int:
        return regs.csd_table(self.csd).field("CCC").get(self.csd)

    # --- status bits (§4.10.1, reference §5.1 "exact semantics") ------------------------

    @property
    def busy(self) -> bool:
        """DAT0 held low: a written block or an erase is still being programmed."""
        return self._busy_work is not None and not self._busy_work.done()

    @property
    def busy_reason(self) -> str:
        return self._busy_reason if self.busy else ""

    @property
    def busy_future(self) -> asyncio.Future[None] | None:
        """While busy: the future that completes when DAT0 is released, else None. Wait
        for it with ``asyncio.wait``, ``asyncio.shield`` or ``SimClock.wait``, which never
        cancel it (a cancelled direct ``await`` would end busy early)."""
        return self._busy_work if self.busy else None

    async def wait_ready(self) -> None:
        """Until the card leaves busy (programming or erase finished)."""
        while (work := self.busy_future) is not None:
            await asyncio.shield(work)

    def _status_word(self, state: CardState, app: bool) -> int:
        word = self.status | (int(state) & 0xF) << 9
        if not self.busy and state not in (S.PRG,):
            word |= CardStatus.READY_FOR_DATA
        if app:
            word |= CardStatus.APP_CMD
        if self.lock.locked:
            word |= CardStatus.CARD_IS_LOCKED
        return word

    def _sent(self, word: int, mask: int) -> None:
        """Clear the B bits and the C bits that went out in a response."""
        clear = word & (regs.STATUS_CLEAR_B | regs.STATUS_CLEAR_C) & mask
        self.status &= ~clear
        self.events.status.emit(self.status)

    def raise_status(self, bits: int) -> None:
        """Error bits detected while executing (type X): seen in a later response."""
        self.status |= bits
        self.events.status.emit(self.status)

    # --- command execution ----------------------------------------------------------------

    def execute(self, index: int, arg: int, *, crc_ok: bool = True) -> Reply:
        """Receive one command; return what the card answers and what it started."""
        arg &= 0xFFFFFFFF
        state = self.state
        if not self.powered or state is S.INA:
            return Reply(index, arg, False, None, Resp.NONE, state_before=state,
                         state_after=state, rejected="no_response")
        app = self.expect_acmd
        if not crc_ok:
            # §4.6.1: not executed, no response, COM_CRC_ERROR seen by the next command.
            if not self.spi:
                self.raise_status(CardStatus.COM_CRC_ERROR)
            return Reply(index, arg, app, lookup(index, app), Resp.NONE, state_before=state,
                         state_after=state, rejected="crc",
                         status=self._status_word(state, False) | CardStatus.COM_CRC_ERROR)
        self.expect_acmd = False
        cmd = lookup(index, app)
        if cmd is not None and cmd.app != app:
            app = False  # an undefined ACMD index is taken as the normal command (§4.3.9)
        if not self._legal(cmd, index, arg, state):
            return self._illegal(index, arg, app, cmd, state)
        assert cmd is not None
        if not self.spi and cmd.addressed and (arg >> 16) != self.rca:
            return self._other_rca(index, arg, app, cmd, state)
        errors = 0
        if self.erase_start is not None and (cmd.app or index not in _ERASE_SEQUENCE):
            self.erase_start = self.erase_end = None
            errors |= CardStatus.ERASE_RESET
        if cmd.app or index not in (18, 23, 25):
            self.block_count_next = None
        handler = _HANDLERS.get((index, cmd.app), Card._cmd_default)
        result = handler(self, cmd, arg, state)
        errors |= result.errors
        next_state = result.next_state if result.next_state is not None else state
        resp = cmd.resp
        if result.silent:
            resp = Resp.NONE
        value = 0
        word = self._status_word(state, app or (index == 55 and not cmd.app)) | errors
        n_cr = self.options.timing.n_cr
        if self.spi:
            # SPI R1 carries this command's own errors; CMD13's R2 reports and clears the
            # pending status bits (reference A.3).
            if index == 13 and not cmd.app:
                self._sent(word, 0xFFFFFFFF)
        match Resp.NONE if self.spi else resp:
            case Resp.R1 | Resp.R1B:
                value = word
                self._sent(word, 0xFFFFFFFF)
            case Resp.R6:
                value = (self.rca << 16) | regs.r6_status_from_card_status(word)
                self._sent(word, 0x00C81FFF)  # R6 carries bits 23, 22, 19, 12:0 only
            case Resp.R2:
                value = result.value
                n_cr = self.options.timing.n_id if index == 2 else n_cr
            case Resp.R3:
                value = result.value
                n_cr = self.options.timing.n_id
            case Resp.R7:
                value = result.value
        if next_state != state:
            self._set_state(next_state, cmd.label)
        if cmd.index == 55 and not cmd.app:
            self.expect_acmd = True
        return Reply(index, arg, app, cmd, resp, value, state, self.state, "", errors, word,
                     result.busy, result.data, n_cr)

    def _legal(self, cmd: Command | None, index: int, arg: int, state: CardState) -> bool:
        if cmd is None:
            return False
        if self.spi:
            if cmd.spi is None:
                return False
            if state is S.IDLE and (index, cmd.app) not in _SPI_IDLE_COMMANDS:
                return False
        elif not cmd.sd:
            return False
        if self.lock.locked and not (
            cmd.cls in _LOCKED_CLASSES or index == 16 or (index == 41 and cmd.app)
            or (index == 55 and not cmd.app)
        ):
            return False
        if index in (11, 19) and not cmd.app:
            return False  # no UHS-I voltage switch or tuning modelled
        if index == 4 and not cmd.app and not self.options.dsr_imp:
            return False
        if index == 23 and not cmd.app and not self.options.cmd23:
            return False
        if index == 20 and not cmd.app and not self.options.cmd20:
            return False
        if index in (28, 29, 30) and not self._wp_groups_enabled():
            return False  # class 6 exists on SDSC only
        if index == 6 and not cmd.app and not self._ccc() & (1 << 10):
            return False
        if self.spi and index in (9, 10) and not cmd.app:
            return state is S.TRAN
        if index == 7 and not cmd.app and (arg >> 16) != self.rca:
            return state in cmd.other_rca
        if index == 55 and not cmd.app and self.spi:
            return True
        return state in cmd.transitions

    def _illegal(self, index: int, arg: int, app: bool, cmd: Command | None,
                 state: CardState) -> Reply:
        """§4.6.1: no response, no state change, ILLEGAL_COMMAND in the next response.
        SPI mode reports it at once, in this command's R1 (reference A.4)."""
        if not self.spi:
            self.raise_status(CardStatus.ILLEGAL_COMMAND)
        return Reply(index, arg, app, cmd, Resp.NONE, state_before=state, state_after=state,
                     rejected="illegal",
                     status=self._status_word(state, False) | CardStatus.ILLEGAL_COMMAND)

    def _other_rca(self, index: int, arg: int, app: bool, cmd: Command,
                   state: CardState) -> Reply:
        """A command addressed to another card: only CMD7 changes anything (deselect)."""
        if index == 7 and state in cmd.other_rca:
            self._set_state(cmd.other_rca[state], "CMD7 deselect")
        return Reply(index, arg, app, cmd, Resp.NONE, state_before=state,
                     state_after=self.state, rejected="not_addressed")

    # --- handlers: one per command that does more than its table row ----------------------

    def _cmd_default(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return _Outcome(next_state=cmd.transitions.get(state))

    def _cmd0(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        spi = self.spi
        crc_on = self.spi_crc_on
        self._reset(S.IDLE)
        if state is not S.IDLE:
            self._set_state(S.IDLE, "CMD0")
        self.spi, self.spi_crc_on = spi, crc_on
        return _Outcome(next_state=S.IDLE)

    def _cmd1(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        # SPI only: like ACMD41 with HCS = 0 (an SDHC/SDXC card then never gets ready).
        self._init_step(hcs=bool(arg & (1 << 30)))
        return _Outcome(next_state=S.TRAN if self.ready else S.IDLE)

    def _cmd2(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return _Outcome(next_state=S.IDENT, value=self.cid)

    def _cmd3(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.rca = self.next_rca
        # A repeated CMD3 publishes a new address (§4.2.2); keep it deterministic.
        self.next_rca = (self.next_rca * 0x5D + 0x3B) & 0xFFFF or 1
        return _Outcome(next_state=S.STBY)

    def _cmd4(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.dsr = arg >> 16
        return _Outcome(next_state=S.STBY)

    def _cmd6(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        mode = arg >> 31
        supported = [0x8003 if self.options.high_speed else 0x8001, 0x8001, 0x8001, 0x8001,
                     0x8001, 0x8001]
        status = regs.build_switch_status(mode=mode, arg=arg, current_functions=self.functions,
                                          supported=supported, max_current_ma=100)
        if mode == 1:
            for group, function in enumerate(regs.parse_switch_arg(arg)):
                if function != 0xF and supported[group] & (1 << function):
                    self.functions[group] = function
            self.events.registers.emit("CSD")
        return self._register_read(cmd, status)

    def _cmd7(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        nxt = cmd.transitions.get(state)
        if nxt is None:
            return _Outcome(silent=True)  # own RCA in tran/data...: not in the matrix
        if nxt is S.PRG:
            return _Outcome(next_state=S.PRG if self.busy else S.TRAN, busy=True)
        return _Outcome(next_state=nxt, busy=True)

    def _cmd8(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        vhs = (arg >> 8) & 0xF
        if vhs != 0b0001:
            return _Outcome(silent=True)  # voltage not supported: no response (§4.3.13)
        self.cmd8_seen = True
        return _Outcome(value=arg & 0xFFF)

    def _cmd9(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if self.spi:
            return self._register_read(cmd, self.current_csd().to_bytes(16, "big"))
        return _Outcome(value=self.current_csd())

    def _cmd10(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if self.spi:
            return self._register_read(cmd, self.cid.to_bytes(16, "big"))
        return _Outcome(value=self.cid)

    def _cmd12(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if state is S.DATA:
            phase = self.read_phase
            self._abort_phase()
            errors = phase.stop_errors if phase is not None else 0
            return _Outcome(next_state=S.TRAN, busy=True, errors=errors)
        # rcv: stop the write; busy until the blocks already received are programmed.
        phase = self.write_phase
        self.write_phase = None
        if phase is not None:
            phase.stopped = True
        if self.busy:
            return _Outcome(next_state=S.PRG, busy=True)  # -> tran when programming ends
        return _Outcome(next_state=S.TRAN, busy=True)

    def _cmd13(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return _Outcome()

    def _cmd15(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self._abort_phase()
        return _Outcome(next_state=S.INA)

    def _cmd16(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if not 1 <= arg <= BLOCK_SIZE:
            return _Outcome(errors=CardStatus.BLOCK_LEN_ERROR)  # length unchanged
        self.block_len = arg
        return _Outcome()

    def _read_cmd(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        """CMD17 / CMD18 (§4.3.3)."""
        length = self.block_len if not self.block_addressed else BLOCK_SIZE
        offset = arg * BLOCK_SIZE if self.block_addressed else arg
        if offset >= self.capacity:
            return _Outcome(errors=CardStatus.OUT_OF_RANGE)  # R1 sent, no data, stays tran
        if not self.block_addressed and offset % BLOCK_SIZE + length > BLOCK_SIZE:
            return _Outcome(errors=CardStatus.ADDRESS_ERROR)  # READ_BLK_MISALIGN = 0
        count = 1 if cmd.index == 17 else self.block_count_next
        self.block_count_next = None
        self.read_phase = ReadPhase.from_storage(
            self.storage, offset, length, count, self.capacity,
            on_error=self._read_failed,
        )
        return _Outcome(next_state=S.DATA, data=DataDir.READ)

    def _read_failed(self, error: StorageError) -> None:
        # An uncorrectable read: the card cannot deliver the block (§4.10.1 CARD_ECC_FAILED).
        self.raise_status(CardStatus.CARD_ECC_FAILED)
        self.events.storage_error.emit(error)

    def _cmd20(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return _Outcome(next_state=S.TRAN, busy=True)  # speed class recording: accepted

    def _cmd23(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.block_count_next = arg or None
        return _Outcome()

    def _write_cmd(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        """CMD24 / CMD25 (§4.3.4)."""
        offset = arg * BLOCK_SIZE if self.block_addressed else arg
        if offset >= self.capacity:
            return _Outcome(errors=CardStatus.OUT_OF_RANGE)
        if not self.block_addressed:
            if self.block_len != BLOCK_SIZE:
                return _Outcome(errors=CardStatus.BLOCK_LEN_ERROR)  # WRITE_BL_PARTIAL = 0
            if offset % BLOCK_SIZE:
                return _Outcome(errors=CardStatus.ADDRESS_ERROR)
        count = 1 if cmd.index == 24 else self.block_count_next
        self.block_count_next = None
        self.pre_erase = 0
        protected = self._write_blocked(offset // BLOCK_SIZE)
        if protected and not self.spi:
            return _Outcome(errors=CardStatus.WP_VIOLATION)  # not executed
        self.num_wr_blocks = 0
        self.write_phase = WritePhase(
            kind="blocks", lba=offset // BLOCK_SIZE, length=BLOCK_SIZE, count=count,
            reject=CardStatus.WP_VIOLATION if protected else 0,
        )
        return _Outcome(next_state=S.RCV, data=DataDir.WRITE)

    def _write_blocked(self, lba: int) -> bool:
        if self.write_protected:
            return True
        if self.wp_groups:
            return (lba * BLOCK_SIZE) // self.wp_group_bytes() in self.wp_groups
        return False

    def _cmd27(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.write_phase = WritePhase(kind="csd", lba=0, length=16, count=1)
        return _Outcome(next_state=S.RCV, data=DataDir.WRITE)

    def _cmd28_29(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if arg >= self.capacity:
            return _Outcome(errors=CardStatus.OUT_OF_RANGE)
        group = arg // self.wp_group_bytes()
        if cmd.index == 28:
            self.wp_groups.add(group)
        else:
            self.wp_groups.discard(group)
        return _Outcome(next_state=S.TRAN, busy=True)

    def _cmd30(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if arg >= self.capacity:
            return _Outcome(errors=CardStatus.OUT_OF_RANGE)
        first = arg // self.wp_group_bytes()
        groups = -(-self.capacity // self.wp_group_bytes())
        # First group in bit 0, as QEMU's sd_wpbits; sent MSB first.
        bits = sum(1 << i for i in range(32) if first + i < groups and first + i in self.wp_groups)
        return self._register_read(cmd, bits.to_bytes(4, "big"))

    def _erase_address(self, arg: int) -> int | None:
        lba = arg if self.block_addressed else arg // BLOCK_SIZE
        return lba if lba < self.block_count else None

    def _cmd32_33(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if cmd.index == 33 and self.erase_start is None:
            return _Outcome(errors=CardStatus.ERASE_SEQ_ERROR)
        lba = self._erase_address(arg)
        if lba is None:
            self.erase_start = self.erase_end = None
            return _Outcome(errors=CardStatus.OUT_OF_RANGE)
        if cmd.index == 32:
            self.erase_start, self.erase_end = lba, None
        else:
            self.erase_end = lba
        return _Outcome()

    def _cmd38(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        start, end = self.erase_start, self.erase_end
        self.erase_start = self.erase_end = None
        if start is None or end is None:
            return _Outcome(errors=CardStatus.ERASE_SEQ_ERROR)
        if end < start:
            return _Outcome(errors=CardStatus.ERASE_PARAM)
        if self.write_protected:
            return _Outcome(errors=CardStatus.WP_VIOLATION)
        errors = 0
        skipped = {g for g in self.wp_groups
                   if start * BLOCK_SIZE // self.wp_group_bytes() <= g
                   <= end * BLOCK_SIZE // self.wp_group_bytes()}
        if skipped:
            errors |= CardStatus.WP_ERASE_SKIP
        if arg == 1:  # discard: the data may stay (reference §9 "Erase")
            return _Outcome(next_state=S.TRAN, busy=True, errors=errors)
        ranges = self._unprotected_runs(start, end, skipped)
        self._start_busy(self._erase(ranges), "erase")
        return _Outcome(next_state=S.PRG, busy=True, errors=errors)

    def _unprotected_runs(self, start: int, end: int, skipped: set[int]) -> list[tuple[int, int]]:
        if not skipped:
            return [(start, end)]
        per_group = self.wp_group_bytes() // BLOCK_SIZE
        runs: list[tuple[int, int]] = []
        lba = start
        while lba <= end:
            group_end = min(end, (lba // per_group + 1) * per_group - 1)
            if lba // per_group not in skipped:
                if runs and runs[-1][1] == lba - 1:
                    runs[-1] = (runs[-1][0], group_end)
                else:
                    runs.append((lba, group_end))
            lba = group_end + 1
        return runs

    async def _erase(self, ranges: list[tuple[int, int]]) -> None:
        per_job = ERASED_CHUNK // BLOCK_SIZE
        pattern = bytes([self.options.erased_byte]) * ERASED_CHUNK
        for first, last in ranges:
            lba = first
            while lba <= last:
                n = min(per_job, last - lba + 1)
                await self.storage.write(lba, pattern[: n * BLOCK_SIZE])
                lba += n

    def _cmd42(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.write_phase = WritePhase(kind="lock", lba=0, length=self.block_len, count=1)
        return _Outcome(next_state=S.RCV, data=DataDir.WRITE)

    def _cmd55(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return _Outcome()  # the APP_CMD bit shows in this response; see execute()

    def _cmd56(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if arg & 1:
            return self._register_read(cmd, bytes(self.block_len))
        self.write_phase = WritePhase(kind="gen", lba=0, length=self.block_len, count=1)
        return _Outcome(next_state=S.RCV, data=DataDir.WRITE)

    def _cmd58(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return _Outcome(value=self.ocr)

    def _cmd59(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.spi_crc_on = bool(arg & 1)
        return _Outcome()

    def _acmd6(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        width = {0b00: 1, 0b10: 4}.get(arg & 0b11)
        if width is None:
            return _Outcome(errors=CardStatus.ERROR)
        self.bus_width = width
        return _Outcome()

    def _acmd13(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return self._register_read(cmd, self.sd_status())

    def _acmd22(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return self._register_read(cmd, self.num_wr_blocks.to_bytes(4, "big"))

    def _acmd23(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.pre_erase = arg & 0x7FFFFF
        return _Outcome()

    def _acmd41(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        if self.spi:
            self._init_step(hcs=bool(arg & (1 << 30)))
            return _Outcome(next_state=S.TRAN if self.ready else S.IDLE)
        window = arg & 0xFFFFFF
        if window == 0:
            return _Outcome(value=self.ocr)  # inquiry: OCR, no initialisation (§4.2.3.1)
        if not window & regs.OCR_VDD_WINDOW_2V7_3V6:
            return _Outcome(next_state=S.INA, silent=True)  # no common voltage: inactive
        self._init_step(hcs=bool(arg & (1 << 30)))
        return _Outcome(next_state=S.READY if self.ready else S.IDLE, value=self.ocr)

    def _init_step(self, *, hcs: bool) -> None:
        """One ACMD41/CMD1 poll: busy for ``acmd41_busy_polls`` polls, then ready. An
        SDHC/SDXC card gets ready only for a host that sent CMD8 and HCS (§4.2.3.1)."""
        self.init_started = True
        self.init_polls += 1
        if self.block_addressed and not (hcs and self.cmd8_seen):
            return
        if self.init_polls > self.options.acmd41_busy_polls:
            self.ready = True
            self.ccs = self.block_addressed

    def _acmd42(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        self.card_detect_pullup = bool(arg & 1)
        return _Outcome()

    def _acmd51(self, cmd: Command, arg: int, state: CardState) -> _Outcome:
        return self._register_read(cmd, self.scr.to_bytes(8, "big"))

    def _register_read(self, cmd: Command, data: bytes) -> _Outcome:
        self.read_phase = ReadPhase.from_bytes(data)
        return _Outcome(next_state=S.DATA, data=DataDir.READ)

    # --- data phases ----------------------------------------------------------------------

    async def read_block(self) -> ReadResult:
        """The next block of the current read, when the storage has delivered it."""
        phase = self.read_phase
        if phase is None or self.state is not S.DATA:
            return ReadResult(None, "no_transfer")
        return await phase.next_block()

    def read_block_now(self) -> ReadResult | None:
        """``read_block`` without waiting: None when the block is not read yet (await
        ``read_block`` then); the read-ahead usually has it."""
        phase = self.read_phase
        if phase is None or self.state is not S.DATA:
            return ReadResult(None, "no_transfer")
        return phase.next_block_now()

    def block_sent(self) -> None:
        """The framing finished sending a block: data -> tran after the last one."""
        phase = self.read_phase
        if phase is not None and phase.finished and self.state is S.DATA:
            self.read_phase = None
            self._set_state(S.TRAN, "last block sent")

    def end_transfer(self, reason: str) -> None:
        """SPI mode: end the data phase without CMD12, as after a data error token of a
        single-block read, a rejected single write block, or the Stop Tran token 0xFD
        (reference A.5). Like CMD12: tran, through prg while blocks are still programming;
        there is no R1 for the stop errors (the data error token reported them)."""
        if self.state in (S.DATA, S.RCV):
            stop = lookup(12)
            assert stop is not None
            self._set_state(self._cmd12(stop, 0, self.state).next_state or S.TRAN, reason)

    def accept_block(self, data: bytes, *, crc_ok: bool = True) -> CrcStatus | None:
        """A data block from the host. Returns the CRC status the card sends back, or None
        when the card is not receiving (it ignores the block; the host times out)."""
        phase = self.write_phase
        if phase is None or self.state is not S.RCV or self.busy:
            return None
        if phase.failed and not self.spi:
            return None  # §4.3.4: further blocks of a failed write are ignored (no status)
        if not crc_ok:
            # §4.3.4: discard the block and every further block of this write.
            phase.failed = True
            return CrcStatus.CRC_ERROR
        if phase.failed:
            return CrcStatus.WRITE_ERROR
        if len(data) != phase.length:
            phase.failed = True
            self.raise_status(CardStatus.BLOCK_LEN_ERROR)
            return CrcStatus.WRITE_ERROR
        if phase.reject:
            phase.failed = True
            self.raise_status(phase.reject)
            return CrcStatus.WRITE_ERROR
        if phase.kind != "blocks":
            return self._accept_register_block(phase, bytes(data))
        lba = phase.lba + phase.done
        if lba >= self.block_count:
            phase.failed = True
            self.raise_status(CardStatus.OUT_OF_RANGE)
            return CrcStatus.WRITE_ERROR
        if self.wp_groups and self._write_blocked(lba):
            phase.failed = True
            self.raise_status(CardStatus.WP_VIOLATION)
            return CrcStatus.WRITE_ERROR
        phase.done += 1
        last = phase.count is not None and phase.done >= phase.count
        if last:
            self.write_phase = None
        self._program(phase, lba, data)
        if last:
            self._set_state(S.PRG, "last block received")
        return CrcStatus.ACCEPTED

    def _program(self, phase: WritePhase, lba: int, data: bytes) -> None:
        """Busy until storage has the block: one write job and its callback, no task."""
        loop = asyncio.get_running_loop()
        try:
            stored = self.storage.write_soon(lba, data)
        except StorageError as error:  # refused at once: fails like a failed write
            stored = loop.create_future()
            stored.set_exception(error)
        released: asyncio.Future[None] = loop.create_future()
        self._hold_busy(released, "program")
        stored.add_done_callback(partial(self._programmed, phase, released))

    def _programmed(self, phase: WritePhase, released: asyncio.Future[None],
                    stored: asyncio.Future[None]) -> None:
        """The storage job of a block ended: count it or fail the write, then release
        DAT0 (the state moves first)."""
        cancelled = stored.cancelled()  # legacy mode only: its task ends with the loop
        error = None if cancelled else stored.exception()
        if error is None and not cancelled:
            self.num_wr_blocks += 1
        elif isinstance(error, StorageError):
            phase.failed = True
            self.raise_status(CardStatus.ERROR)
            self.events.storage_error.emit(error)
        self._release_busy(released, "program")
        if released.done():
            return
        if cancelled:
            released.cancel()
        elif error is None or isinstance(error, StorageError):
            released.set_result(None)
        else:
            released.set_exception(error)  # a bug below the card reaches the bus's wait

    def _accept_register_block(self, phase: WritePhase, data: bytes) -> CrcStatus:
        self.write_phase = None
        if phase.kind == "csd":
            self._program_csd(int.from_bytes(data, "big"))
        elif phase.kind == "lock":
            self._lock_unlock(data)
            if self.busy:  # forced erase runs in the background
                self._set_state(S.PRG, "forced erase")
                return CrcStatus.ACCEPTED
        self._set_state(S.TRAN, f"{phase.kind} block programmed")
        return CrcStatus.ACCEPTED

    def _program_csd(self, new: int) -> None:
        old = self.csd
        # Compare with the CSD as CMD9 shows it (TRAN_SPEED 0x5A after the HS switch).
        changed = (new ^ self.current_csd()) & ~0xFF  # the CRC byte is recomputed
        if changed & ~_CSD_WRITABLE or (old & ~new & _CSD_OTP):
            self.raise_status(CardStatus.CSD_OVERWRITE)
            return
        self.csd = regs.crc7_register((old & ~_CSD_WRITABLE) | (new & _CSD_WRITABLE))
        self.events.registers.emit("CSD")

    def _lock_unlock(self, data: bytes) -> None:
        request = parse_lock_block(data)
        if not self.lock.apply(request):
            self.raise_status(CardStatus.LOCK_UNLOCK_FAILED)
            return
        if request.action is LockAction.FORCE_ERASE:
            self.wp_groups.clear()
            self._start_busy(self._erase([(0, self.block_count - 1)]), "force erase")
        self.events.registers.emit("status")

    def _start_busy(self, work: Coroutine[Any, Any, None], reason: str) -> None:
        """Hold DAT0 busy while ``work`` (an erase) runs in the background."""
        self._hold_busy(asyncio.ensure_future(self._busy(work, reason)), reason)

    def _hold_busy(self, work: asyncio.Future[None], reason: str) -> None:
        self._busy_reason = reason
        self._busy_work = work
        self.events.busy.emit(True, reason)

    async def _busy(self, work: Coroutine[Any, Any, None], reason: str) -> None:
        try:
            await work
        except StorageError as error:
            self.raise_status(CardStatus.ERROR)
            self.events.storage_error.emit(error)
        finally:
            task = asyncio.current_task()
            assert task is not None
            self._release_busy(task, reason)

    def _release_busy(self, work: asyncio.Future[None], reason: str) -> None:
        """The work behind busy ended; called before ``work`` completes, so no command can
        see "not busy" while the card is still in prg (§4.8 "operation complete")."""
        if self._busy_work is work:
            if self.state is S.PRG and self.write_phase is None:
                self._set_state(S.TRAN, f"{reason} done")
            elif self.state is S.DIS:
                self._set_state(S.STBY, f"{reason} done")
            self.events.busy.emit(False, reason)

    def _abort_phase(self) -> None:
        if self.read_phase is not None:
            self.read_phase.cancel()
        self.read_phase = None
        if self.write_phase is not None:
            self.write_phase.stopped = True
        self.write_phase = None

    def spi_r1(self, reply: Reply) -> int:
        """The R1 byte of an SPI response: this command's own errors only, no stale
        bits (reference A.3, A.6 item 3); pending status goes out with CMD13's R2."""
        status = reply.errors
        if reply.rejected == "illegal":
            status |= CardStatus.ILLEGAL_COMMAND
        elif reply.rejected == "crc":
            status |= CardStatus.COM_CRC_ERROR
        idle = (reply.state_after if reply.command and reply.command.index in (0, 1, 41)
                else self.state) is S.IDLE
        return regs.spi_r1_from_card_status(status, idle)

    def spi_response(self, reply: Reply) -> bytes:
        """The full SPI response bytes for ``reply`` (R1, R1b, R2, R3 or R7)."""
        r1 = self.spi_r1(reply)
        cmd = reply.command
        kind = cmd.spi if cmd is not None and not reply.rejected else SpiResp.R1
        if kind is SpiResp.R2:
            return bytes([r1, regs.spi_r2_byte2_from_card_status(reply.status | reply.errors)])
        if kind is SpiResp.R3:
            return bytes([r1]) + self.ocr.to_bytes(4, "big")
        if kind is SpiResp.R7:
            return bytes([r1]) + (reply.arg & 0xFFF).to_bytes(4, "big")
        return bytes([r1])


@dataclass(frozen=True)
class _Outcome:
    next_state: CardState | None = None
    errors: int = 0
    value: int = 0
    busy: bool = False
    silent: bool = False
    data: DataDir = DataDir.NONE


_Handler = Callable[[Card, Command, int, CardState], _Outcome]
_HANDLERS: dict[tuple[int, bool], _Handler] = {
    (0, False): Card._cmd0,
    (1, False): Card._cmd1,
    (2, False): Card._cmd2,
    (3, False): Card._cmd3,
    (4, False): Card._cmd4,
    (6, False): Card._cmd6,
    (7, False): Card._cmd7,
    (8, False): Card._cmd8,
    (9, False): Card._cmd9,
    (10, False): Card._cmd10,
    (12, False): Card._cmd12,
    (13, False): Card._cmd13,
    (15, False): Card._cmd15,
    (16, False): Card._cmd16,
    (17, False): Card._read_cmd,
    (18, False): Card._read_cmd,
    (20, False): Card._cmd20,
    (23, False): Card._cmd23,
    (24, False): Card._write_cmd,
    (25, False): Card._write_cmd,
    (27, False): Card._cmd27,
    (28, False): Card._cmd28_29,
    (29, False): Card._cmd28_29,
    (30, False): Card._cmd30,
    (32, False): Card._cmd32_33,
    (33, False): Card._cmd32_33,
    (38, False): Card._cmd38,
    (42, False): Card._cmd42,
    (55, False): Card._cmd55,
    (56, False): Card._cmd56,
    (58, False): Card._cmd58,
    (59, False): Card._cmd59,
    (6, True): Card._acmd6,
    (13, True): Card._acmd13,
    (22, True): Card._acmd22,
    (23, True): Card._acmd23,
    (41, True): Card._acmd41,
    (42, True): Card._acmd42,
    (51, True): Card._acmd51,
}
