"""SPI-mode decoding: the real captures (cross-checked with sigrok's sdcard_spi output)
and synthetic byte exchanges rendered onto SCK/MOSI/MISO/CS# samples."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sdmodel.capture import read_sr
from sdmodel.crc import command_frame, crc16
from sdmodel.decode import (
    SpiBusyToken,
    SpiCommandToken,
    SpiDataResponseToken,
    SpiDataToken,
    SpiDecoder,
    SpiResponseToken,
    decode_capture,
)
from sdmodel.decode.edges import edges_from_samples
from sdmodel.decode.fields import decode_register_fields
from sdmodel.registers import csd_capacity
from sdmodel.tokens import FindingToken, SpiToken, Token

CAPTURES = Path(__file__).parents[2].parent / "shared" / "captures"
needs_captures = pytest.mark.skipif(
    not CAPTURES.is_dir(), reason=f"real captures not found at {CAPTURES}"
)
SIGROK_ROCKS = b"Sigrok rocks" + bytes(500)


def of(tokens: list[Token], cls: type) -> list:
    return [t for t in tokens if isinstance(t, cls)]


def codes(tokens: list[Token]) -> list[str]:
    return [t.code for t in of(tokens, FindingToken)]


# --- a byte-level SPI renderer ----------------------------------------------------------

NAMES = ("MOSI", "MISO", "SCK", "CS#")  # bits 0..3


class SpiBus:
    """SPI mode 0 (§7.2): per bit 4 samples, SCK ``__--``, data changing with the falling
    edge, MSB first; CS# low around each session."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = [self._idle(8)]

    @staticmethod
    def _idle(samples: int) -> np.ndarray:
        return np.full(samples, 0b1011, dtype=np.uint8)  # CS# high, MOSI/MISO high

    def clocks_deselected(self, nbytes: int) -> None:
        """Bytes clocked with CS# high (power-up clocks): the card must not see them."""
        self.parts.append(self._bits(b"\x00" * nbytes, b"\x00" * nbytes, cs=1))

    def session(self, mosi: bytes, miso: bytes) -> None:
        n = max(len(mosi), len(miso))
        self.parts.append(self._bits(mosi.ljust(n, b"\xff"), miso.ljust(n, b"\xff"), cs=0))
        self.parts.append(self._idle(16))

    @staticmethod
    def _bits(mosi: bytes, miso: bytes, cs: int) -> np.ndarray:
        mo = np.repeat(np.unpackbits(np.frombuffer(mosi, np.uint8)), 4)
        mi = np.repeat(np.unpackbits(np.frombuffer(miso, np.uint8)), 4)
        sck = np.tile(np.array([0, 0, 1, 1], np.uint8), len(mosi) * 8)
        return (mo | mi << 1 | sck << 2 | cs << 3).astype(np.uint8)

    def write_sr(self, path: Path, chunk: int = 1 << 12) -> Path:
        raw = np.concatenate(self.parts).tobytes()
        meta = "\n".join(["[device 1]", "capturefile=logic-1", f"total probes={len(NAMES)}",
                          "samplerate=8 MHz", "unitsize=1",
                          *(f"probe{i + 1}={n}" for i, n in enumerate(NAMES))])
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata", meta)
            for n, start in enumerate(range(0, len(raw), chunk), start=1):
                z.writestr(f"logic-1-{n}", raw[start:start + chunk])
        return path


def cmd(index: int, arg: int = 0, crc: int | None = None) -> bytes:
    frame = command_frame(index, arg)
    return frame if crc is None else frame[:5] + bytes([crc])


def exchange(bus: SpiBus, command: bytes, response: bytes, mosi_tail: bytes = b"",
             miso_tail: bytes = b"") -> None:
    """One CS# session: fill byte, command, N_CR = 1, response (elm-chan framing, A.6)."""
    bus.session(b"\xff" + command + b"\xff" * (1 + len(response)) + mosi_tail,
                b"\xff" * 8 + response + miso_tail)


def decode(bus: SpiBus, tmp_path: Path) -> list[Token]:
    return list(decode_capture(bus.write_sr(tmp_path / "spi.sr")))


def read_tail(data: bytes, crc: int | None = None, token: int = 0xFE) -> bytes:
    crc = crc16(data) if crc is None else crc
    return b"\xff\xff" + bytes([token]) + data + crc.to_bytes(2, "big")


# --- real captures ------------------------------------------------------------------------


def spi_capture(name: str) -> list[Token]:
    return list(decode_capture(CAPTURES / "spi_mode" / f"{name}.sr"))


def sigrok_commands(name: str) -> list[dict]:
    """Commands, arguments, R1 and data blocks from sigrok-cli's sdcard_spi output."""
    out: list[dict] = []
    for line in (CAPTURES / "sigrok-reference" / f"{name}.txt").read_text().splitlines():
        text = line.partition(": ")[2]
        if m := re.match(r"Command: (A?CMD\d+) ", text):
            out.append({"cmd": m.group(1), "r1": None, "data": None})
        elif m := re.match(r"Argument: 0x([0-9a-f]+)$", text):
            out[-1]["arg"] = int(m.group(1), 16)
        elif m := re.match(r"R1: 0x([0-9a-f]+)$", text):
            out[-1]["r1"] = int(m.group(1), 16)
        elif m := re.match(r"(?:Block data|CSD): \[(.*)\]$", text):
            out[-1]["data"] = bytes(int(v) for v in m.group(1).split(", "))
    return out


def our_commands(tokens: list[Token]) -> list[dict]:
    out: list[dict] = []
    for t in tokens:
        if isinstance(t, SpiCommandToken):
            out.append({"cmd": t.name.split()[0], "arg": t.arg, "r1": None, "data": None})
        elif isinstance(t, SpiResponseToken):
            out[-1]["r1"] = t.r1
        elif isinstance(t, SpiDataToken):
            out[-1]["data"] = t.data
    return out


SPI_CAPTURES = sorted(p.stem for p in (CAPTURES / "spi_mode").glob("*.sr")) if CAPTURES.is_dir() \
    else []


@needs_captures
@pytest.mark.parametrize("name", SPI_CAPTURES)
def test_capture_agrees_with_sigrok(name: str) -> None:
    ours, theirs = our_commands(spi_capture(name)), sigrok_commands(name)
    # sigrok's sdcard_spi prints no R1 for CMD9 (it goes straight to the CSD block).
    for mine, sig in zip(ours, theirs, strict=True):
        if sig["cmd"] == "CMD9":
            sig["r1"] = mine["r1"]
    assert ours == theirs


@needs_captures
def test_real_read_block_is_sigrok_rocks_with_crc_291d() -> None:
    tokens = spi_capture("cmd17_read_single_block")
    command, block = of(tokens, SpiCommandToken)[0], of(tokens, SpiDataToken)[0]
    assert (command.index, command.arg, command.crc_ok) == (17, 0x0F, False)  # dummy CRC 01
    assert (block.data, block.crcs, block.crc_ok) == (SIGROK_ROCKS, (0x291D,), True)
    assert codes(tokens) == []  # CRC is off: the dummy command CRC is no finding


@needs_captures
def test_real_write_block_is_accepted_then_busy_for_about_204_ms() -> None:
    tokens = spi_capture("cmd24_write_real")
    block = of(tokens, SpiDataToken)[0]
    # The host sent FF FF as CRC (CRC off); the check reports it, no finding is raised.
    assert (block.data, block.to_card, block.crcs, block.crc_ok) == (SIGROK_ROCKS, True,
                                                                      (0xFFFF,), False)
    response = of(tokens, SpiDataResponseToken)[0]
    assert (response.value, response.status) == (0xE5, 0b010)
    busy = of(tokens, SpiBusyToken)[0]
    assert 0.2035 < (busy.end - busy.start) / 1e12 < 0.2045
    assert response.end <= busy.start and codes(tokens) == []


@needs_captures
def test_simulated_write_with_data_response_in_the_crc_byte_is_flagged() -> None:
    tokens = spi_capture("cmd24_write_simulated")
    assert of(tokens, SpiDataToken)[0].data == bytes(range(256)) * 2
    assert codes(tokens) == ["spi_data_response_misplaced"]
    assert "first CRC byte" in of(tokens, FindingToken)[0].message


@needs_captures
def test_write_start_snippet_ends_inside_the_block() -> None:
    tokens = spi_capture("cmd24_write_start_snippet")
    assert [(t.index, t.arg) for t in of(tokens, SpiCommandToken)] == [(24, 1)]
    assert codes(tokens) == ["truncated"]


@needs_captures
def test_xmore_init_reads_a_v1_csd_of_513_mb() -> None:
    tokens = spi_capture("xmore_get_csd")
    names = [t.name.split()[0] for t in of(tokens, SpiCommandToken)]
    assert names == ["CMD0", "CMD55", "ACMD41", "CMD1", "CMD59", "CMD16", "CMD9", "CMD59",
                     "CMD9"]
    assert [t.r1 for t in of(tokens, SpiResponseToken)] == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    csd = of(tokens, SpiDataToken)[0]
    assert (csd.nbytes, csd.crcs, csd.crc_ok) == (16, (0xFFEA,), True)
    assert csd_capacity(int.from_bytes(csd.data, "big")) == 513_277_952
    fields = {r.field: r.value for r in decode_register_fields(csd)}
    assert (fields["C_SIZE"], fields["C_SIZE_MULT"], fields["TAAC"]) == (3915, 6, 0x5E)
    assert codes(tokens) == []  # 0x95 on every command: CMD0's CRC right, the rest unchecked


# --- synthetic exchanges --------------------------------------------------------------------


def test_read_block_round_trips(tmp_path: Path) -> None:
    data = bytes(range(256)) * 2
    bus = SpiBus()
    bus.clocks_deselected(10)
    exchange(bus, cmd(17, 0x200), b"\x00", mosi_tail=b"\xff" * 520, miso_tail=read_tail(data))
    tokens = decode(bus, tmp_path)
    block = of(tokens, SpiDataToken)[0]
    assert (block.data, block.crc_ok, block.to_card, block.for_index) == (data, True, False, 17)
    assert codes(tokens) == []


@pytest.mark.parametrize(("crc_on", "index", "finding"), [
    (False, 13, []),  # CRC off: a dummy CRC byte is normal (A.6)
    (False, 0, ["cmd_crc"]),  # CMD0 arrives in SD mode: always checked
    (False, 8, ["cmd_crc"]),  # CMD8: always checked (§7.2.2)
    (True, 13, ["cmd_crc"]),
])
def test_command_crc_findings_follow_cmd59(tmp_path: Path, crc_on: bool, index: int,
                                           finding: list[str]) -> None:
    bus = SpiBus()
    if crc_on:
        exchange(bus, cmd(59, 1), b"\x00")
    response = b"\x01\x00\x00\x01\xaa" if index == 8 else b"\x00"
    exchange(bus, cmd(index, 0, crc=0x01), response)
    tokens = decode(bus, tmp_path)
    assert of(tokens, SpiCommandToken)[-1].crc_ok is False
    assert codes(tokens) == finding


@pytest.mark.parametrize(("crc_on", "finding"), [(False, []), (True, ["data_crc"])])
def test_read_data_crc_is_reported_and_judged_only_with_crc_on(tmp_path: Path, crc_on: bool,
                                                               finding: list[str]) -> None:
    bus = SpiBus()
    if crc_on:
        exchange(bus, cmd(59, 1), b"\x00")
    exchange(bus, cmd(17), b"\x00", miso_tail=read_tail(bytes(512), crc=0x1234),
             mosi_tail=b"\xff" * 520)
    tokens = decode(bus, tmp_path)
    block = of(tokens, SpiDataToken)[0]
    assert (block.crc_ok, block.crc_on, block.crcs) == (False, crc_on, (0x1234,))
    assert codes(tokens) == finding


def test_data_error_token_instead_of_a_block(tmp_path: Path) -> None:
    bus = SpiBus()
    exchange(bus, cmd(17, 0xFFFFFE00), b"\x00", miso_tail=b"\xff\x08", mosi_tail=b"\xff" * 4)
    tokens = decode(bus, tmp_path)
    assert [t.what for t in of(tokens, SpiToken)] == ["data_error"]
    assert codes(tokens) == ["spi_data_error_token"]


def write_session(data: bytes, response: int, *, crc: int | None = None, busy: int = 3,
                  early: bool = False) -> tuple[bytes, bytes]:
    crc = crc16(data) if crc is None else crc
    mosi = b"\xfe" + data + crc.to_bytes(2, "big") + b"\xff" * (2 + busy)
    if early:  # the simulation's mistake: the response where the first CRC byte belongs
        miso = b"\xff" * (1 + len(data)) + bytes([response]) + b"\x00" * busy + b"\xff" * 2
    else:
        miso = b"\xff" * (3 + len(data)) + bytes([response]) + b"\x00" * busy + b"\xff"
    return mosi, miso


@pytest.mark.parametrize(("response", "early", "finding"), [
    (0xE5, False, []),
    (0x0B, False, ["crc_status"]),
    (0x05, True, ["spi_data_response_misplaced"]),
])
def test_write_block_data_response_and_busy(tmp_path: Path, response: int, early: bool,
                                            finding: list[str]) -> None:
    data = b"Sigrok rocks".ljust(512, b"\0")
    mosi, miso = write_session(data, response, early=early)
    bus = SpiBus()
    exchange(bus, cmd(24, 0x0F), b"\x00", mosi_tail=mosi, miso_tail=miso)
    tokens = decode(bus, tmp_path)
    block, rsp = of(tokens, SpiDataToken)[0], of(tokens, SpiDataResponseToken)[0]
    assert (block.data, block.crc_ok, rsp.value, rsp.status) == (data, True, response,
                                                                 (response >> 1) & 7)
    assert [round((b.end - b.start) / (b.period * 8)) for b in of(tokens, SpiBusyToken)] == [3]
    assert codes(tokens) == finding


def test_multiple_block_write_ends_with_stop_tran(tmp_path: Path) -> None:
    blocks = [bytes([n]) * 512 for n in (1, 2)]
    mosi, miso = b"", b""
    for data in blocks:
        m, s = write_session(data, 0x05, busy=2)
        mosi, miso = mosi + b"\xfc" + m[1:], miso + s
    mosi += b"\xfd\xff\xff\xff"
    miso += b"\xff\xff\x00\xff"
    bus = SpiBus()
    exchange(bus, cmd(25), b"\x00", mosi_tail=mosi, miso_tail=miso)
    tokens = decode(bus, tmp_path)
    assert [t.data for t in of(tokens, SpiDataToken)] == blocks
    assert [t.token_byte for t in of(tokens, SpiDataToken)] == [0xFC, 0xFC]
    assert [t.what for t in of(tokens, SpiToken)] == ["stop_tran"]
    assert len(of(tokens, SpiBusyToken)) == 3 and codes(tokens) == []


def test_cs_rising_inside_a_command_is_flagged(tmp_path: Path) -> None:
    bus = SpiBus()
    bus.session(b"\xff" + cmd(0)[:3], b"\xff" * 4)
    bus.session(cmd(0)[3:] + b"\xff\xff", b"\xff" * 5)  # 00 00 95: no command start
    assert codes(decode(bus, tmp_path)) == ["spi_cmd_cut"]


def test_missing_r1_is_reported(tmp_path: Path) -> None:
    bus = SpiBus()
    bus.session(b"\xff" + cmd(0) + b"\xff" * 12, b"\xff" * 19)
    assert codes(decode(bus, tmp_path)) == ["no_response"]


@pytest.mark.parametrize(("index", "app", "response", "kind"), [
    (8, False, b"\x01\x00\x00\x01\xaa", "R7"),
    (8, False, b"\x05", "R1"),  # v1 card: illegal command, R1 only
    (58, False, b"\x00\xc0\xff\x80\x00", "R3"),
    (13, False, b"\x00\x00", "R2"),
    (41, True, b"\x00", "R1"),
])
def test_response_kind_comes_from_the_command_table(tmp_path: Path, index: int, app: bool,
                                                    response: bytes, kind: str) -> None:
    bus = SpiBus()
    if app:
        exchange(bus, cmd(55), b"\x01")
    exchange(bus, cmd(index, 0x1AA if index == 8 else 0), response)
    tokens = decode(bus, tmp_path)
    rsp = of(tokens, SpiResponseToken)[-1]
    assert (rsp.type, rsp.raw, of(tokens, SpiCommandToken)[-1].app) == (kind, response, app)


def test_cmd58_ocr_fields_are_decoded(tmp_path: Path) -> None:
    bus = SpiBus()
    exchange(bus, cmd(58), b"\x00\xc0\xff\x80\x00")
    rsp = of(decode(bus, tmp_path), SpiResponseToken)[0]
    fields = {r.field: r.text for r in decode_register_fields(rsp)}
    assert fields["BUSY"] == "power-up done" and fields["CCS"].startswith("SDHC")


def test_r1b_is_followed_by_busy(tmp_path: Path) -> None:
    bus = SpiBus()
    exchange(bus, cmd(38), b"\x00", miso_tail=b"\x00" * 5 + b"\xff", mosi_tail=b"\xff" * 6)
    tokens = decode(bus, tmp_path)
    assert [(t.reason, round((t.end - t.start) / (t.period * 8))) for t in
            of(tokens, SpiBusyToken)] == [("R1b", 5)]


@pytest.mark.parametrize("block", [5, 97, 1 << 20])
def test_streaming_in_small_blocks_gives_the_same_tokens(tmp_path: Path, block: int) -> None:
    bus = SpiBus()
    exchange(bus, cmd(17), b"\x00", miso_tail=read_tail(bytes(range(256)) * 2),
             mosi_tail=b"\xff" * 520)
    exchange(bus, cmd(13), b"\x00\x00")
    path = bus.write_sr(tmp_path / "spi.sr")
    sr = read_sr(path)
    decoder = SpiDecoder()
    tokens: list[Token] = []
    for batch in edges_from_samples(sr.chunks(block), sr.samplerate, sr.total_samples, 2,
                                    [0, 1, 3], framing=3):
        tokens += decoder.feed(batch)
    tokens += decoder.finish()
    assert [t.to_json() for t in tokens] == [t.to_json() for t in decode_capture(path)]
    assert [t.to_json()["line"] for t in tokens] == ["SPI"] * len(tokens)
