"""SD-mode decoding: the real captures (cross-checked with sigrok's output) and synthetic
bus activity rendered bit by bit (commands, responses, 1-bit and 4-bit blocks, CRC status,
busy, garbage)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdmodel.capture import read_sr
from sdmodel.crc import command_frame, crc7, crc16_lanes, split_lanes
from sdmodel.decode import SdDecoder, decode_capture
from sdmodel.decode.edges import edges_from_samples
from sdmodel.decode.fields import decode_register_fields
from sdmodel.registers import csd_capacity
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatusToken,
    DataToken,
    FindingToken,
    ResponseToken,
    Token,
)

CAPTURES = Path(__file__).parents[2].parent / "shared" / "captures"
needs_captures = pytest.mark.skipif(
    not CAPTURES.is_dir(), reason=f"real captures not found at {CAPTURES}"
)

# --- a bit-level SD bus renderer ---------------------------------------------------------

CMD, DAT0, DAT1, DAT2, DAT3 = range(5)
NAMES = ("CLK", "CMD", "DAT0", "DAT1", "DAT2", "DAT3")  # probe order in the .sr file


def bits_of(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


class Bus:
    """SD-bus activity clock by clock: the level of CMD and DAT0-3 in each clock cycle
    (1 = idle, pulled up). Samples: 4 per clock, CLK ``__--``; lines change with the
    falling edge, as a DS-mode host and card drive them (reference §1)."""

    def __init__(self, clocks: int = 200) -> None:
        self.levels = np.ones((5, clocks), dtype=np.uint8)

    def put(self, line: int, at: int, bits: np.ndarray | list[int]) -> int:
        bits = np.asarray(bits, dtype=np.uint8)
        grow = at + bits.size + 64 - self.levels.shape[1]
        if grow > 0:  # keep idle clocks after the last token
            self.levels = np.pad(self.levels, ((0, 0), (0, grow)), constant_values=1)
        self.levels[line, at:at + bits.size] = bits
        return at + bits.size

    def command(self, at: int, index: int, arg: int = 0) -> int:
        return self.put(CMD, at, bits_of(command_frame(index, arg)))

    def response(self, at: int, index: int, payload: int, *, crc: int | None = None) -> int:
        head = bytes([index & 0x3F]) + payload.to_bytes(4, "big")
        crc = crc7(head) if crc is None else crc
        return self.put(CMD, at, bits_of(head + bytes([(crc << 1) | 1])))

    def r3(self, at: int, ocr: int) -> int:
        return self.put(CMD, at, bits_of(bytes([0x3F]) + ocr.to_bytes(4, "big") + b"\xff"))

    def r2(self, at: int, raw128: int) -> int:
        return self.put(CMD, at, [0, 0, 1, 1, 1, 1, 1, 1, *bits_of(raw128.to_bytes(16, "big"))])

    def block(self, at: int, data: bytes, width: int = 1, *, bad_crc_line: int | None = None,
              bad_end: bool = False) -> int:
        """Start bit, data (nibbles in 4-bit mode, §3.6.1), CRC16 per line, end bit."""
        for n, (lane, crc) in enumerate(zip(split_lanes(data, width), crc16_lanes(data, width),
                                            strict=True)):
            per_line = len(data) * 8 // width
            crc ^= 0x0100 if n == bad_crc_line else 0
            bits = [0, *bits_of(lane)[:per_line], *bits_of(crc.to_bytes(2, "big")),
                    0 if bad_end else 1]
            end = self.put(DAT0 + n, at, bits)
        return end

    def crc_status(self, at: int, status: int = 0b010) -> int:
        return self.put(DAT0, at, [0, status >> 2 & 1, status >> 1 & 1, status & 1, 1])

    def busy(self, at: int, clocks: int) -> int:
        return self.put(DAT0, at, [0] * clocks)

    def samples(self) -> np.ndarray:
        n = self.levels.shape[1]
        clk = np.tile(np.array([0, 0, 1, 1], dtype=np.uint8), n)
        out = clk.copy()
        for line in range(5):
            out |= np.repeat(self.levels[line], 4) << (line + 1)
        return out

    def write_sr(self, path: Path, chunk: int = 1 << 14, lines: int = 6) -> Path:
        write_sr(path, self.samples(), NAMES[:lines], rate="100 MHz", chunk=chunk)
        return path


def write_sr(path: Path, samples: np.ndarray, names: tuple[str, ...], rate: str,
             chunk: int = 1 << 14) -> None:
    meta = ["[global]", "sigrok version=0.5.2", "", "[device 1]", "capturefile=logic-1",
            f"total probes={len(names)}", f"samplerate={rate}", "total analog=0",
            *(f"probe{i + 1}={n}" for i, n in enumerate(names)), "unitsize=1", ""]
    raw = samples.astype(np.uint8).tobytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("version", "2")
        z.writestr("metadata", "\n".join(meta))
        for n, start in enumerate(range(0, len(raw), chunk), start=1):
            z.writestr(f"logic-1-{n}", raw[start:start + chunk])


def decode(bus: Bus, tmp_path: Path, **kw: object) -> list[Token]:
    return list(decode_capture(bus.write_sr(tmp_path / "bus.sr", **kw)))  # type: ignore[arg-type]


def of(tokens: list[Token], cls: type) -> list:
    return [t for t in tokens if isinstance(t, cls)]


def codes(tokens: list[Token]) -> list[str]:
    return [t.code for t in of(tokens, FindingToken)]


R1_TRAN = 0x900  # CURRENT_STATE tran, READY_FOR_DATA
PATTERN = bytes(range(256)) * 2  # the 4-bit CRC vector of reference §3


# --- real captures against sigrok's reference output ------------------------------------

# sigrok's label where it is wrong; the capture wins (reference §11).
SIGROK_WRONG = {("cmd7_r6", 7): ("R6", "R1b")}  # CMD7's response is R1b (state stby)


def sigrok_exchanges(name: str) -> list[tuple[str, ...]]:
    """("cmd", "CMD8") / ("rsp", "R7") pairs from sigrok-cli's sdcard_sd annotations."""
    out: list[tuple[str, ...]] = []
    last = 0
    for line in (CAPTURES / "sigrok-reference" / f"{name}.txt").read_text().splitlines():
        text = line.partition(": ")[2]
        if m := re.match(r"(A?CMD)(\d+) \(", text):
            last = int(m.group(2))
            out.append(("cmd", f"{m.group(1)}{last}"))
        elif m := re.match(r"(?:Reply: )?(R\w+)$", text):
            out.append(("rsp", SIGROK_WRONG.get((name, last), (m.group(1),) * 2)[1]))
    return out


def our_exchanges(tokens: list[Token]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for t in tokens:
        if isinstance(t, CommandToken):
            out.append(("cmd", t.name.split()[0]))
        elif isinstance(t, ResponseToken):
            out.append(("rsp", t.type))
    return out


SD_CAPTURES = sorted(p.stem for p in (CAPTURES / "sd_mode").glob("*.sr")) if CAPTURES.is_dir() \
    else []


@needs_captures
@pytest.mark.parametrize("name", SD_CAPTURES)
def test_capture_agrees_with_sigrok_and_every_crc_is_right(name: str) -> None:
    tokens = list(decode_capture(CAPTURES / "sd_mode" / f"{name}.sr"))
    assert our_exchanges(tokens) == sigrok_exchanges(name)
    assert all(t.crc_ok for t in tokens if isinstance(t, (CommandToken, ResponseToken)))
    # The i.MX6 snippet ends inside the response to its last CMD55 (reference §11).
    assert codes(tokens) == (["truncated"] if name == "imx6_working_snippet" else [])


@needs_captures
def test_sigrok_labels_the_cmd7_response_r6_but_it_is_r1b_in_stby() -> None:
    assert "Reply: R6" in (CAPTURES / "sigrok-reference" / "cmd7_r6.txt").read_text()
    rsp = of(list(decode_capture(CAPTURES / "sd_mode" / "cmd7_r6.sr")), ResponseToken)[0]
    fields = {r.field: r.text for r in decode_register_fields(rsp)}
    assert (rsp.type, rsp.index, fields["CURRENT_STATE"]) == ("R1b", 7, "stby")


def capture(name: str) -> list[Token]:
    return list(decode_capture(CAPTURES / "sd_mode" / f"{name}.sr"))


@needs_captures
def test_cmd2_r2_carries_the_cid_of_the_reference() -> None:
    rsp = of(capture("cmd2_r2"), ResponseToken)[0]
    fields = {r.field: r.text for r in decode_register_fields(rsp)}
    assert (rsp.type, rsp.for_index) == ("R2", 2)
    assert (fields["MID"], fields["OID"], fields["PNM"]) == ("0x09", '"AP"', '"AFSDI"')


@needs_captures
def test_cmd9_r2_carries_the_xmore_like_v1_csd() -> None:
    rsp = of(capture("cmd9_r2"), ResponseToken)[0]
    fields = {r.field: r.value for r in decode_register_fields(rsp)}
    assert rsp.value == 0x005E00325F5983D2EDB77F8F964000F7
    assert (fields["CSD_STRUCTURE"], fields["C_SIZE"], fields["READ_BL_LEN"]) == (0, 3915, 9)
    assert csd_capacity(rsp.value) == 513_277_952


@needs_captures
def test_imx6_snippet_is_the_linux_identification_start() -> None:
    pairs = [(t.name.split()[0], f"0x{t.arg:08X}") if isinstance(t, CommandToken)
             else (t.type, f"0x{t.value:08X}")
             for t in capture("imx6_working_snippet") if isinstance(t, (CommandToken,
                                                                         ResponseToken))]
    assert pairs == [("CMD0", "0x00000000"), ("CMD8", "0x000001AA"), ("R7", "0x000001AA"),
                     ("CMD55", "0x00000000"), ("R1", "0x00000120"),
                     ("ACMD41", "0x70FF8000"), ("R3", "0x00FF8000"), ("CMD55", "0x00000000")]


@needs_captures
@pytest.mark.parametrize(("name", "clocks"), [
    ("cmd2_r2", 5), ("cmd55_r1_acmd41_r3", 5),  # N_ID (reference §10/§11)
    ("cmd3_r6", 11), ("cmd7_r6", 11), ("cmd9_r2", 11), ("cmd13_r1", 11),  # N_CR
])
def test_response_delay_matches_the_measured_clock_counts(name: str, clocks: int) -> None:
    tokens = capture(name)
    cmd, rsp = of(tokens, CommandToken)[-1], of(tokens, ResponseToken)[-1]
    assert round((rsp.start - cmd.end) / cmd.period) == clocks


@needs_captures
def test_cmd3_r6_publishes_rca_b368_in_ident() -> None:
    rsp = of(capture("cmd3_r6"), ResponseToken)[0]
    fields = {r.field: r.text for r in decode_register_fields(rsp)}
    assert (fields["RCA"], fields["CURRENT_STATE"]) == ("0xB368", "ident")


@needs_captures
def test_cmd13_during_a_read_reports_state_data() -> None:
    rsp = of(capture("cmd13_r1_2"), ResponseToken)[0]
    assert {r.field: r.text for r in decode_register_fields(rsp)}["CURRENT_STATE"] == "data"


# --- synthetic bus activity ----------------------------------------------------------------


def read_transfer(bus: Bus, data: bytes, width: int, index: int = 17, **kw: object) -> int:
    end = bus.command(10, index, 0x1000)
    bus.response(end + 2, index, R1_TRAN)
    return bus.block(end + 20, data, width, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [1, 4])
def test_read_block_decodes_with_a_crc16_per_line(tmp_path: Path, width: int) -> None:
    bus = Bus()
    if width == 4:  # ACMD6(2) first: the decoder takes the width from it
        end = bus.command(10, 55, 0xB3680000)
        end = bus.response(end + 2, 55, R1_TRAN | 0x20)
        end = bus.command(end + 8, 6, 2)
        bus.response(end + 2, 6, R1_TRAN | 0x20)
        end = bus.command(400, 17, 0x1000)
        bus.response(end + 2, 17, R1_TRAN)
        bus.block(end + 20, PATTERN, 4)
    else:
        read_transfer(bus, PATTERN, 1)
    tokens = decode(bus, tmp_path)
    block = of(tokens, DataToken)[0]
    assert (block.data, block.width, block.crc_ok, block.to_card) == (PATTERN, width, True, False)
    assert block.crcs == tuple(crc16_lanes(PATTERN, width))
    assert codes(tokens) == []


def test_4bit_width_is_inferred_from_all_four_start_bits(tmp_path: Path) -> None:
    bus = Bus()
    read_transfer(bus, PATTERN, 4)
    block = of(decode(bus, tmp_path), DataToken)[0]
    assert (block.width, block.data, block.crcs) == (4, PATTERN, (0x6AA3, 0xA97D, 0x10B5, 0x7357))


@pytest.mark.parametrize(("width", "line"), [(1, 0), (4, 0), (4, 2), (4, 3)])
def test_corrupted_crc_on_one_line_is_a_data_crc_finding(tmp_path: Path, width: int,
                                                        line: int) -> None:
    bus = Bus()
    read_transfer(bus, PATTERN, width, bad_crc_line=line)
    tokens = decode(bus, tmp_path)
    assert of(tokens, DataToken)[0].crc_ok is False
    finding = of(tokens, FindingToken)[0]
    assert finding.code == "data_crc" and f"DAT{line}" in finding.message


@pytest.mark.parametrize("width", [1, 4])
def test_bad_end_bit_of_a_block_is_reported(tmp_path: Path, width: int) -> None:
    bus = Bus()
    read_transfer(bus, PATTERN, width, bad_end=True)
    tokens = decode(bus, tmp_path)
    assert of(tokens, DataToken)[0].crc_ok is True
    assert codes(tokens) == ["data_end_bit"]


def test_scr_block_of_acmd51_uses_the_command_table_length(tmp_path: Path) -> None:
    scr = bytes.fromhex("0235800300000000")
    bus = Bus()
    end = bus.command(10, 55, 0xB3680000)
    end = bus.response(end + 2, 55, R1_TRAN | 0x20)
    end = bus.command(end + 10, 51)
    bus.response(end + 2, 51, R1_TRAN | 0x20)
    bus.block(end + 20, scr)
    tokens = decode(bus, tmp_path)
    block = of(tokens, DataToken)[0]
    assert (block.nbytes, block.data, block.crc_ok) == (8, scr, True)
    fields = {r.field: r.text for r in decode_register_fields(block)}
    assert fields["SD_BUS_WIDTHS"] == "1 bit, 4 bit"


@pytest.mark.parametrize(("status", "finding"), [(0b010, []), (0b101, ["crc_status"]),
                                                 (0b110, ["crc_status"])])
def test_write_block_is_followed_by_crc_status_and_busy(tmp_path: Path, status: int,
                                                        finding: list[str]) -> None:
    bus = Bus()
    end = bus.command(10, 24, 0x2000)
    end = bus.response(end + 2, 24, R1_TRAN)
    end = bus.block(end + 2, PATTERN)
    end = bus.crc_status(end + 2, status)
    bus.busy(end, 100)
    tokens = decode(bus, tmp_path)
    block, crc, busy = of(tokens, DataToken)[0], of(tokens, CrcStatusToken)[0], \
        of(tokens, BusyToken)[0]
    assert (block.to_card, block.crc_ok, crc.status, busy.reason) == (True, True, status,
                                                                       "program")
    assert round((busy.end - busy.start) / busy.period) == 100
    assert codes(tokens) == finding


def test_command_while_busy_is_flagged_except_cmd13(tmp_path: Path) -> None:
    bus = Bus()
    end = bus.command(10, 24, 0x2000)
    end = bus.response(end + 2, 24, R1_TRAN)
    end = bus.block(end + 2, PATTERN)
    end = bus.crc_status(end + 2)
    bus.busy(end, 300)
    end = bus.command(end + 20, 13, 0xB3680000)  # legal in prg: polling the status
    end = bus.response(end + 2, 13, 0xE00)
    bus.command(end + 10, 17, 0)  # not legal while programming
    tokens = decode(bus, tmp_path)
    busy = [f for f in of(tokens, FindingToken) if f.code == "cmd_while_busy"]
    assert len(busy) == 1 and "CMD17" in busy[0].message


def test_r1b_response_is_followed_by_busy(tmp_path: Path) -> None:
    bus = Bus()
    end = bus.command(10, 7, 0xB3680000)
    end = bus.response(end + 2, 7, 0x700)
    bus.busy(end + 2, 50)
    tokens = decode(bus, tmp_path)
    assert [t.type for t in of(tokens, ResponseToken)] == ["R1b"]
    assert [t.reason for t in of(tokens, BusyToken)] == ["R1b"]
    assert codes(tokens) == []


def test_multiple_block_read_stopped_by_cmd12_inside_a_block(tmp_path: Path) -> None:
    bus = Bus()
    end = bus.command(10, 18, 0)
    bus.response(end + 2, 18, R1_TRAN)
    at = end + 20
    for _ in range(2):
        at = bus.block(at, PATTERN[:64] * 8, 4) + 4
    bus.block(at, PATTERN, 4)
    stop = bus.command(at + 300, 12)  # the card stops sending shortly after the end bit
    bus.levels[DAT0:, stop + 2:at + 1100] = 1
    bus.response(stop + 2, 12, 0xB00)
    tokens = decode(bus, tmp_path)
    assert len(of(tokens, DataToken)) == 2 and all(t.crc_ok for t in of(tokens, DataToken))
    assert codes(tokens) == ["block_aborted"]


def test_garbage_on_cmd_is_a_finding_not_a_command(tmp_path: Path) -> None:
    bus = Bus()
    bus.put(CMD, 10, [0, 1, 1, 0, 0, 1, 0])  # a glitch that starts like a command
    end = bus.command(100, 8, 0x1AA)
    bus.response(end + 2, 8, 0x1AA)
    tokens = decode(bus, tmp_path)
    assert [t.index for t in of(tokens, CommandToken)] == [8]
    assert codes(tokens) == ["framing"]
    assert of(tokens, FindingToken)[0].end <= of(tokens, CommandToken)[0].start


def test_command_with_wrong_crc7_is_ignored_like_a_card_does(tmp_path: Path) -> None:
    bus = Bus()
    frame = bytearray(command_frame(17, 0x1000))
    frame[5] ^= 0x02  # one CRC bit
    bus.put(CMD, 10, bits_of(bytes(frame)))
    tokens = decode(bus, tmp_path)
    assert of(tokens, CommandToken) == []
    assert codes(tokens) == ["framing"] and "CRC7" in of(tokens, FindingToken)[0].message


def test_response_with_wrong_crc7_keeps_its_token(tmp_path: Path) -> None:
    bus = Bus()
    end = bus.command(10, 13, 0xB3680000)
    bus.response(end + 2, 13, R1_TRAN, crc=0x11)
    tokens = decode(bus, tmp_path)
    assert [t.crc_ok for t in of(tokens, ResponseToken)] == [False]
    assert codes(tokens) == ["rsp_crc"]


@pytest.mark.parametrize(("gap", "finding"), [(2, []), (64, []), (70, ["late_response"]),
                                              (1, ["early_response"])])
def test_n_cr_window_is_2_to_64_clocks(tmp_path: Path, gap: int, finding: list[str]) -> None:
    bus = Bus()
    end = bus.command(10, 13, 0xB3680000)
    bus.response(end + gap, 13, R1_TRAN)
    assert codes(decode(bus, tmp_path)) == finding


def test_missing_response_is_reported(tmp_path: Path) -> None:
    bus = Bus()
    end = bus.command(10, 13, 0xB3680000)
    end = bus.command(end + 200, 13, 0xB3680000)
    bus.put(CMD, end + 100, [1])  # the capture goes on past N_CR max: no response came
    tokens = decode(bus, tmp_path)
    assert codes(tokens) == ["no_response", "no_response"]


def test_capture_ending_before_n_cr_max_is_not_a_missing_response(tmp_path: Path) -> None:
    bus = Bus(clocks=0)
    bus.command(10, 13, 0xB3680000)  # only 64 idle clocks follow
    assert codes(decode(bus, tmp_path)) == []


def test_r3_has_no_crc_and_r2_checks_the_register_crc(tmp_path: Path) -> None:
    cid = 0x0941504146534449102678067B008775
    bus = Bus()
    end = bus.command(10, 55)
    end = bus.response(end + 5, 55, 0x120)
    end = bus.command(end + 10, 41, 0x40FF8000)
    end = bus.r3(end + 5, 0x80FF8000)
    end = bus.command(end + 10, 2)
    bus.r2(end + 5, cid ^ (1 << 40))  # one bit of the PSN flipped: register CRC wrong
    tokens = decode(bus, tmp_path)
    r3, r2 = of(tokens, ResponseToken)[1:]
    assert (r3.type, r3.value, "crc_ok" in r3.to_json()) == ("R3", 0x80FF8000, False)
    assert (r2.type, r2.crc_ok) == ("R2", False)
    assert codes(tokens) == ["rsp_crc"]


def test_acmd41_without_cmd55_is_flagged(tmp_path: Path) -> None:
    bus = Bus()
    bus.command(10, 41, 0x40FF8000)
    tokens = decode(bus, tmp_path)
    assert of(tokens, CommandToken)[0].name == "CMD41"
    assert codes(tokens) == ["acmd_without_cmd55"]


def test_cmd17_in_idle_is_illegal(tmp_path: Path) -> None:
    bus = Bus()
    end = bus.command(10, 0)
    bus.command(end + 20, 17, 0)
    tokens = decode(bus, tmp_path)
    assert "illegal_command" in codes(tokens)
    assert "idle" in next(f.message for f in of(tokens, FindingToken)
                          if f.code == "illegal_command")


@pytest.mark.parametrize("block", [7, 333, 1 << 20])
def test_streaming_in_small_blocks_gives_the_same_tokens(tmp_path: Path, block: int) -> None:
    bus = Bus()
    read_transfer(bus, PATTERN, 4)
    path = bus.write_sr(tmp_path / "bus.sr")
    sr = read_sr(path)
    decoder = SdDecoder(dat_lines=4)
    tokens: list[Token] = []
    for batch in edges_from_samples(sr.chunks(block), sr.samplerate, sr.total_samples, 0,
                                    [1, 2, 3, 4, 5]):
        tokens += decoder.feed(batch)
    tokens += decoder.finish()
    assert [t.to_json() for t in tokens] == [t.to_json() for t in decode_capture(path)]


@settings(max_examples=20, deadline=None)
@given(index=st.integers(0, 63), arg=st.integers(0, 2**32 - 1))
def test_any_command_frame_round_trips(tmp_path_factory: pytest.TempPathFactory, index: int,
                                       arg: int) -> None:
    bus = Bus()
    bus.command(10, index, arg)
    path = bus.write_sr(tmp_path_factory.mktemp("rt") / "bus.sr", lines=2)
    cmds = of(list(decode_capture(path)), CommandToken)
    assert [(c.index, c.arg, c.crc_ok) for c in cmds] == [(index, arg, True)]


@settings(max_examples=15, deadline=None)
@given(data=st.binary(min_size=64, max_size=64))
def test_any_64_byte_block_round_trips_on_four_lines(tmp_path_factory: pytest.TempPathFactory,
                                                     data: bytes) -> None:
    bus = Bus()
    end = bus.command(10, 6, 0x00FFFFF1)  # CMD6: a 64-byte status block
    bus.response(end + 2, 6, R1_TRAN)
    bus.block(end + 20, data, 4)
    tokens = list(decode_capture(bus.write_sr(tmp_path_factory.mktemp("rt") / "bus.sr")))
    block = of(tokens, DataToken)[0]
    assert (block.data, block.crc_ok, block.width) == (data, True, 4)


@pytest.mark.parametrize("block", [13, 1 << 20])
def test_tokens_come_out_in_start_order_while_streaming(tmp_path: Path, block: int) -> None:
    bus = Bus()
    end = bus.command(10, 13, 0xB3680000)  # never answered...
    bus.busy(end + 30, 2000)  # ...while DAT0 is held low for no known reason
    end = bus.command(end + 200, 17, 0)
    bus.response(end + 2, 17, R1_TRAN)
    path = bus.write_sr(tmp_path / "bus.sr")
    sr = read_sr(path)
    decoder = SdDecoder(dat_lines=4)
    tokens: list[Token] = []
    for batch in edges_from_samples(sr.chunks(block), sr.samplerate, sr.total_samples, 0,
                                    [1, 2, 3, 4, 5]):
        tokens += decoder.feed(batch)
    tokens += decoder.finish()
    assert [t.start for t in tokens] == sorted(t.start for t in tokens)
    assert codes(tokens) == ["no_response", "unexpected_busy", "cmd_while_busy"]
