"""A misbehaving host, generated: hypothesis state machines drive the card in SD mode
(``Card.execute`` / ``accept_block`` / ``read_block``, as the bus would) and in SPI mode
(bytes through ``SpiCard``) with random commands and arguments, bad CRCs, missing clocks
(blocks never clocked out, frames cut short, bytes while CS# is high) and CMD0, CMD12 or
power loss in the middle of transfers, on a real image file.

Whatever the host does: no exception escapes, the card is always in a state of §4.8, the
status bits follow §4.10.1 (reference §5.1: CURRENT_STATE is the state the command was
received in, COM_CRC_ERROR and ILLEGAL_COMMAND show in the next response that carries
status and are cleared by it, APP_CMD marks CMD55 and application commands,
READY_FOR_DATA is clear in prg; in SPI mode R1 bit 7 is 0, illegal commands and CRC
errors show in their own R1, reference A.2-A.4), and the image changes only through
blocks the card acknowledged (CRC status 010 or data response 0x05, then busy released
without a storage error) or erases it accepted.

Each run generates at least 100,000 steps (``SD_STEPS`` + ``SPI_STEPS``); the counts are
printed (``-s``) and recorded (``record_property``) for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sdmodel.card import Card, Reply
from sdmodel.commands import Resp, lookup
from sdmodel.crc import command_frame, crc16
from sdmodel.registers import CardStatus, card_status_from_r6_status
from sdmodel.spi import SpiCard
from sdmodel.states import CardState
from sdmodel.storage import Storage
from sdmodel.tokens import CrcStatus

T = TypeVar("T")
S = CardState
BLOCK = 512
IMAGE_BLOCKS = 32  # a 16 KiB SDSC card: the whole image is compared after every step
RCA = "rca"  # argument placeholder: the card's current RCA in [31:16]
STEP_TIMEOUT_S = 10.0
SD_STEPS, SPI_STEPS = 70_000, 30_000  # each machine's share of the 100,000 steps a run makes
B_BITS = CardStatus.COM_CRC_ERROR | CardStatus.ILLEGAL_COMMAND  # §4.10.1 clear condition B

ARGS = st.one_of(
    st.integers(0, 0xFFFFFFFF),
    st.builds(lambda lba: lba * BLOCK, st.integers(0, IMAGE_BLOCKS + 2)),
    st.sampled_from([0, 1, 2, 16, 512, 0x1AA, 0x40300000, 0x00FFFFF1, 0x80FFFFF1, RCA]),
)
INDEXES = st.one_of(
    st.integers(0, 63),
    st.sampled_from([0, 3, 7, 12, 13, 16, 17, 18, 23, 24, 25, 28, 32, 33, 38, 55]),
)
CRC_OK = st.sampled_from([True] * 9 + [False])
LBAS = st.integers(0, IMAGE_BLOCKS + 1)


def counted(method: Callable[..., T]) -> Callable[..., T]:
    """Count each executed rule of a machine in its class's ``steps``."""

    @wraps(method)
    def step(self: Any, *args: Any, **kwargs: Any) -> T:
        type(self).steps += 1
        return method(self, *args, **kwargs)

    return step


@dataclass
class Transfer:
    """A data phase as the host sees it."""

    storage: bool  # CMD17/18/24/25: image blocks (not a register or CMD27/42/56 block)
    offset: int  # byte address of the first block (SDSC, §4.3.14)
    length: int = BLOCK
    done: int = 0
    lost: bool = False  # SPI: the host clocked part of a block without reading it

    def next_offset(self) -> int:
        return self.offset + self.done * self.length


async def _cancel_other_tasks() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class CardOnImage(RuleBasedStateMachine):
    """A card on a fresh image, its event loop, and the shadow of what the image holds."""

    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "card.img"
        self.path.write_bytes(b"".join(bytes([lba * 7 % 251]) * BLOCK
                                       for lba in range(IMAGE_BLOCKS)))
        self.shadow = bytearray(self.path.read_bytes())  # what the image must contain
        self.storage = Storage.open(self.path)
        self.card = Card(self.storage)
        self.failures = 0  # storage errors the card reported (no write happened)
        self.card.events.storage_error.connect(self._storage_failed)
        self.erase: tuple[int | None, int | None, int] | None = None  # accepted, running

    def _storage_failed(self, error: object) -> None:
        self.failures += 1

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the card's loop (card commands that start tasks run in here)."""
        return self.loop.run_until_complete(asyncio.wait_for(coro, STEP_TIMEOUT_S))


    def teardown(self) -> None:
        self.storage.faults.clear()
        self.run(self.card.wait_ready())
        self.loop.run_until_complete(_cancel_other_tasks())  # read-ahead of open reads
        self.storage.close()
        self.loop.close()
        self.tmp.cleanup()

    def programmed(self, offset: int, data: bytes, failures: int) -> None:
        """A block the card acknowledged: on disk unless storage reported a failure."""
        if self.failures == failures and 0 <= offset < IMAGE_BLOCKS * BLOCK:
            self.shadow[offset:offset + BLOCK] = data

    def erase_accepted(self, start: int | None, end: int | None) -> None:
        """CMD38 accepted the erase group ``start..end`` the card had from CMD32/CMD33."""
        self.erase = (start, end, self.failures)

    def settle(self) -> None:
        """Let programming or an erase finish."""
        if self.card.busy:
            self.run(self.card.wait_ready())
        self.erase_done()

    async def asettle(self) -> None:
        await self.card.wait_ready()
        self.erase_done()

    def erase_done(self) -> None:
        """An erase that ended without a storage error cleared its blocks, except in
        write-protected groups (§4.3.5)."""
        if self.erase is None or self.card.busy:
            return
        (start, end, failures), self.erase = self.erase, None
        if start is None or end is None or self.failures != failures:
            return
        group = self.card.wp_group_bytes()
        fill = bytes([self.card.options.erased_byte]) * BLOCK
        for lba in range(start, end + 1):
            if lba * BLOCK // group not in self.card.wp_groups:
                self.shadow[lba * BLOCK:(lba + 1) * BLOCK] = fill

    @invariant()
    def state_is_one_of_the_states_of_4_8(self) -> None:
        assert isinstance(self.card.state, CardState)

    @invariant()
    def image_changes_only_through_acknowledged_writes(self) -> None:
        self.settle()
        assert self.path.read_bytes() == self.shadow


# --- SD mode -----------------------------------------------------------------------------------

SD_FILLS = st.sampled_from([0x00, 0x3C, 0xA5, 0xFF])  # never a valid CMD42 request
INTERRUPTIONS = st.sampled_from(["cmd0", "cmd12", "cmd13", "cmd7-deselect", "power-off"])


class SdHost(CardOnImage):
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.pending_b = 0  # COM_CRC_ERROR / ILLEGAL_COMMAND waiting for the next status
        self.block_len = BLOCK
        self.read: Transfer | None = None
        self.write: Transfer | None = None

    # one command, checked against the command table and §4.10.1 ------------------------

    def send(self, index: int, arg: int | str, crc_ok: bool = True) -> Reply:
        value = self.card.rca << 16 if arg == RCA else int(arg)
        before, busy = self.card.state, self.card.busy
        erase = (self.card.erase_start, self.card.erase_end)
        reply = self.card.execute(index, value, crc_ok=crc_ok)
        assert reply.state_before is before
        if reply.rejected in ("illegal", "crc"):
            assert self.card.state is before and reply.resp is Resp.NONE  # §4.6.1
        if reply.resp is not Resp.NONE:
            command = lookup(index, reply.app)
            assert command is not None and reply.resp is command.resp  # §4.9
        self.check_status(reply, busy)
        self.follow(reply, value)
        if (index, reply.app, reply.state_after) == (38, False, S.PRG):
            self.erase_accepted(*erase)
        return reply

    def check_status(self, reply: Reply, busy: bool) -> None:
        if reply.rejected == "crc":
            self.pending_b |= CardStatus.COM_CRC_ERROR
            return
        if reply.rejected == "illegal":
            self.pending_b |= CardStatus.ILLEGAL_COMMAND
            return
        if reply.rejected:
            return  # no response at all: nothing was sent, nothing cleared
        if (reply.index, reply.app) == (0, False):
            self.pending_b = 0  # CMD0 resets the status (reference §5.1 item 6, as QEMU)
            return
        if reply.resp in (Resp.R1, Resp.R1B):
            status = reply.value
        elif reply.resp is Resp.R6:
            status = card_status_from_r6_status(reply.value & 0xFFFF)
        else:
            return  # R2/R3/R7 or silence carry no status: B bits stay pending
        assert status & B_BITS == self.pending_b, f"{reply.name}: 0x{status:08X}"
        self.pending_b = 0
        assert (status >> 9) & 0xF == int(reply.state_before)  # the state it was received in
        if reply.state_before is S.PRG or busy:
            assert not status & CardStatus.READY_FOR_DATA  # programming: no buffer free
        if reply.resp is not Resp.R6:
            app_cmd = reply.app or reply.index == 55
            assert bool(status & CardStatus.APP_CMD) == app_cmd
        assert not status & CardStatus.CARD_IS_LOCKED

    def follow(self, reply: Reply, arg: int) -> None:
        """Track block length and data phases the way a host sees them."""
        index = reply.index
        if reply.rejected or reply.resp is Resp.NONE:
            if index == 0 and not reply.rejected:
                self.block_len, self.read, self.write = BLOCK, None, None
            return
        if (index, reply.app) == (16, False) and not reply.errors & CardStatus.BLOCK_LEN_ERROR:
            self.block_len = arg
        storage = index in (17, 18, 24, 25) and not reply.app
        if reply.data.value == "read":
            self.read = Transfer(storage, arg, self.block_len)
        elif reply.data.value == "write":
            self.write = Transfer(storage, arg)

    # data ---------------------------------------------------------------------------------

    async def write_block(self, data: bytes, crc_ok: bool = True) -> CrcStatus | None:
        failures, transfer = self.failures, self.write
        status = self.card.accept_block(data, crc_ok=crc_ok)
        await self.card.wait_ready()
        self.acknowledged(transfer, status, data, failures)
        return status

    def acknowledged(self, transfer: Transfer | None, status: CrcStatus | None, data: bytes,
                     failures: int) -> None:
        """CRC status 010 and busy ended: an image block is on disk (unless storage failed)."""
        if status is CrcStatus.ACCEPTED and transfer is not None and transfer.storage:
            self.programmed(transfer.next_offset(), data, failures)
            transfer.done += 1

    async def read_block(self) -> None:
        result = await self.card.read_block()
        if not result.ok:
            return
        self.card.block_sent()
        transfer = self.read
        if transfer is not None and transfer.storage:
            offset = transfer.next_offset()
            transfer.done += 1
            assert result.data == bytes(self.shadow[offset:offset + transfer.length])

    async def initialise(self) -> None:
        """The Linux initialisation up to tran (reference §8)."""
        for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0),
                           (41, 0x40300000), (2, 0), (3, 0), (7, RCA)):
            assert not self.send(index, arg).rejected
        assert self.card.state is S.TRAN

    # rules --------------------------------------------------------------------------------

    @initialize(selected=st.booleans())
    def start(self, selected: bool) -> None:
        if selected:
            self.run(self.initialise())

    @rule(commands=st.lists(st.tuples(INDEXES, ARGS, st.booleans(), CRC_OK), min_size=1,
                            max_size=3))
    @counted
    def commands(self, commands: list[tuple[int, int | str, bool, bool]]) -> None:
        """Random commands; ``app`` puts a CMD55 with the card's RCA in front."""

        async def send() -> None:
            for index, arg, app, crc_ok in commands:
                if app:
                    self.send(55, RCA)
                self.send(index, arg, crc_ok)
                await self.asettle()

        self.run(send())

    @rule(index=st.sampled_from([17, 18, 24, 25]), lba=LBAS,
          blocks=st.lists(st.tuples(SD_FILLS, CRC_OK), max_size=3))
    @counted
    def transfer(self, index: int, lba: int, blocks: list[tuple[int, bool]]) -> None:
        """A data command with a plausible SDSC (byte) address, then its blocks."""

        async def transfer() -> None:
            self.send(index, lba * BLOCK)
            for fill, crc_ok in blocks:
                if index in (24, 25):
                    await self.write_block(bytes([fill]) * BLOCK, crc_ok)
                else:
                    await self.read_block()

        self.run(transfer())

    @rule(first=LBAS, last=LBAS, function=st.sampled_from([0, 0, 1, 2]))
    @counted
    def erase(self, first: int, last: int, function: int) -> None:
        """CMD32, CMD33, CMD38 (erase, discard or FULE)."""

        async def erase() -> None:
            for index, arg in ((32, first * BLOCK), (33, last * BLOCK), (38, function)):
                self.send(index, arg)
            await self.asettle()

        self.run(erase())

    @rule(fill=SD_FILLS, length=st.sampled_from([BLOCK, BLOCK, 16, 1]), crc_ok=CRC_OK)
    @counted
    def write_block_rule(self, fill: int, length: int, crc_ok: bool) -> None:
        self.run(self.write_block(bytes([fill]) * length, crc_ok))

    @rule()
    @counted
    def read_block_rule(self) -> None:
        self.run(self.read_block())

    @precondition(lambda self: self.card.state is S.RCV and self.write is not None)
    @rule(fill=SD_FILLS, interruption=INTERRUPTIONS)
    @counted
    def interrupted_programming(self, fill: int, interruption: str) -> None:
        """A block is accepted, storage hangs, and the host interrupts the busy card:
        busy (DAT0 low) lasts until the block is on disk, whatever the host sends, and the
        block is written (reference Part C: a write is durable once accepted)."""

        async def scenario() -> None:
            self.storage.faults.hang()
            failures, transfer = self.failures, self.write
            data = bytes([fill]) * BLOCK
            status = self.card.accept_block(data)
            programming = status is CrcStatus.ACCEPTED and transfer is not None \
                and transfer.storage
            self.interrupt(interruption)
            assert isinstance(self.card.state, CardState)
            assert self.card.busy == programming  # DAT0 stays low whatever the host sent
            self.storage.faults.release()
            await self.card.wait_ready()
            self.acknowledged(transfer, status, data, failures)

        self.run(scenario())

    @precondition(lambda self: self.card.state is S.DATA)
    @rule(interruption=INTERRUPTIONS)
    @counted
    def clock_stopped_in_a_read(self, interruption: str) -> None:
        """The card starts sending a block, the host stops the clock before its end bit
        (the bus never reports it sent) and interrupts: the card goes on from the next
        block, or stops, and its state stays one of §4.8."""

        async def scenario() -> None:
            result = await self.card.read_block()  # on the wire, never finished
            transfer = self.read
            if result.ok and transfer is not None and transfer.storage:
                offset = transfer.next_offset()
                assert result.data == bytes(self.shadow[offset:offset + transfer.length])
                transfer.done += 1
            self.interrupt(interruption)

        self.run(scenario())

    def interrupt(self, interruption: str) -> None:
        match interruption:
            case "cmd0":
                self.send(0, 0)
            case "cmd12":
                self.send(12, 0)
            case "cmd13":
                self.send(13, RCA)
            case "cmd7-deselect":
                self.send(7, 0)
            case "power-off":
                self.card.power_off()
                self.card.power_on()
                self.pending_b, self.block_len, self.read, self.write = 0, BLOCK, None, None

    @rule(initialise=st.booleans())
    @counted
    def power_cycle(self, initialise: bool) -> None:
        self.interrupt("power-off")
        if initialise:
            self.run(self.initialise())

    @rule(lba=st.integers(0, 8))
    @counted
    def failing_block(self, lba: int) -> None:
        self.storage.faults.eio(lba, lba, ops=["write"])

    @rule()
    @counted
    def idle_bus(self) -> None:
        """No clock at all for a while: nothing may change."""
        state, status = self.card.state, self.card.status
        self.run(asyncio.sleep(0))
        assert (self.card.state, self.card.status) == (state, status)


# --- SPI mode ----------------------------------------------------------------------------------

SPI_FILLS = st.sampled_from([0x00, 0x3C, 0xC3, 0xF0, 0x99])  # block and CRC16 bytes never
# start a command (01xxxxxx) or form a token (0xFC-0xFE), and no fill is a CMD42 request
SAFE_BYTES = st.sampled_from([b for b in range(256)
                              if not 0x40 <= b <= 0x7F and b not in (0xFC, 0xFD, 0xFE)])
FILL = 0xFF
NCR_BYTES = 9  # the response comes within 8 bytes of fill (reference A.2)
# Bytes after R1 (reference A.3): R2 for CMD13/ACMD13, R3 for CMD58, R7 for CMD8.
RESPONSE_TAIL = {(13, False): 1, (13, True): 1, (58, False): 4, (8, False): 4}
R1B = frozenset({12, 28, 29, 38})  # R1 then busy (reference A.3)
POLL_LIMIT = 2000  # bytes a host clocks waiting for a token or for busy to end
SPI_ILLEGAL = frozenset({2, 3, 4, 7, 11, 15, 19})  # reference A.4 (not after CMD55)
R1_CRC_ERROR, R1_ILLEGAL = 0x08, 0x04  # R1 bits (reference A.3)
R1_ERRORS = 0x7C  # parameter, address, erase sequence, CRC, illegal (not idle, erase reset)


class SpiHost(CardOnImage):
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.spi = SpiCard(self.card)
        self.spi.select(True)
        self.spi_mode = False  # the card took a CMD0 with CS# low (A.1)
        self.crc_on = False  # CMD59(1) accepted
        self.app = False  # the last executed command was CMD55
        self.block_len = BLOCK
        self.read: Transfer | None = None
        self.write: Transfer | None = None
        self.multi = False

    def teardown(self) -> None:
        self.spi.close()
        super().teardown()

    async def clock(self, mosi: bytes) -> bytes:
        return await self.spi.transfer(mosi)

    async def until_not_busy(self) -> None:
        for _ in range(POLL_LIMIT):
            if (await self.clock(bytes([FILL])))[0] != 0x00:
                return
        raise AssertionError("the card stayed busy")

    async def command(self, frame: bytes, sent: int = 0) -> int | None:
        """Clock a 6-byte frame (its first ``sent`` bytes went out already), then 0xFF until
        the R1 and the bytes of its response type, then the busy of an R1b, as a driver
        does (A.3); returns the R1, or None when the card does not answer."""
        index, arg = frame[0] & 0x3F, int.from_bytes(frame[1:5], "big")
        crc_good = frame == command_frame(index, arg)
        checked = self.crc_on or index in (0, 8)  # A.2: CMD0 and CMD8 are always checked
        erase = (self.card.erase_start, self.card.erase_end)
        app, before = self.app, self.card.state
        self.spi.select(True)
        await self.clock(frame[sent:])
        answer = None
        for _ in range(NCR_BYTES):
            byte = (await self.clock(bytes([FILL])))[0]
            if byte != FILL:
                answer = byte
                break
        if not self.spi_mode:
            if not (index == 0 and crc_good):
                assert answer is None  # SD mode: the card only listens for that CMD0 (A.1)
                return None
            self.spi_mode = True
        assert answer is not None and not answer & 0x80  # R1 bit 7 is always 0 (A.3)
        if checked and not crc_good:
            assert answer & R1_CRC_ERROR
            return answer
        if index in SPI_ILLEGAL and not app:
            assert answer & R1_ILLEGAL  # A.4
        self.app = index == 55 and not app and not answer & R1_ILLEGAL
        if not answer & R1_ILLEGAL:
            await self.clock(bytes([FILL]) * RESPONSE_TAIL.get((index, app), 0))
            if index in R1B and not app:
                await self.until_not_busy()
        self.follow(index, arg, answer, before)
        if index == 38 and not answer & R1_ERRORS and arg != 1:  # erase (not discard)
            self.erase_accepted(*erase)
        return answer

    def follow(self, index: int, arg: int, r1: int, before: CardState) -> None:
        """Track CRC checking, block length and data phases the way a host sees them. A
        data phase starts from tran only (§4.8); whether a command opened one (an R1 of 0
        does not say) is read from the card's state."""
        if r1 & R1_ERRORS:
            return  # not executed (ERASE_RESET alone is status, not an error: §4.10.1)
        if index in (0, 12):
            self.read = self.write = None
        if index == 0:
            self.block_len = BLOCK
        if index == 59:
            self.crc_on = bool(arg & 1)
        if index == 16:
            self.block_len = arg
        if before is not S.TRAN or self.card.state not in (S.DATA, S.RCV):
            return
        if index in (17, 18):
            self.read, self.write = Transfer(True, arg, self.block_len), None
        elif index in (24, 25):
            self.read, self.write, self.multi = None, Transfer(True, arg), index == 25
        elif self.card.state is S.RCV:
            self.read, self.write, self.multi = None, Transfer(False, 0), False  # CMD27/42/56
        else:
            self.read = Transfer(False, 0)  # a register read

    async def initialise(self) -> None:
        """elm-chan / Linux mmc_spi: CMD0, CMD8, CMD55+ACMD41 until ready (A.6)."""
        self.spi.select(True)
        assert await self.command(command_frame(0, 0)) == 0x01
        assert await self.command(command_frame(8, 0x1AA)) == 0x01
        for _ in range(10):
            await self.command(command_frame(55, 0))
            if await self.command(command_frame(41, 0x40000000)) == 0x00:
                return
        raise AssertionError("not ready after 10 ACMD41")

    # rules --------------------------------------------------------------------------------

    @initialize(ready=st.booleans())
    def start(self, ready: bool) -> None:
        if ready:
            self.run(self.initialise())

    @rule(commands=st.lists(st.tuples(INDEXES, ARGS, st.booleans(), CRC_OK), min_size=1,
                            max_size=3))
    @counted
    def commands(self, commands: list[tuple[int, int | str, bool, bool]]) -> None:
        async def send() -> None:
            for index, arg, app, crc_ok in commands:
                value = 0 if arg == RCA else int(arg)
                if app:
                    await self.command(command_frame(55, 0))
                frame = command_frame(index, value)
                await self.command(frame if crc_ok else frame[:5] + bytes([frame[5] ^ 0x02]))

        self.run(send())

    @rule(index=st.sampled_from([17, 18, 24, 25]), lba=LBAS)
    @counted
    def data_command(self, index: int, lba: int) -> None:
        self.run(self.command(command_frame(index, lba * BLOCK)))

    @rule(index=INDEXES, arg=st.integers(0, 0xFFFFFFFF), keep=st.integers(1, 5),
          deselect=st.booleans())
    @counted
    def frame_cut_short(self, index: int, arg: int, keep: int, deselect: bool) -> None:
        """The host stops clocking inside a frame (and may raise CS# meanwhile, clocking
        bytes the card must not see), then clocks 0xFF: the card sees the frame's first
        bytes completed by 0xFF."""

        async def scenario() -> None:
            frame = command_frame(index, arg)
            await self.clock(frame[:keep])
            if deselect:
                self.spi.select(False)
                await self.clock(bytes([FILL, 0x51, 0x00]))  # not seen (A.6 item 5)
                self.spi.select(True)
            await self.command(frame[:keep] + bytes([FILL]) * (6 - keep), sent=keep)

        self.run(scenario())

    @rule(fill=SPI_FILLS, multi=st.booleans(), crc_ok=CRC_OK)
    @counted
    def write_block(self, fill: int, multi: bool, crc_ok: bool) -> None:
        """Start token, 512 bytes, CRC16, then the data response and busy (A.5)."""

        async def scenario() -> None:
            data = bytes([fill]) * BLOCK
            crc = crc16(data) if crc_ok or not self.crc_on else crc16(data) ^ 0x0101
            token = 0xFC if multi else 0xFE
            failures = self.failures
            miso = await self.clock(bytes([FILL, token]) + data + crc.to_bytes(2, "big")
                                    + bytes([FILL]))
            response = miso[-1]
            await self.until_not_busy()
            transfer = self.write
            if response & 0x1F == 0x05 and transfer is not None:
                assert multi == self.multi  # only the right token starts a block (A.5)
                if transfer.storage:
                    self.programmed(transfer.next_offset(), data, failures)
                transfer.done += 1
                if not multi:
                    self.write = None
            elif response & 0x1F in (0x0B, 0x0D) and not self.multi:
                self.write = None  # a rejected single block ends the write

        self.run(scenario())

    @rule()
    @counted
    def stop_tran(self) -> None:
        async def scenario() -> None:
            await self.clock(bytes([0xFD, FILL]))
            await self.until_not_busy()
            if self.multi:
                self.write = None

        self.run(scenario())

    @rule(limit=st.sampled_from([4, 64, POLL_LIMIT]))
    @counted
    def read_block(self, limit: int) -> None:
        """Clock 0xFF until a start token (or give up after ``limit`` bytes), then the
        block and its CRC16 (A.5). An image block must be one of the blocks the read
        covers, from the next one the host expects on (a block whose start it missed while
        clocking other bytes is skipped), with a correct CRC16."""

        async def scenario() -> None:
            transfer = self.read
            for _ in range(limit):
                byte = (await self.clock(bytes([FILL])))[0]
                if byte == 0xFE:
                    break
                if byte != FILL:
                    if transfer is not None:
                        transfer.lost = True  # inside a block or an error token
                    return
            else:
                return
            if transfer is None or not transfer.storage or transfer.lost:
                return  # a register block, or the host lost track: nothing to compare
            length = transfer.length
            raw = await self.clock(bytes([FILL]) * (length + 2))
            data = raw[:length]
            assert int.from_bytes(raw[length:], "big") == crc16(data)
            ahead = range(transfer.done, (IMAGE_BLOCKS * BLOCK - transfer.offset) // length)
            expected = [k for k in ahead if data == self.shadow[
                transfer.offset + k * length:transfer.offset + (k + 1) * length]]
            assert expected, f"block read at {transfer.next_offset()} is not on the image"
            transfer.done = expected[0] + 1

        self.run(scenario())

    @rule(garbage=st.lists(SAFE_BYTES, min_size=1, max_size=24), deselected=st.booleans())
    @counted
    def garbage(self, garbage: list[int], deselected: bool) -> None:
        """Bytes that are neither a command start nor a token, with CS# high or low."""

        async def scenario() -> None:
            self.spi.select(not deselected)
            await self.clock(bytes(garbage))
            self.spi.select(True)

        self.run(scenario())

    @rule(initialise=st.booleans())
    @counted
    def power_cycle(self, initialise: bool) -> None:
        self.spi.close()
        self.card.power_off()
        self.card.power_on()
        self.spi = SpiCard(self.card)
        self.spi.select(True)
        self.spi_mode = self.crc_on = self.app = False
        self.block_len, self.read, self.write = BLOCK, None, None
        if initialise:
            self.run(self.initialise())

    @rule()
    @counted
    def crc_on_off(self) -> None:
        self.run(self.command(command_frame(59, 0 if self.crc_on else 1)))


# --- the runs ----------------------------------------------------------------------------------


MACHINE_SETTINGS = settings(max_examples=200, stateful_step_count=100, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.filter_too_much])


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("machine", "steps"), [(SdHost, SD_STEPS), (SpiHost, SPI_STEPS)],
                         ids=["sd", "spi"])
def test_a_misbehaving_host_never_breaks_the_card(
        machine: type[CardOnImage], steps: int,
        record_property: Callable[[str, object], None]) -> None:
    """Rounds of 200 generated examples (about 90 steps each) until the machine's share of
    the steps is reached."""
    machine.steps = 0
    while machine.steps < steps:
        run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    print(f"reliability: {machine.__name__}: {machine.steps} generated steps")
    record_property("generated_steps", machine.steps)
