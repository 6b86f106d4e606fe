"""Random command sequences against a card on a real image (hypothesis stateful testing).

Whatever a host sends (any index 0-63, any argument, with or without CMD55 in front,
bad CRCs, data blocks of any length, power cycles, failing storage), the card must:
never raise, always be in a valid state, never change state on an illegal command
(§4.6.1), answer every command with the response type of the command table (§4.9), and
change the image only through written blocks it acknowledged (CRC status 010 and a busy
that ended without a storage error) or through an erase it accepted (§4.3.5).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sdmodel.card import Card, CardOptions, Reply
from sdmodel.commands import Resp, lookup
from sdmodel.registers import CardStatus
from sdmodel.states import CardState
from sdmodel.storage import Storage
from sdmodel.tokens import CrcStatus

T = TypeVar("T")
S = CardState
BLOCK = 512
IMAGE_BLOCKS = 2048  # a 1 MiB SDSC card: the whole image is compared after every step
RCA = "rca"  # argument placeholder: the card's current RCA in [31:16]
STEP_TIMEOUT_S = 10.0

# Arguments a host would plausibly send, and anything else.
ARGS = st.one_of(
    st.integers(0, 0xFFFFFFFF),
    st.builds(lambda lba: lba * BLOCK, st.integers(0, IMAGE_BLOCKS + 2)),
    st.sampled_from([0, 1, 2, 512, 0x1AA, 0x40300000, 0x00FFFFF1, 0x80FFFFF1, RCA]),
)
INDEXES = st.one_of(
    st.integers(0, 63),
    st.sampled_from([0, 3, 7, 12, 13, 16, 17, 18, 23, 24, 25, 28, 32, 33, 38, 55]),
)
CRC_OK = st.sampled_from([True] * 9 + [False])
COMMANDS = st.tuples(INDEXES, ARGS, st.booleans(), CRC_OK)
# Fill bytes of written blocks: none of them forms a valid CMD42 request, so the card is
# never locked (lock/unlock are covered by test_card_commands.py).
FILLS = st.sampled_from([0x00, 0x3C, 0x5A, 0xA5, 0xFF])


async def _cancel_other_tasks() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Transfer:
    storage: bool  # CMD17/18/24/25 (image data) rather than a register or CMD27/42/56
    offset: int  # byte address of the first block
    length: int
    done: int = 0


class CardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "card.img"
        self.path.write_bytes(b"".join(bytes([lba % 251]) * BLOCK
                                       for lba in range(IMAGE_BLOCKS)))
        self.shadow = bytearray(self.path.read_bytes())  # what the image must contain
        self.storage = Storage.open(self.path)
        self.card = Card(self.storage, CardOptions())
        self.failures = 0
        self.card.events.storage_error.connect(self._storage_failed)
        self.pending_app = False  # the last command was an answered CMD55
        self.block_len = BLOCK
        self.read: Transfer | None = None
        self.write: Transfer | None = None

    def _storage_failed(self, error: object) -> None:
        self.failures += 1

    def teardown(self) -> None:
        self.storage.faults.clear()
        self.run(self.card.wait_ready())
        self.loop.run_until_complete(_cancel_other_tasks())  # read-ahead of unfinished reads
        self.storage.close()
        self.loop.close()
        self.tmp.cleanup()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, STEP_TIMEOUT_S))

    # --- one command, checked -----------------------------------------------------------------

    async def _send(self, index: int, arg: int | str, crc_ok: bool = True) -> Reply:
        value = self.card.rca << 16 if arg == RCA else int(arg)
        before = self.card.state
        app = self.pending_app
        erase = (self.card.erase_start, self.card.erase_end)
        failures = self.failures
        reply = self.card.execute(index, value, crc_ok=crc_ok)
        assert isinstance(self.card.state, CardState)
        assert reply.state_before is before
        event(f"command in {before.label}: {reply.rejected or 'executed'}")
        if reply.rejected in ("illegal", "crc"):
            assert self.card.state is before and reply.resp is Resp.NONE
        if reply.resp is not Resp.NONE:
            command = lookup(index, app)
            assert command is not None and reply.resp is command.resp, reply
        if reply.rejected not in ("crc", "no_response"):
            self.pending_app = index == 55 and reply.resp is Resp.R1
        self._follow(reply, value)
        await self.card.wait_ready()
        if (index, reply.app, reply.state_after) == (38, False, S.PRG):
            self._erased(*erase, failed=self.failures != failures)
        return reply

    def _follow(self, reply: Reply, arg: int) -> None:
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
            self.write = Transfer(storage, arg, BLOCK)

    def _erased(self, start: int | None, end: int | None, *, failed: bool) -> None:
        assert start is not None and end is not None  # the card accepted the erase
        event("erase")
        if failed:
            return  # one storage job per erase: nothing was written
        group = self.card.wp_group_bytes()
        for lba in range(start, end + 1):
            if lba * BLOCK // group not in self.card.wp_groups:
                self.shadow[lba * BLOCK:(lba + 1) * BLOCK] = bytes(BLOCK)

    # --- rules ----------------------------------------------------------------------------------

    async def _initialise(self) -> None:
        """The Linux initialisation, up to tran (reference §8)."""
        for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0),
                           (41, 0x40300000), (2, 0), (3, 0), (7, RCA)):
            assert not (await self._send(index, arg)).rejected
        assert self.card.state is S.TRAN

    @initialize(selected=st.booleans())
    def start(self, selected: bool) -> None:
        """From idle, or already in tran."""
        if selected:
            self.run(self._initialise())

    @rule(commands=st.lists(COMMANDS, min_size=1, max_size=4))
    def command(self, commands: list[tuple[int, int | str, bool, bool]]) -> None:
        """A few commands in a row; ``app`` puts a CMD55 (own RCA) in front."""

        async def send() -> None:
            for index, arg, app, crc_ok in commands:
                if app:
                    await self._send(55, RCA)
                await self._send(index, arg, crc_ok)

        self.run(send())

    async def _write_block(self, data: bytes, crc_ok: bool) -> None:
        failures = self.failures
        status = self.card.accept_block(data, crc_ok=crc_ok)
        await self.card.wait_ready()
        transfer = self.write
        if status is CrcStatus.ACCEPTED and transfer is not None and transfer.storage:
            offset = transfer.offset + transfer.done * BLOCK
            transfer.done += 1
            if self.failures == failures:  # busy ended without a storage error
                self.shadow[offset:offset + BLOCK] = data
                event("block written")
            else:
                event("block failed in storage")

    async def _read_block(self) -> None:
        result = await self.card.read_block()
        if not result.ok:
            return
        self.card.block_sent()
        transfer = self.read
        if transfer is not None and transfer.storage:
            offset = transfer.offset + transfer.done * transfer.length
            transfer.done += 1
            assert result.data == bytes(self.shadow[offset:offset + transfer.length])
            event("image block read")

    @rule(index=st.sampled_from([17, 18, 24, 25]), lba=st.integers(0, IMAGE_BLOCKS),
          blocks=st.lists(st.tuples(FILLS, CRC_OK), max_size=3))
    def transfer(self, index: int, lba: int, blocks: list[tuple[int, bool]]) -> None:
        """A data command with a plausible SDSC (byte) address, then its blocks."""

        async def transfer() -> None:
            await self._send(index, lba * BLOCK)
            for fill, crc_ok in blocks:
                if index in (24, 25):
                    await self._write_block(bytes([fill]) * BLOCK, crc_ok)
                else:
                    await self._read_block()

        self.run(transfer())

    @rule(first=st.integers(0, IMAGE_BLOCKS), last=st.integers(0, IMAGE_BLOCKS),
          function=st.sampled_from([0, 0, 1, 2]))
    def erase(self, first: int, last: int, function: int) -> None:
        """CMD32, CMD33, CMD38 (erase, discard or FULE)."""

        async def erase() -> None:
            for index, arg in ((32, first * BLOCK), (33, last * BLOCK), (38, function)):
                await self._send(index, arg)

        self.run(erase())

    @rule(fill=FILLS, length=st.sampled_from([BLOCK, BLOCK, BLOCK, 16, 1]), crc_ok=CRC_OK)
    def write_block(self, fill: int, length: int, crc_ok: bool) -> None:
        self.run(self._write_block(bytes([fill]) * length, crc_ok))

    @rule()
    def read_block(self) -> None:
        self.run(self._read_block())

    @rule(reinitialise=st.booleans())
    def power_cycle(self, reinitialise: bool) -> None:
        self.card.power_off()
        self.run(self.card.wait_ready())
        self.card.power_on()
        self.pending_app, self.block_len, self.read, self.write = False, BLOCK, None, None
        if reinitialise:
            self.run(self._initialise())

    @rule(lba=st.integers(0, 8))
    def failing_block(self, lba: int) -> None:
        self.storage.faults.eio(lba, lba, ops=["write"])

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def image_changes_only_through_acknowledged_writes(self) -> None:
        assert not self.card.busy
        assert self.path.read_bytes() == self.shadow

    @invariant()
    def state_is_valid(self) -> None:
        assert isinstance(self.card.state, CardState)


CardMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRandomCommandSequences = CardMachine.TestCase
