"""Fixtures for the card tests: real image files, a card on them, and a harness that
brings the card to any state of the §4.8 state diagram with real commands.

``async def`` tests in this folder run on a fresh asyncio loop each (no pytest-asyncio):
the card starts storage jobs and busy tasks, which need a running loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdmodel.card import Card, CardOptions, Reply
from sdmodel.commands import Resp
from sdmodel.dataphase import ReadResult
from sdmodel.registers import card_status_from_r6_status
from sdmodel.states import CardState
from sdmodel.storage import Storage, StorageOptions
from sdmodel.tokens import CrcStatus

__all__ = ["BLOCK", "SIZES", "CardHarness", "block_pattern"]

BLOCK = 512
MIB = 1024 * 1024
GIB = 1024 * MIB
# One image size per card type (sparse files: only the written blocks use disk space).
SIZES = {"SDSC": 64 * MIB, "SDHC": 4 * GIB, "SDXC": 64 * GIB}
PATTERN_BLOCKS = 64  # blocks 0..63 of every image hold block_pattern(lba)
ASYNC_TEST_TIMEOUT_S = 30.0
S = CardState

# ACMD41 argument of a 3.3 V host with HCS, as mainline Linux sends it (reference §3).
ACMD41_HCS = 0x40300000


def block_pattern(lba: int) -> bytes:
    """Distinct, position-dependent content of block ``lba`` (no two blocks alike)."""
    return bytes((lba * 7 + i * 13 + (i >> 8)) & 0xFF for i in range(BLOCK))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on their own event loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), ASYNC_TEST_TIMEOUT_S))
    return True


class CardHarness:
    """A card on a real image file, driven through ``Card.execute`` like a host would."""

    def __init__(self, card: Card, storage: Storage, path: Path) -> None:
        self.card = card
        self.storage = storage
        self.path = path

    # --- commands -------------------------------------------------------------------------

    @property
    def rca_arg(self) -> int:
        """Argument of an addressed command: the card's RCA in [31:16]."""
        return self.card.rca << 16

    def addr(self, lba: int) -> int:
        """Data address of block ``lba``: bytes on SDSC, blocks on SDHC/SDXC (§4.3.14)."""
        return lba if self.card.block_addressed else lba * BLOCK

    def cmd(self, index: int, arg: int = 0, *, crc_ok: bool = True) -> Reply:
        return self.card.execute(index, arg, crc_ok=crc_ok)

    def acmd(self, index: int, arg: int = 0) -> Reply:
        """CMD55 (own RCA) then ``index``: the reply to the second command."""
        self.cmd(55, self.rca_arg)
        return self.cmd(index, arg)

    def status(self) -> int:
        """Card status from the next response that carries it, using a command that is
        legal in the current state: CMD55 in idle, CMD2+CMD3 (R6) in ready (moves the card
        to stby), CMD3 (R6) in ident, CMD13 in stby..dis."""
        state = self.card.state
        if state is S.IDLE:
            reply = self.cmd(55, 0)
        elif state in (S.READY, S.IDENT):
            if state is S.READY:
                assert self.cmd(2).resp is Resp.R2
            reply = self.cmd(3)
            assert reply.resp is Resp.R6
            return card_status_from_r6_status(reply.value & 0xFFFF)
        else:
            reply = self.cmd(13, self.rca_arg)
        assert reply.resp is Resp.R1, f"no status response in {state.label}: {reply}"
        return reply.value

    # --- bring-up (§4.2, §4.8) ---------------------------------------------------------------

    def init(self, *, hcs: bool = True, polls: int = 10) -> Reply:
        """CMD0, CMD8, then CMD55/ACMD41 until the OCR says ready; the last R3."""
        self.cmd(0)
        assert self.cmd(8, 0x1AA).value == 0x1AA
        for _ in range(polls):
            reply = self.acmd(41, ACMD41_HCS if hcs else ACMD41_HCS & ~(1 << 30))
            if reply.value >> 31:
                return reply
        raise AssertionError(f"card not ready after {polls} ACMD41 polls")

    async def to_state(self, state: CardState) -> None:
        """Bring the card from power-on to ``state`` with real commands."""
        path = {S.READY: S.IDLE, S.IDENT: S.READY, S.STBY: S.IDENT, S.TRAN: S.STBY,
                S.DATA: S.TRAN, S.RCV: S.TRAN, S.PRG: S.TRAN, S.DIS: S.PRG, S.INA: S.STBY}
        if state is not S.IDLE:
            await self.to_state(path[state])
        match state:
            case S.IDLE:
                self.cmd(0)
            case S.READY:
                self.init()
            case S.IDENT:
                self.cmd(2)
            case S.STBY:
                self.cmd(3)
            case S.TRAN:
                self.cmd(7, self.rca_arg)
            case S.DATA:
                self.cmd(18, self.addr(0))  # a multiple-block read, open-ended
            case S.RCV:
                self.cmd(25, self.addr(0))  # a multiple-block write, open-ended
            case S.PRG:
                self.storage.faults.hang()  # programming stays in flight
                self.cmd(24, self.addr(0))
                assert self.card.accept_block(bytes(BLOCK)) is CrcStatus.ACCEPTED
            case S.DIS:
                self.cmd(7, 0)  # deselect while programming
            case S.INA:
                self.cmd(15, self.rca_arg)
        assert self.card.state is state, f"wanted {state.label}, card is {self.card.state.label}"

    # --- data -------------------------------------------------------------------------------

    async def read(self) -> ReadResult:
        """The next block of the current read, marked as sent on the bus."""
        result = await self.card.read_block()
        if result.ok:
            self.card.block_sent()
        return result

    async def write(self, data: bytes, *, crc_ok: bool = True) -> CrcStatus | None:
        """One block to the card, then wait until its programming has finished."""
        status = self.card.accept_block(data, crc_ok=crc_ok)
        await self.card.wait_ready()
        return status

    async def settle(self) -> None:
        """Release a storage hang and let programming finish."""
        self.storage.faults.release()
        await asyncio.wait_for(self.card.wait_ready(), 10)

    def file_blocks(self, lba: int, count: int = 1) -> bytes:
        """Blocks read straight from the image file with plain open()."""
        with open(self.path, "rb") as image:
            image.seek(lba * BLOCK)
            return image.read(count * BLOCK)


def make_image(path: Path, size: int) -> Path:
    """A sparse image of ``size`` bytes whose first blocks hold ``block_pattern``."""
    with open(path, "wb") as image:
        image.truncate(size)
        image.write(b"".join(block_pattern(lba) for lba in range(PATTERN_BLOCKS)))
    return path


@pytest.fixture
def make_card(tmp_path: Path) -> Iterator[Callable[..., CardHarness]]:
    """``make_card("SDHC", size=None, read_only=False, **CardOptions)``: a powered card on
    a fresh image in tmp_path; its storage is closed after the test."""
    opened: list[Storage] = []

    def make(kind: str = "SDSC", *, size: int | None = None, read_only: bool = False,
             **options: Any) -> CardHarness:
        path = make_image(tmp_path / f"{kind.lower()}-{len(opened)}.img", size or SIZES[kind])
        if read_only:
            path.chmod(0o444)
        storage = Storage.open(path, StorageOptions())
        opened.append(storage)
        return CardHarness(Card(storage, CardOptions(**options)), storage, path)

    yield make
    for storage in opened:
        storage.faults.release()
        storage.close()


@pytest.fixture(params=sorted(SIZES))
def kind(request: pytest.FixtureRequest) -> str:
    """Each card type in turn: SDHC, SDSC, SDXC."""
    return str(request.param)
