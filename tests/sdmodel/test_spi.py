"""SPI mode byte by byte (Physical Layer spec chapter 7; reference Part 2 A).

Each test is a host on a ``SpiCard``: CS#, then MOSI bytes, checking the MISO bytes the
reference and the real captures (A.7) show. ``host.command`` returns the MISO bytes
clocked after a command frame: N_CR (one 0xFF), then the response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sdmodel.card import Card, CardOptions
from sdmodel.clock import SimClock
from sdmodel.crc import command_frame, crc16
from sdmodel.heartbeat import LoopHeartbeat
from sdmodel.spi import BlockingSpiCard, SpiCard
from sdmodel.states import CardState
from sdmodel.storage import Storage, StorageOptions
from sdmodel.tokens import SpiToken
from sdmodel.trace import Trace

T = TypeVar("T")
S = CardState
BLOCK = 512
FF = b"\xff"
SIGROK = b"Sigrok rocks" + bytes(500)  # block 15 of the CMD17/CMD24 captures (A.7)
HCS = 1 << 30


def content(lba: int) -> bytes:
    return lba.to_bytes(4, "big") * (BLOCK // 4)


def frame(index: int, arg: int = 0, crc: int | None = None) -> bytes:
    """A command frame; ``crc`` replaces the correct CRC7 byte."""
    correct = command_frame(index, arg)
    return correct if crc is None else correct[:5] + bytes([crc])


def with_crc(data: bytes, *, good: bool = True) -> bytes:
    return data + (crc16(data) ^ (0 if good else 0xFFFF)).to_bytes(2, "big")


@pytest.fixture
def sdsc(tmp_path: Path) -> Path:
    """A 1 MiB SDSC card (byte addresses); block n holds ``content(n)``."""
    path = tmp_path / "sdsc.img"
    path.write_bytes(b"".join(content(lba) for lba in range(2048)))
    return path


@pytest.fixture
def sdhc(tmp_path: Path) -> Path:
    """A sparse 4 GiB SDHC card (block addresses): blocks 0..63 hold ``content(n)``, block
    15 the captures' "Sigrok rocks" block."""
    path = tmp_path / "sdhc.img"
    with open(path, "wb") as f:
        f.write(b"".join(SIGROK if lba == 15 else content(lba) for lba in range(64)))
        f.truncate(4 << 30)
    return path


def block_on_disk(path: Path, lba: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(lba * BLOCK)
        return f.read(BLOCK)


@dataclass
class Host:
    spi: SpiCard

    @property
    def card(self) -> Card:
        return self.spi.card

    def addr(self, lba: int) -> int:
        return lba if self.card.block_addressed else lba * BLOCK

    async def xfer(self, mosi: bytes) -> bytes:
        return await self.spi.transfer(mosi)

    async def command(self, index: int, arg: int = 0, *, crc: int | None = None,
                      read: int = 2) -> bytes:
        return (await self.xfer(frame(index, arg, crc) + FF * read))[6:]

    async def r1(self, index: int, arg: int = 0, *, crc: int | None = None) -> int:
        response = await self.command(index, arg, crc=crc)
        assert response[0] == 0xFF  # N_CR = 1 byte (A.6 item 2)
        return response[1]

    async def init(self, *, hcs: bool = True) -> None:
        """CMD0, CMD8, ACMD41 until ready (A.6 canonical flow)."""
        assert await self.r1(0) == 0x01
        assert await self.command(8, 0x1AA, read=6) == bytes.fromhex("FF 01 00 00 01 AA")
        for _ in range(10):
            assert await self.r1(55) == 0x01
            if await self.r1(41, HCS if hcs else 0) == 0x00:
                return
        raise AssertionError("ACMD41 never left idle")

    async def poll(self, limit: int = 100_000) -> tuple[int, int]:
        """(0xFF bytes, first other byte), one byte at a time as a driver polls."""
        for fills in range(limit):
            byte = (await self.xfer(FF))[0]
            if byte != 0xFF:
                return fills, byte
        raise AssertionError(f"only 0xFF in {limit} bytes")

    async def busy(self, limit: int = 100_000) -> int:
        """Count 0x00 busy bytes until the card shows 0xFF."""
        for count in range(limit):
            byte = (await self.xfer(FF))[0]
            if byte == 0xFF:
                return count
            assert byte == 0x00
        raise AssertionError(f"still busy after {limit} bytes")

    async def read_block(self, nbytes: int = BLOCK) -> bytes:
        """Token wait, then the block; checks N_AC >= 1 and the CRC16 (A.6 item 4)."""
        fills, token = await self.poll()
        assert (fills >= 1, token) == (True, 0xFE)
        block = await self.xfer(FF * (nbytes + 2))
        assert block[nbytes:] == crc16(block[:nbytes]).to_bytes(2, "big")
        return block[:nbytes]


def run(path: Path, scenario: Callable[[Host], Awaitable[T]], *,
        storage_options: StorageOptions | None = None, trace: Trace | None = None,
        clock: SimClock | None = None, **options: Any) -> T:
    """Run ``scenario`` on a fresh card for ``path`` with CS# low."""

    async def main() -> T:
        storage = Storage.open(path, storage_options)
        spi = SpiCard(Card(storage, CardOptions(**options)), trace, clock)
        try:
            spi.select(True)
            return await scenario(Host(spi))
        finally:
            spi.close()
            storage.close()

    return asyncio.run(main())


# --- mode entry and initialisation (A.1, A.4, A.6) ----------------------------------------

def test_before_spi_entry_every_byte_reads_0xff_and_only_cmd0_with_crc_enters(sdsc: Path
                                                                               ) -> None:
    async def scenario(host: Host) -> None:
        ignored = FF * 10 + frame(8, 0x1AA) + FF * 8 + frame(0, crc=0x01) + FF * 8
        assert await host.xfer(ignored) == FF * len(ignored)
        assert not host.card.spi
        assert await host.command(0, read=3) == bytes([0xFF, 0x01, 0xFF])
        assert host.card.spi

    run(sdsc, scenario)


def test_bytes_clocked_with_cs_high_are_not_seen(sdsc: Path) -> None:
    async def scenario(host: Host) -> None:
        host.spi.select(False)
        assert await host.xfer(frame(0) + FF * 8) == FF * 14
        assert not host.card.spi
        host.spi.select(True)
        assert await host.r1(0) == 0x01

    run(sdsc, scenario)


def test_cmd8_answers_r7_with_the_echo(sdhc: Path) -> None:
    async def scenario(host: Host) -> None:
        assert await host.r1(0) == 0x01
        assert await host.command(8, 0x1AA, read=7) == bytes.fromhex("FF 01 00 00 01 AA FF")

    run(sdhc, scenario)


def test_cmd8_and_cmd0_crc_is_checked_even_with_crc_off(sdhc: Path) -> None:
    async def scenario(host: Host) -> None:
        assert await host.r1(0) == 0x01
        assert await host.command(8, 0x1AA, crc=0x01, read=6) == bytes.fromhex(
            "FF 09 FF FF FF FF")  # idle + COM CRC error, no R7 payload, not executed
        assert not host.card.cmd8_seen
        assert await host.r1(0, crc=0x01) == 0x09

    run(sdhc, scenario)


@pytest.mark.parametrize("crc", [0x01, 0x95, 0xFF])
def test_other_commands_take_any_crc_byte_while_crc_is_off(sdsc: Path, crc: int) -> None:
    async def scenario(host: Host) -> None:  # A.6 item 9: elm-chan 0x01, XMORE host 0x95
        assert await host.r1(0) == 0x01
        assert await host.r1(55, crc=crc) == 0x01
        assert await host.r1(41, crc=crc) == 0x01
        assert await host.r1(55, crc=crc) == 0x01
        assert await host.r1(41, crc=crc) == 0x00
        assert await host.command(58, crc=crc, read=6) == bytes.fromhex("FF 00 80 FF 80 00")

    run(sdsc, scenario)


@pytest.mark.parametrize("busy_polls", [0, 1, 3])
def test_acmd41_with_hcs_leaves_idle_after_the_busy_polls(sdhc: Path, busy_polls: int) -> None:
    async def scenario(host: Host) -> list[tuple[int, int]]:
        assert await host.r1(0) == 0x01
        await host.command(8, 0x1AA, read=6)
        answers = []
        while not answers or answers[-1][1]:
            answers.append((await host.r1(55), await host.r1(41, HCS)))
        return answers

    assert run(sdhc, scenario, acmd41_busy_polls=busy_polls) == (
        [(0x01, 0x01)] * busy_polls + [(0x01, 0x00)])


@pytest.mark.parametrize("image, ready_ocr", [("sdsc", "80 FF 80 00"), ("sdhc", "C0 FF 80 00")])
def test_cmd58_reads_the_ocr_and_ccs_after_init(request: pytest.FixtureRequest, image: str,
                                                ready_ocr: str) -> None:
    async def scenario(host: Host) -> None:
        assert await host.r1(0) == 0x01
        assert await host.command(58, read=6) == bytes.fromhex("FF 01 00 FF 80 00")  # idle
        await host.init()
        assert await host.command(58, HCS, read=6) == bytes.fromhex("FF 00 " + ready_ocr)

    run(request.getfixturevalue(image), scenario)


def test_cmd1_initialises_an_sdsc_card_like_the_xmore_capture(sdsc: Path) -> None:
    async def scenario(host: Host) -> None:
        # A.7: 0x95 as CRC on every command, ACMD41(0) busy, then CMD1 ready.
        answers = [await host.r1(index, arg, crc=0x95)
                   for index, arg in [(0, 0), (55, 0), (41, 0), (1, 0), (59, 0), (16, 512)]]
        assert answers == [0x01, 0x01, 0x01, 0x00, 0x00, 0x00]
        assert await host.r1(9, crc=0x95) == 0x00
        assert await host.read_block(16) == host.card.current_csd().to_bytes(16, "big")

    run(sdsc, scenario)


@pytest.mark.parametrize("index", [9, 13, 17, 24, 16])
def test_an_idle_card_rejects_other_commands_with_r1_0x05(sdsc: Path, index: int) -> None:
    async def scenario(host: Host) -> None:
        assert await host.r1(0) == 0x01
        assert await host.command(index, read=4) == bytes.fromhex("FF 05 FF FF")
        assert host.card.state is S.IDLE

    run(sdsc, scenario)


@pytest.mark.parametrize("index, arg", [(5, 0), (52, 0x00000C00), (52, 0x88000C08)])
def test_sdio_probes_are_illegal_and_the_card_stays_usable(sdsc: Path, index: int,
                                                           arg: int) -> None:
    async def scenario(host: Host) -> None:  # A.4, A.6 item 10
        assert await host.r1(0) == 0x01
        assert await host.r1(index, arg) == 0x05
        await host.init()
        assert await host.r1(index, arg) == 0x04
        assert host.card.state is S.TRAN
        assert await host.r1(17, host.addr(9)) == 0x00
        assert await host.read_block() == content(9)

    run(sdsc, scenario)


# --- reads (A.5, A.7) -------------------------------------------------------------------

def test_cmd17_exchange_has_the_shape_of_the_real_capture(sdhc: Path) -> None:
    async def scenario(host: Host) -> None:
        await host.init()
        # The capture's host: dummy CRC 0x01, then 0x00 on MOSI while it reads N_CR and R1.
        miso = await host.xfer(bytes.fromhex("51 00 00 00 0F 01 00 00"))
        assert miso == FF * 6 + FF + b"\x00"  # N_CR one byte, R1 0x00
        fills, token = await host.poll()
        assert fills >= 1 and token == 0xFE
        assert await host.xfer(FF * 514) == SIGROK + bytes.fromhex("29 1D")
        assert await host.xfer(FF * 4) == FF * 4
        assert host.card.state is S.TRAN

    run(sdhc, scenario)


def test_cmd18_puts_fill_between_blocks_and_cmd12_sends_a_stuff_byte(sdsc: Path) -> None:
    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(18, host.addr(20)) == 0x00
        assert [await host.read_block() for _ in range(3)] == [content(20 + n) for n in range(3)]
        miso = await host.xfer(frame(12) + FF * 3)
        assert miso[6:] == bytes.fromhex("FF FF 00")  # stuff byte, N_CR, R1 (A.6 item 7)
        assert await host.busy() <= 8  # short busy
        assert host.card.state is S.TRAN

    run(sdsc, scenario)


def test_cmd12_while_the_next_block_starts_is_one_command_token(sdsc: Path) -> None:
    """The card starts the next CMD18 block (0xFE on MISO) during CMD12's bytes: the trace
    shows one CMD12 token whatever MISO carries, not a split one with the block's info."""
    trace = Trace()

    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(18, host.addr(20)) == 0x00
        await host.read_block()
        while (reading := host.spi.waiting_on()) is not None:
            await asyncio.wait((reading,))  # the next block is ready: it starts at once
        miso = await host.xfer(frame(12) + FF * 3)
        assert 0xFE in miso[:6]  # the block did start under the command
        host.spi.flush_trace()

    run(sdsc, scenario, trace=trace)
    runs = [t for t in trace if isinstance(t, SpiToken)]
    cmd12 = [t for t in runs if t.info.get("index") == 12]
    assert len(cmd12) == 1 and cmd12[0].what == "cmd" and len(cmd12[0].mosi or b"") == 6
    assert "dir" not in cmd12[0].info and "nbytes" not in cmd12[0].info


def test_cmd18_past_the_end_sends_0x08_and_cmd12_reports_the_out_of_range(sdsc: Path) -> None:
    async def scenario(host: Host) -> None:
        await host.init()
        last = host.card.block_count - 1
        assert await host.r1(18, host.addr(last)) == 0x00
        assert await host.read_block() == content(last)
        assert (await host.poll())[1] == 0x08  # data error token: out of range
        assert await host.xfer(FF * 8) == FF * 8  # nothing more until CMD12
        assert (await host.xfer(frame(12) + FF * 3))[6:] == bytes.fromhex("FF FF 40")
        assert host.card.state is S.TRAN

    run(sdsc, scenario)


REGISTERS: dict[str, tuple[list[int], int, int, int, Callable[[Card, bytes], bool]]] = {
    # name: (commands, arg, response bytes, data bytes, check of the data); A.3 table
    "CMD9 CSD": ([9], 0, 1, 16, lambda card, data: data == card.current_csd().to_bytes(16, "big")),
    "CMD10 CID": ([10], 0, 1, 16, lambda card, data: data == card.cid.to_bytes(16, "big")),
    "ACMD51 SCR": ([55, 51], 0, 1, 8, lambda card, data: data == card.scr.to_bytes(8, "big")),
    "ACMD13 SD status": ([55, 13], 0, 2, 64, lambda card, data: data == card.sd_status()),
    "ACMD22 written blocks": ([55, 22], 0, 1, 4, lambda card, data: data == bytes(4)),
    # §4.3.10: bits 511:496 maximum current (100 mA), 415:400 group 1 support (SDR12, HS)
    "CMD6 switch status": ([6], 0x00FFFFF1, 1, 64,
                           lambda card, data: (data[:2], data[12:14]) == (b"\0\x64", b"\x80\x03")),
}


@pytest.mark.parametrize("name", list(REGISTERS))
def test_register_reads_come_as_data_blocks_after_one_fill_byte(sdsc: Path, name: str) -> None:
    commands, arg, response_bytes, nbytes, check = REGISTERS[name]

    async def scenario(host: Host) -> None:
        await host.init()
        if commands[0] == 55:
            assert await host.r1(55) == 0x00
        response = await host.command(commands[-1], arg, read=1 + response_bytes)
        assert response == b"\xff" + bytes(response_bytes)  # R1 0x00 (R2: 00 00)
        miso = await host.xfer(FF * (nbytes + 4))
        assert miso[:2] == b"\xff\xfe"  # N_CX = 1, as on the XMORE card
        data = miso[2:2 + nbytes]
        assert miso[2 + nbytes:] == crc16(data).to_bytes(2, "big")
        assert check(host.card, data)
        assert host.card.state is S.TRAN

    run(sdsc, scenario)


# --- writes (A.5, A.7) ------------------------------------------------------------------

def test_cmd24_takes_the_token_right_after_r1_and_answers_0x05_then_busy(sdhc: Path) -> None:
    data = bytes(range(256)) * 2

    async def scenario(host: Host) -> None:
        await host.init()
        # The capture's host: N_WR = 0, the token in the byte after R1; CRC bytes FF FF.
        miso = await host.xfer(bytes.fromhex("58 00 00 00 0F 01 00 00 FE") + data + FF * 3)
        assert miso[:8] == FF * 7 + b"\x00"  # N_CR, R1
        assert miso[8:-1] == FF * 515  # token, data, CRC: the card only listens
        assert miso[-1] == 0x05  # data response in the very next byte (A.6 item 6)
        assert await host.busy() >= 1
        assert host.card.state is S.TRAN
        assert block_on_disk(sdhc, 15) == data  # on disk before busy ended

    run(sdhc, scenario)


def test_cmd25_takes_0xfc_blocks_and_ends_with_0xfd(sdsc: Path) -> None:
    blocks = [bytes([n]) * BLOCK for n in (0xA1, 0xB2, 0xC3)]

    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(55) == 0x00
        assert await host.r1(23, len(blocks)) == 0x00  # ACMD23, as elm-chan sends (A.6 item 8)
        assert await host.r1(25, host.addr(40)) == 0x00
        for block in blocks:
            assert (await host.xfer(b"\xfc" + with_crc(block) + FF))[-1] == 0x05
            assert await host.busy() >= 1
        assert await host.xfer(b"\xfd" + FF) == FF * 2  # Stop Tran, N_BR
        assert await host.busy() >= 1
        assert host.card.state is S.TRAN
        assert [block_on_disk(sdsc, 40 + n) for n in range(3)] == blocks
        assert block_on_disk(sdsc, 43) == content(43)

    run(sdsc, scenario)


def test_a_write_survives_cs_high_between_r1_and_the_token(sdsc: Path) -> None:
    data = b"\x5a" * BLOCK

    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(24, host.addr(7)) == 0x00
        host.spi.select(False)  # A.6 item 5: not seen, state unchanged
        assert await host.xfer(b"\xfe" + bytes(600)) == FF * 601
        assert host.card.state is S.RCV
        host.spi.select(True)
        assert (await host.xfer(b"\xfe" + with_crc(data) + FF))[-1] == 0x05
        await host.busy()
        assert block_on_disk(sdsc, 7) == data

    run(sdsc, scenario)


def test_busy_shows_again_when_cs_falls_during_programming(sdsc: Path) -> None:
    async def scenario(host: Host) -> None:
        await host.init()
        host.card.storage.faults.latency = 0.1
        assert await host.r1(24, host.addr(3)) == 0x00
        assert (await host.xfer(b"\xfe" + with_crc(bytes(BLOCK)) + FF * 3))[-3:] == b"\x05\0\0"
        host.spi.select(False)
        assert await host.xfer(FF * 3) == FF * 3  # DO released
        host.spi.select(True)
        assert await host.xfer(FF) == b"\x00"  # still programming: busy again
        assert await host.busy() > 10
        assert block_on_disk(sdsc, 3) == bytes(BLOCK)

    run(sdsc, scenario)


@pytest.mark.parametrize("multi", [False, True], ids=["CMD24", "CMD25"])
def test_a_write_to_a_read_only_image_gets_0x0d_and_changes_nothing(sdsc: Path,
                                                                    multi: bool) -> None:
    before = sdsc.read_bytes()

    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(25 if multi else 24, host.addr(3)) == 0x00  # enters rcv (A.4)
        token = b"\xfc" if multi else b"\xfe"
        for _ in range(2 if multi else 1):
            assert (await host.xfer(token + with_crc(b"\x77" * BLOCK) + FF * 2))[-2:] == (
                b"\x0d\xff")  # write error, no busy
        if multi:
            await host.xfer(b"\xfd" + FF)
            await host.busy()
        assert host.card.state is S.TRAN
        assert await host.command(13, read=3) == bytes.fromhex("FF 00 20")  # WP violation

    run(sdsc, scenario, storage_options=StorageOptions(read_only=True))
    assert sdsc.read_bytes() == before


# --- CRC checking (A.2, §7.2.2) -----------------------------------------------------------

def test_with_crc_on_a_bad_command_crc_sets_r1_bit_3_and_is_not_executed(sdsc: Path) -> None:
    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(59, 1) == 0x00
        assert await host.r1(16, 256, crc=0x01) == 0x08
        assert host.card.block_len == BLOCK
        assert await host.r1(16, 256) == 0x00
        assert host.card.block_len == 256
        assert await host.r1(59, 0) == 0x00
        assert await host.r1(16, BLOCK, crc=0x01) == 0x00

    run(sdsc, scenario)


@pytest.mark.parametrize("crc_on, response", [(True, 0x0B), (False, 0x05)])
def test_a_bad_data_crc_is_rejected_only_with_crc_on(sdsc: Path, crc_on: bool,
                                                     response: int) -> None:
    data = b"\xc5" * BLOCK

    async def scenario(host: Host) -> None:
        await host.init()
        assert await host.r1(59, int(crc_on)) == 0x00
        assert await host.r1(24, host.addr(5)) == 0x00
        assert (await host.xfer(b"\xfe" + with_crc(data, good=False) + FF))[-1] == response
        await host.busy()
        assert host.card.state is S.TRAN
        assert await host.command(13, read=3) == bytes.fromhex("FF 00 00")
        assert block_on_disk(sdsc, 5) == (content(5) if crc_on else data)

    run(sdsc, scenario)


# --- asynchronous storage (Part C) ---------------------------------------------------------

def test_slow_storage_stretches_n_ac_while_the_loop_stays_responsive(sdhc: Path) -> None:
    async def scenario(host: Host) -> tuple[int, float, float]:
        await host.init()
        host.card.storage.faults.latency = 0.2
        async with LoopHeartbeat() as heartbeat:
            start = time.perf_counter()
            assert await host.r1(17, 15) == 0x00
            fills, token = await host.poll()
            waited = time.perf_counter() - start
            assert token == 0xFE
            assert (await host.xfer(FF * 514))[:BLOCK] == SIGROK
        return fills, waited, heartbeat.max_gap_ms

    fills, waited, max_gap_ms = run(sdhc, scenario)
    assert waited >= 0.19
    assert fills > 50  # fast storage: 1 (N_AC)
    assert max_gap_ms < 50


def test_storage_eio_on_a_read_sends_a_data_error_token(sdhc: Path) -> None:
    async def scenario(host: Host) -> None:
        await host.init()
        host.card.storage.faults.eio(20, 20, ops={"read"})
        assert await host.r1(17, 20) == 0x00
        fills, token = await host.poll()
        assert token == 0x04  # card ECC failed (§7.3.3.3)
        assert host.card.state is S.TRAN
        assert await host.command(13, read=3) == bytes.fromhex("FF 00 10")
        assert await host.r1(17, 21) == 0x00
        assert await host.read_block() == content(21)

    run(sdhc, scenario)


# --- trace ----------------------------------------------------------------------------

def test_the_trace_holds_one_spi_token_per_run_of_bytes(sdhc: Path) -> None:
    trace, clock = Trace(), SimClock(1_000_000)

    async def scenario(host: Host) -> None:
        await host.xfer(frame(0) + FF * 3)
        await host.xfer(frame(17, 15) + FF * 2)  # illegal in idle: R1 0x05
        host.spi.flush_trace()

    run(sdhc, scenario, trace=trace, clock=clock)
    tokens = [t for t in trace.tokens if isinstance(t, SpiToken)]
    assert [(t.what, len(t.mosi)) for t in tokens] == [
        ("cmd", 6), ("fill", 1), ("rsp", 1), ("fill", 1), ("cmd", 6), ("fill", 1), ("rsp", 1)]
    assert tokens[0].info["name"] == "CMD0 GO_IDLE_STATE"
    assert [t.miso for t in tokens if t.what == "rsp"] == [b"\x01", b"\x05"]
    assert all(t.clocks == 8 * len(t.miso) for t in tokens)
    assert clock.now == 17 * 8 * clock.period


# --- the blocking facade ------------------------------------------------------------------

def test_blocking_card_takes_card_options_as_keywords(sdsc: Path) -> None:
    with BlockingSpiCard(sdsc, acmd41_busy_polls=2) as card:
        card.select(True)
        answers = [card.exchange(frame(index, arg) + FF * 2)[7]
                   for index, arg in [(0, 0), (55, 0), (41, 0), (55, 0), (41, 0), (55, 0),
                                      (41, 0)]]
        assert answers == [0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00]
        miso = card.exchange(frame(17, 9 * BLOCK) + FF * 2)
        assert miso[7] == 0x00
        while card.exchange(FF) != b"\xfe":
            pass
        assert card.exchange(FF * BLOCK) == content(9)


def test_blocking_card_rejects_an_unknown_option(sdsc: Path) -> None:
    with pytest.raises(TypeError, match="acmd41_polls"):
        BlockingSpiCard(sdsc, acmd41_polls=2)


def test_blocking_card_close_does_not_wait_for_hung_storage(sdsc: Path) -> None:
    card = BlockingSpiCard(sdsc)
    card.select(True)
    card.exchange(frame(0) + FF * 2)
    card.storage.faults.hang()
    for index, arg in [(55, 0), (41, 0), (55, 0), (41, 0)]:
        card.exchange(frame(index, arg) + FF * 2)
    assert card.exchange(frame(17, 0) + FF * 10)[7:] == b"\x00" + FF * 8  # the read hangs
    start = time.perf_counter()
    card.close()
    assert time.perf_counter() - start < 1.0
    with pytest.raises(RuntimeError, match="closed"):
        card.exchange(FF)
