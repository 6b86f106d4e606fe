"""Tokens -> line levels (reference §1 sampling edges, §2 tokens, §3 CRCs, §9 data, CRC
status and busy, Part A SPI mode 0).

A receiver samples every line at the rising clock edge, so most tests read the wire as
the levels at CLK/SCLK rising edges. Timing diagrams are ``_-`` strings (``x`` =
UNKNOWN), one character per sample.
"""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

import sdmodel.waveform as waveform
from sdmodel.crc import command_frame, crc7, crc16_lanes, split_lanes
from sdmodel.registers import crc7_register, default_cid
from sdmodel.tokens import (
    PS_PER_S,
    BusyToken,
    CommandToken,
    CrcStatus,
    CrcStatusToken,
    DataToken,
    FindingToken,
    IdleToken,
    Line,
    ResponseToken,
    SpiToken,
    Token,
)
from sdmodel.trace import StateEvent
from sdmodel.waveform import SD_SIGNALS, SPI_SIGNALS, UNKNOWN, Edges, render, signals_for

P = 40_000  # 25 MHz
FF = b"\xff"
SPEC_BLOCK = bytes(range(256)) * 2  # reference §3: per-line CRC16 vector


def window(tokens: list[Token]) -> tuple[int, int]:
    return min(t.start for t in tokens) - 4 * P, max(t.end for t in tokens) + 4 * P


def wire(tokens: list[Token], line: str, clock: str = "CLK") -> np.ndarray:
    """The levels of ``line`` at each rising edge of ``clock`` (what a receiver samples)."""
    t0, t1 = window(tokens)
    clk = render(tokens, clock, t0, t1)
    return render(tokens, line, t0, t1).at(clk.times[clk.levels == 1])


def wire_bytes(tokens: list[Token], line: str, clock: str = "CLK") -> str:
    return np.packbits(wire(tokens, line, clock)).tobytes().hex().upper()


def diagram(edges: Edges, t0: int, step: int, n: int) -> str:
    return "".join("_-x"[v] for v in edges.at(t0 + step * np.arange(n)))


def bits_of(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


# --- CMD line: commands and responses (§2) -----------------------------------------------


@pytest.mark.parametrize(("index", "arg", "frame"), [
    (0, 0, "400000000095"),
    (8, 0x1AA, "48000001AA87"),
    (17, 0, "510000000055"),
    (55, 0, "770000000065"),
    (41, 0x40300000, "6940300000AB"),  # ACMD41: its own index on the wire
    (16, 512, "500000020015"),
])
def test_command_frames_match_the_reference_vectors(index: int, arg: int, frame: str) -> None:
    assert wire_bytes([CommandToken(0, 48 * P, P, index=index, arg=arg)], "CMD") == frame


def test_cmd0_frame_is_40_00000000_95_on_the_wire() -> None:
    cmd0 = CommandToken(0, 48 * P, P, index=0, arg=0)
    assert wire_bytes([cmd0], "CMD") == "400000000095"
    # start bit 0 in the first clock, end bit 1 in the 48th, idle high around it
    assert diagram(render([cmd0], "CMD", -2 * P, 50 * P), -2 * P + P // 2, P, 4) == "--_-"


def test_command_with_bad_crc_sends_a_wrong_crc7() -> None:
    bits = wire([CommandToken(0, 48 * P, P, index=17, arg=0x1234, crc_ok=False)], "CMD")
    frame = np.packbits(bits).tobytes()
    assert frame[:5] == command_frame(17, 0x1234)[:5]
    assert frame[5] >> 1 != crc7(frame[:5]) and frame[5] & 1 == 1


@pytest.mark.parametrize(("type_", "index", "value", "frame"), [
    ("R6", 3, 0xB3680500, "03B368050019"),  # real R6 (reference §2.2)
    ("R7", 8, 0x000001AA, "08000001AA13"),  # real R7
    ("R3", 0x3F, 0x00FF8000, "3F00FF8000FF"),  # real R3: CRC field all ones
])
def test_responses_match_real_cards(type_: str, index: int, value: int, frame: str) -> None:
    rsp = ResponseToken(0, 48 * P, P, type=type_, index=index, value=value)
    assert wire_bytes([rsp], "CMD") == frame


@pytest.mark.parametrize("type_", ["R1", "R1b", "R6", "R7"])
def test_r1_style_response_with_bad_crc_sends_a_wrong_crc7(type_: str) -> None:
    rsp = ResponseToken(0, 48 * P, P, type=type_, index=13, value=0x900, crc_ok=False)
    frame = np.packbits(wire([rsp], "CMD")).tobytes()
    assert frame[:5] == bytes.fromhex("0D00000900")
    assert frame[5] >> 1 == crc7(frame[:5]) ^ 1 and frame[5] & 1 == 1


def test_r2_carries_cid_with_its_own_crc() -> None:
    cid = default_cid()
    bits = wire([ResponseToken(0, 136 * P, P, type="R2", index=0x3F, value=cid)], "CMD")
    assert bits.size == 136
    assert bits[:8].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]  # start, transmission 0, 111111
    register = int.from_bytes(np.packbits(bits[8:]).tobytes(), "big")
    assert register == cid  # bits 127:1 incl. CID[7:1] = CRC7 over 127:8, then end bit 1
    assert crc7(np.packbits(bits[8:128]).tobytes()) == int("".join(map(str, bits[128:135])), 2)


def test_r2_with_bad_crc_spoils_only_the_crc() -> None:
    cid = crc7_register(0x0123_4567_89AB_CDEF_0123_4567_89AB_CD00)
    good = wire([ResponseToken(0, 136 * P, P, type="R2", index=0x3F, value=cid)], "CMD")
    bad = wire([ResponseToken(0, 136 * P, P, type="R2", index=0x3F, value=cid, crc_ok=False)],
               "CMD")
    assert np.flatnonzero(good != bad).tolist() == [134]  # CRC7 bit 0
    # a decoded R2 that carries its wrong CRC goes out as it came in
    decoded = ResponseToken(0, 136 * P, P, type="R2", index=0x3F, value=cid ^ 0x40, crc_ok=False)
    assert int.from_bytes(np.packbits(wire([decoded], "CMD")[8:]).tobytes(), "big") == cid ^ 0x40


# --- DAT lines: data blocks, CRC status, busy (§3, §9) -----------------------------------


def block(data: bytes | None, width: int, start: int = 0, nbytes: int | None = None,
          crcs: tuple[int, ...] | None = None) -> DataToken:
    n = len(data) if data is not None else nbytes or 0
    clocks = 1 + n * 8 // width + 17
    return DataToken(start, start + clocks * P, P, data=data, nbytes=n, width=width,
                     crcs=crcs if crcs is not None else tuple(crc16_lanes(data or b"", width)))


def test_4bit_block_puts_high_nibble_first_with_crc_per_line() -> None:
    tok = block(SPEC_BLOCK, 4)
    lines = np.array([wire([tok], f"DAT{n}") for n in range(4)])  # row n = DATn
    assert lines.shape == (4, 1 + 1024 + 16 + 1)
    assert not lines[:, 0].any() and lines[:, -1].all()  # start and end bit on all lines
    nibbles = (lines[3] << 3 | lines[2] << 2 | lines[1] << 1 | lines[0])[1:1025]
    assert bytes((nibbles[0::2] << 4) | nibbles[1::2]) == SPEC_BLOCK  # high nibble first
    crc = [int("".join(map(str, lines[n, 1025:1041])), 2) for n in range(4)]
    assert crc == [0x6AA3, 0xA97D, 0x10B5, 0x7357]  # DAT0..DAT3 (reference §3 vector)
    for n in range(4):  # each line carries crc.split_lanes' stream
        assert np.packbits(lines[n, 1:1025]).tobytes() == split_lanes(SPEC_BLOCK, 4)[n]


@pytest.mark.parametrize(("line", "clocks"), [(3, "10"), (2, "01"), (1, "10"), (0, "01")])
def test_byte_a5_takes_two_clocks_on_four_lines(line: int, clocks: str) -> None:
    bits = wire([block(b"\xa5" * 4, 4)], f"DAT{line}")  # reference §3 table
    assert "".join(map(str, bits[1:3])) == clocks


def test_1bit_block_is_msb_first_on_dat0_and_leaves_dat1_to_dat3_high() -> None:
    tok = block(b"\x80\x01" * 4, 1)
    bits = wire([tok], "DAT0")
    assert bits[:18].tolist() == [0, *bits_of(0x8001, 16), 1]
    assert bits[-17:].tolist() == [*bits_of(tok.crcs[0], 16), 1]
    t0, t1 = window([tok])
    for n in (1, 2, 3):  # pull-ups (§1)
        edges = render([tok], f"DAT{n}", t0, t1)
        assert edges.levels.tolist() == [1]


def test_block_keeps_the_crc_it_was_sent_with() -> None:
    good = crc16_lanes(SPEC_BLOCK, 4)
    tok = block(SPEC_BLOCK, 4, crcs=(good[0] ^ 1, *good[1:]))
    sent = int("".join(map(str, wire([tok], "DAT0")[1025:1041])), 2)
    assert sent == good[0] ^ 1


def expected_line(tok: DataToken, line: int) -> list[int]:
    """DAT``line`` during ``tok`` by §9: 0, data bits, CRC16 as sent, 1 (UNKNOWN where the
    trace dropped the payload or holds no CRC for the line); an unused line stays high."""
    clocks = 1 + tok.nbytes * 8 // tok.width + 17
    if line >= tok.width:
        return [1] * clocks
    data = tok.data
    if data is None:
        bits = [UNKNOWN] * (tok.nbytes * 8 // tok.width)
    elif tok.width == 4:
        bits = [(byte >> shift) & 1 for byte in data for shift in (line + 4, line)]
    else:
        bits = [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]
    crcs = tok.crcs or tuple(crc16_lanes(data or b"", tok.width))
    crc = bits_of(crcs[line], 16) if line < len(crcs) else [UNKNOWN] * 16
    return [0, *bits, *crc, 1]


def test_a_window_of_many_blocks_puts_each_block_on_the_lines() -> None:
    """A window of a transfer renders its blocks together (one numpy pass per block
    shape); every block still shows exactly its own bits, CRCs and start/end bits."""
    rng = random.Random(10)
    shapes = [(4, 512, "crcs")] * 5 + [(4, 512, "dropped"), (4, 512, "no crcs"),
                                       (4, 512, "dat0 crc only"), (1, 64, "crcs"),
                                       (1, 64, "crcs"), (4, 8, "crcs"), (4, 8, "crcs")]
    rng.shuffle(shapes)
    tokens: list[DataToken] = []
    for width, nbytes, kind in shapes:
        data = rng.randbytes(nbytes)
        start = tokens[-1].end if tokens else 0
        tok = block(None if kind == "dropped" else data, width, start, nbytes=nbytes,
                    crcs=tuple(crc16_lanes(data, width)))
        tok.crcs = {"no crcs": (), "dat0 crc only": tok.crcs[:1]}.get(kind, tok.crcs)
        tokens.append(tok)
    for line in range(4):
        expected = [bit for tok in tokens for bit in expected_line(tok, line)]
        assert wire(list(tokens), f"DAT{line}").tolist() == expected


@pytest.mark.parametrize(("status", "dat0"), [
    (CrcStatus.ACCEPTED, "-__-_--"),
    (CrcStatus.CRC_ERROR, "-_-_---"),
    (CrcStatus.WRITE_ERROR, "-_--_--"),
])
def test_crc_status_is_0_sss_1_on_dat0(status: CrcStatus, dat0: str) -> None:
    tok = CrcStatusToken(P, 6 * P, P, status=int(status))
    assert diagram(render([tok], "DAT0", 0, 8 * P), P // 2, P, 7) == dat0


def test_crc_status_accepted_is_0_010_1() -> None:
    tok = CrcStatusToken(0, 5 * P, P, status=CrcStatus.ACCEPTED)
    assert wire([tok], "DAT0").tolist() == [0, 0, 1, 0, 1]


def test_busy_holds_dat0_low() -> None:
    busy = BusyToken(2 * P, 6 * P, P, reason="program")
    edges = render([busy], "DAT0", 0, 8 * P)
    assert edges.times.tolist() == [0, 2 * P, 6 * P]
    assert diagram(edges, P // 2, P, 8) == "--____--"
    for n in (1, 2, 3):
        assert render([busy], f"DAT{n}", 0, 8 * P).levels.tolist() == [1]


# --- clocks (§1, §10) ---------------------------------------------------------------------


def test_clock_is_low_then_rises_at_mid_period() -> None:
    tok = IdleToken(0, 3 * 8, 8)
    assert diagram(render([tok], "CLK", -4, 28), -4, 2, 16) == "____--__--__--__"


def test_clock_runs_through_gaps_at_period_in_force() -> None:
    slow = IdleToken(0, 16, 8)  # 2 clocks at period 8
    fast = CommandToken(32, 32 + 48 * 4, 4, index=0)  # begins after a 2-clock gap
    clk = render([slow, fast], "CLK", -8, 32 + 48 * 4 + 8)
    # before the first token low; the gap keeps the slow period; then the fast clock
    assert diagram(clk, -8, 2, 4 + 16 + 4) == "____" + "__--" * 4 + "_-_-"
    assert diagram(clk, 32 + 48 * 4 - 4, 2, 6) == "_-" + "____"  # low after the last token


def test_clock_period_follows_the_token_that_began_last() -> None:
    # a long slow token and a fast one that begins inside it: the fast clock is in force
    tokens = [BusyToken(0, 400, 8), CommandToken(80, 80 + 48 * 4, 4, index=13)]
    clk = render(tokens, "CLK", 64, 120)
    assert diagram(clk, 64, 2, 28) == "__--" * 2 + "_-" * 10


def test_decimated_clock_never_materialises() -> None:
    ten_seconds = IdleToken(0, 10 * PS_PER_S, 20_000, reason="50 MHz")  # 10^9 clocks
    tracemalloc.start()
    try:
        edges = render([ten_seconds], "CLK", 0, 10 * PS_PER_S, max_edges=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # 500 buckets of 20 ms, each holding clock edges: each shows both levels
    assert len(edges) == 1000
    assert edges.levels.tolist() == [0, 1] * 500
    assert edges.times[::2].tolist() == list(range(0, 10 * PS_PER_S, 20 * 10**9))


# --- SPI (Part A) -------------------------------------------------------------------------


def test_spi_mode0_msb_first() -> None:
    dummy = SpiToken(0, 16 * P, P, what="deselected", mosi=FF * 2, miso=FF * 2)
    cmd0 = SpiToken(16 * P, 64 * P, P, what="cmd", mosi=command_frame(0, 0), miso=FF * 6)
    r1 = SpiToken(80 * P, 88 * P, P, what="rsp", mosi=FF, miso=b"\x01")
    tokens = [dummy, cmd0, r1]
    assert wire_bytes(tokens, "MOSI", "SCLK") == "FFFF400000000095FF"
    assert wire_bytes(tokens, "MISO", "SCLK") == "FFFFFFFFFFFFFFFF01"
    t0, t1 = window(tokens)
    sclk = render(tokens, "SCLK", t0, t1)
    assert diagram(sclk, 0, P // 2, 4) == "_-_-"  # idle low, rising mid-bit (CPOL 0, CPHA 0)
    assert diagram(sclk, 64 * P, P // 2, 32) == "_" * 32  # no clock between byte runs
    cs = render(tokens, "CS", t0, t1)
    assert cs.times.tolist() == [t0, 16 * P, 64 * P, 80 * P, 88 * P]
    assert cs.levels.tolist() == [1, 0, 1, 0, 1]  # high for the dummy clocks (A.1)


def test_spi_lines_idle_high() -> None:
    run = SpiToken(0, 8 * P, P, what="rsp", mosi=b"\x00", miso=b"\x00")
    for line in ("MOSI", "MISO", "CS"):
        assert render([run], line, -P, 9 * P).levels.tolist() == [1, 0, 1]


# --- payloads the trace dropped -------------------------------------------------------------


def test_dropped_payload_renders_unknown() -> None:
    crcs = tuple(crc16_lanes(SPEC_BLOCK, 4))
    dropped = block(None, 4, nbytes=512, crcs=crcs)
    bits = wire([dropped], "DAT2")
    assert bits[0] == 0 and bits[-1] == 1
    assert set(bits[1:1025].tolist()) == {UNKNOWN}
    assert int("".join(map(str, bits[1025:1041])), 2) == crcs[2]  # the CRC is kept
    run = SpiToken(0, 16 * P, P, what="data", mosi=None, miso=None)
    for line in ("MOSI", "MISO"):
        assert render([run], line, 0, 16 * P).levels.tolist() == [UNKNOWN]
    assert render([run], "CS", 0, 16 * P).levels.tolist() == [0]


# --- window shape, decimation -------------------------------------------------------------


def mixed_tokens(seed: int) -> list[Token]:
    """Random SD activity: commands, responses, blocks (some dropped), CRC status, busy."""
    rng = random.Random(seed)
    out: list[Token] = []
    t = 0
    for _ in range(40):
        kind = rng.choice("crdsb")
        if kind == "c":
            tok: Token = CommandToken(t, t + 48 * P, P, index=rng.randrange(64),
                                      arg=rng.getrandbits(32), crc_ok=rng.random() < 0.8)
        elif kind == "r":
            tok = ResponseToken(t, t + 48 * P, P, type="R1", index=17, value=rng.getrandbits(32))
        elif kind == "d":
            width, n = rng.choice((1, 4)), rng.choice((8, 64, 512))
            data = rng.choice([bytes(n), b"\xff" * n, rng.randbytes(n), None])
            tok = block(data, width, t, nbytes=n, crcs=tuple(crc16_lanes(bytes(n), width)))
        elif kind == "s":
            tok = CrcStatusToken(t, t + 5 * P, P, status=rng.choice(list(CrcStatus)))
        else:
            tok = BusyToken(t, t + rng.randrange(1, 3000) * P, P)
        out.append(tok)
        t = tok.end + rng.randrange(0, 40) * P
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("signal", SD_SIGNALS)
def test_edges_start_at_t0_increase_and_change_at_every_point(seed: int, signal: str) -> None:
    tokens = mixed_tokens(seed)
    end = max(t.end for t in tokens)
    for t0, t1 in [(-P, end + P), (end // 3, end // 2), (end // 2 + 7, end // 2 + 3 * P)]:
        for max_edges in (None, 64):
            edges = render(tokens, signal, t0, t1, max_edges=max_edges)
            assert edges.times.dtype == np.int64 and edges.levels.dtype == np.uint8
            assert edges.times[0] == t0 and edges.times[-1] < t1
            assert np.all(np.diff(edges.times) > 0)
            assert np.all(edges.levels[1:] != edges.levels[:-1])
            assert max_edges is None or len(edges) <= max_edges


def buckets(t0: int, t1: int, max_edges: int) -> list[tuple[int, int]]:
    """The window split into max_edges // 2 buckets of equal whole-ps width."""
    width = max(2, -(-(t1 - t0) // (max_edges // 2)))
    return [(a, min(a + width, t1)) for a in range(t0, t1, width)]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("signal", ["CLK", "CMD", "DAT0", "DAT3"])
def test_every_bucket_with_a_transition_shows_both_levels(seed: int, signal: str) -> None:
    tokens = mixed_tokens(seed)
    t0, t1 = -P, max(t.end for t in tokens) + P
    exact = render(tokens, signal, t0, t1)
    max_edges = min(len(exact) // 3, 400)
    peak = render(tokens, signal, t0, t1, max_edges=max_edges)
    assert len(peak) <= max_edges
    for a, b in buckets(t0, t1, max_edges):
        inside = exact.times[(exact.times > a) & (exact.times < b)]
        shown = set(peak.levels[(peak.times >= a) & (peak.times < b)].tolist()) | {
            int(peak.at(a))}
        assert int(peak.at(a)) == int(exact.at(a))
        if inside.size:
            assert len(shown) == 2 and shown <= set(exact.levels.tolist())
        else:
            assert shown == {int(exact.at(a))}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("signal", ["CMD", "DAT0", "DAT1"])
def test_decimated_lines_match_whether_built_from_bits_or_from_tokens(
        seed: int, signal: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = mixed_tokens(seed)
    t0, t1 = P // 3, max(t.end for t in tokens)
    max_edges = len(render(tokens, signal, t0, t1)) // 3  # too many edges: decimate
    from_bits = render(tokens, signal, t0, t1, max_edges=max_edges)
    monkeypatch.setattr(waveform, "EXACT_BITS", 0)  # no bit unpacking inside one bucket
    from_tokens = render(tokens, signal, t0, t1, max_edges=max_edges)
    assert from_tokens.times.tolist() == from_bits.times.tolist()
    assert from_tokens.levels.tolist() == from_bits.levels.tolist()


def test_window_inside_a_token_starts_with_its_bit_at_t0() -> None:
    cmd = CommandToken(0, 48 * P, P, index=0x3F, arg=0)  # 0 1 111111 then zeros
    edges = render([cmd], "CMD", 3 * P + 5, 20 * P)
    assert edges.times.tolist() == [3 * P + 5, 8 * P]
    assert edges.levels.tolist() == [1, 0]


# --- what the encoder ignores, and errors -------------------------------------------------


def test_findings_and_timeline_events_draw_nothing() -> None:
    cmd = CommandToken(0, 48 * P, P, index=8, arg=0x1AA)
    noise: list[Token] = [
        FindingToken(0, 48 * P, P, code="framing", finding_line=Line.CMD),
        StateEvent(10 * P, 10 * P, P, old="idle", new="ready"),
    ]
    for signal in SD_SIGNALS:
        a = render([cmd], signal, 0, 60 * P)
        b = render([cmd, *noise], signal, 0, 60 * P)
        assert a.times.tolist() == b.times.tolist() and a.levels.tolist() == b.levels.tolist()


def test_signals_follow_the_token_types() -> None:
    assert signals_for([CommandToken(0, 48, 1)]) == SD_SIGNALS
    assert signals_for([SpiToken(0, 8, 1, what="fill", mosi=FF, miso=FF)]) == SPI_SIGNALS
    assert signals_for([]) == SD_SIGNALS


@pytest.mark.parametrize(("signal", "t0", "t1", "max_edges", "message"), [
    ("CLOCK", 0, 10, None, "unknown signal 'CLOCK'"),
    ("CMD", 10, 10, None, "empty time window"),
    ("CMD", 0, 10, 1, "max_edges must be at least 2"),
])
def test_bad_requests_are_errors(signal: str, t0: int, t1: int, max_edges: int | None,
                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render([], signal, t0, t1, max_edges=max_edges)
