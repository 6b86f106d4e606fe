"""Malformed and hostile captures: a clear one-line error, bounded memory, no hang.

Hand-made files (each kind of damage the issue lists, and the zip bombs) go through
``sdscope decode`` in one child process that reports, after each file, its exit code, its
stderr, how long it took and the process's peak resident memory (``VmHWM``, a high-water
mark, so each figure bounds every file decoded before it too). Hypothesis then generates
thousands of broken ``.sr`` archives and VCD texts for the decoder in this process, each
decoded under tracemalloc: anything but a one-line ``CaptureError`` is a bug.

Bounds: MEMORY_LIMIT_MIB for the whole child (interpreter, numpy and the decoder
included), CASE_LIMIT_S per file, EXAMPLE_LIMIT_MIB / EXAMPLE_LIMIT_S per generated input.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdmodel.capture.sr import MAX_SAMPLES
from sdmodel.capture.vcd import MAX_WORD
from sdmodel.decode import decode_capture
from sdmodel.errors import CaptureError

MIB = 1024 * 1024
MEMORY_LIMIT_MIB = 128  # peak RSS of the decoding process (44 MiB after its imports)
CASE_LIMIT_S = 20.0
EXAMPLE_LIMIT_MIB = 32  # traced allocations while decoding one generated input
EXAMPLE_LIMIT_S = 5.0


# --- building blocks -----------------------------------------------------------------------


def metadata(unitsize: object = 1, probes: object = 2, rate: str = "1 MHz",
             names: tuple[str, ...] = ("CLK", "CMD"), capturefile: str = "logic-1") -> str:
    lines = ["[global]", "sigrok version=0.5.2", "", "[device 1]",
             f"capturefile={capturefile}", f"total probes={probes}", f"samplerate={rate}",
             f"unitsize={unitsize}"]
    lines += [f"probe{i + 1}={name}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


GOOD_META = metadata()
SAMPLES = bytes([0, 1, 0, 3, 2, 3]) * 64  # CLK on bit 0, CMD on bit 1


def write_sr(path: Path, meta: str | None = GOOD_META,
             members: dict[str, bytes] | None = None, *,
             declared: dict[str, int] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> None:
    """An .sr archive; ``declared`` overrides sizes in the central directory."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        if meta is not None:
            archive.writestr("metadata", meta)
        for name, data in (members if members is not None else {"logic-1-1": SAMPLES}).items():
            archive.writestr(name, data)
        for name, size in (declared or {}).items():
            archive.getinfo(name).file_size = size


def patched(build: Callable[[Path], None], patch: Callable[[bytearray], None]
            ) -> Callable[[Path], None]:
    """``build``, then rewrite some bytes of the file."""

    def make(path: Path) -> None:
        build(path)
        data = bytearray(path.read_bytes())
        patch(data)
        path.write_bytes(bytes(data))

    return make


def sample_member_headers(data: bytearray) -> tuple[int, int]:
    """Offsets of the local and the central header of logic-1-1 (their fixed parts are 30
    and 46 bytes long, then comes the name; APPNOTE 4.3.7, 4.3.12)."""
    local = data.index(b"logic-1-1")
    central = data.index(b"logic-1-1", local + 1)
    return local - 30, central - 46


def set_flag_encrypted(data: bytearray) -> None:
    local, central = sample_member_headers(data)
    data[local + 6] |= 1
    data[central + 8] |= 1


def set_method_ppmd(data: bytearray) -> None:
    local, central = sample_member_headers(data)
    data[local + 8] = data[central + 10] = 98  # PPMd: a method zipfile cannot read


def garble_deflate(data: bytearray) -> None:
    start = data.index(b"logic-1-1") + len("logic-1-1")
    data[start] = 0xFF  # BFINAL 1, BTYPE 11: an invalid deflate block type (RFC 1951 3.2.3)


def quoted_overlap_bomb(path: Path, members: int = 2000, zeros: int = 256 * 1024) -> None:
    """David Fifield's "quoted overlap" zip bomb: member i's deflate stream quotes the
    local headers of members i+1.. in stored blocks and ends in one shared kernel, so every
    member is valid (CRCs included) and within deflate's ratio, but together the 200 KiB
    file declares about 600 MB of samples. Local headers carry no sizes (zipfile reads
    the central directory's)."""
    meta = GOOD_META.encode()
    names = [f"logic-1-{i + 1}".encode() for i in range(members)]

    def local(name: bytes, method: int, crc: int = 0, size: int = 0) -> bytes:
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, size,
                           size, len(name), 0) + name

    def central(name: bytes, method: int, crc: int, csize: int, usize: int,
                offset: int) -> bytes:
        return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                           csize, usize, len(name), 0, 0, 0, 0, 0, offset) + name

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = compressor.compress(bytes(zeros)) + compressor.flush()
    heads = [local(name, zipfile.ZIP_DEFLATED) for name in names]
    body = bytearray(local(b"metadata", zipfile.ZIP_STORED, zlib.crc32(meta), len(meta)) + meta)
    offsets = []
    for i, head in enumerate(heads):
        offsets.append(len(body))
        body += head
        if i + 1 < members:  # a stored deflate block quoting the next local header
            body += b"\x00" + struct.pack("<HH", len(heads[i + 1]), len(heads[i + 1]) ^ 0xFFFF)
    body += kernel
    directory = bytearray(central(b"metadata", zipfile.ZIP_STORED, zlib.crc32(meta),
                                  len(meta), len(meta), 0))
    for i, name in enumerate(names):
        quoted = b"".join(heads[i + 1:])
        crc = zlib.crc32(bytes(zeros), zlib.crc32(quoted))
        start = offsets[i] + len(heads[i])
        directory += central(name, zipfile.ZIP_DEFLATED, crc, len(body) - start,
                             len(quoted) + zeros, offsets[i])
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members + 1, members + 1,
                      len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))


def text_file(text: str | bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return make


VCD_HEADER = """$date today $end
$timescale {ts} $end
$scope module sd $end
$var wire 1 ! CLK $end
$var wire 1 " CMD $end
$upscope $end
$enddefinitions $end
"""


def vcd(body: str, ts: str = "1 ns") -> str:
    return VCD_HEADER.format(ts=ts) + body


def one_line_vcd(changes: int) -> Callable[[Path], None]:
    """A valid VCD without a single line break in its body."""

    def make(path: Path) -> None:
        with path.open("w") as out:
            out.write(vcd(""))
            for start in range(0, changes, 10_000):
                out.write(" ".join(f"#{i} {i & 1}!" for i in range(start, start + 10_000)))
                out.write(" ")

    return make


def zeros_sr(size: int) -> Callable[[Path], None]:
    """A legal deflate bomb: ``size`` samples of silence compressed ~1000:1 (sigrok writes
    long idle captures like this)."""

    def make(path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            archive.writestr("metadata", GOOD_META)
            with archive.open("logic-1-1", "w", force_zip64=True) as member:
                for _ in range(size // MIB):
                    member.write(bytes(MIB))

    return make


# --- the hand-made cases ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    suffix: str
    make: Callable[[Path], None]
    message: str | None  # in the one error line; None: the file decodes (exit 0)
    options: tuple[str, ...] = ()


CASES: dict[str, Case] = {
    # .sr
    "sr-not-a-zip": Case(".sr", text_file(b"hello, not a zip archive"), "not a zip archive"),
    "sr-truncated-archive": Case(".sr", patched(write_sr, lambda d: d.__delitem__(
        slice(-40, None))), "not a zip archive"),
    "sr-missing-metadata": Case(".sr", lambda p: write_sr(p, None), "no 'metadata' member"),
    "sr-garbled-metadata": Case(".sr", lambda p: write_sr(p, "\0\1 [x garbage"),
                                "garbled metadata"),
    "sr-binary-metadata": Case(".sr", lambda p: write_sr(p, random.Random(1).randbytes(
        4096).decode("latin-1")), "metadata"),
    "sr-unitsize-0": Case(".sr", lambda p: write_sr(p, metadata(unitsize=0)),
                          "unitsize 0 is not between 1 and 8"),
    "sr-unitsize-1000": Case(".sr", lambda p: write_sr(p, metadata(unitsize=1000)),
                             "unitsize 1000 is not between 1 and 8"),
    "sr-infinite-samplerate": Case(".sr", lambda p: write_sr(p, metadata(rate="9" * 400)),
                                   "is not a finite number"),
    "sr-chunk-not-a-multiple-of-unitsize": Case(".sr", lambda p: write_sr(
        p, metadata(unitsize=2), {"logic-1-1": bytes(1001)}), "not a multiple of unitsize 2"),
    "sr-truncated-chunk": Case(".sr", lambda p: write_sr(
        p, members={"logic-1-1": bytes(1000)}, declared={"logic-1-1": 2000}), "truncated"),
    "sr-missing-chunk": Case(".sr", lambda p: write_sr(
        p, members={"logic-1-1": SAMPLES, "logic-1-3": SAMPLES}), "logic-1-2 is missing"),
    "sr-huge-declared-sample-count": Case(".sr", lambda p: write_sr(
        p, members={"logic-1-1": bytes(4096)}, declared={"logic-1-1": MAX_SAMPLES + 1},
        compression=zipfile.ZIP_BZIP2), "more than the limit"),
    "sr-impossible-ratio": Case(".sr", lambda p: write_sr(
        p, members={"logic-1-1": bytes(4096)}, declared={"logic-1-1": 1 << 45}),
        "impossible (corrupt or zip bomb)"),
    "sr-zip-bomb-declared-small": Case(".sr", lambda p: write_sr(
        p, members={"logic-1-1": bytes(64 * MIB)}, declared={"logic-1-1": MIB}),
        "corrupt sample data"),
    "sr-quoted-overlap-zip-bomb": Case(".sr", quoted_overlap_bomb,
                                       "overlapping-member zip bomb"),
    "sr-encrypted-member": Case(".sr", patched(write_sr, set_flag_encrypted), "is encrypted"),
    "sr-unknown-compression": Case(".sr", patched(write_sr, set_method_ppmd),
                                   "compression method 98"),
    "sr-corrupt-deflate-stream": Case(".sr", patched(write_sr, garble_deflate),
                                      "corrupt sample data"),
    "sr-256MiB-of-silence": Case(".sr", zeros_sr(256 * MIB), None),
    # VCD
    "vcd-not-a-vcd": Case(".vcd", text_file("hello world\n"), "not a VCD file"),
    "vcd-empty": Case(".vcd", text_file(""), "empty file"),
    "vcd-binary-garbage": Case(".vcd", text_file(b"$" + random.Random(2).randbytes(MIB)),
                               "truncated: the file ends inside $"),
    "vcd-unclosed-comment": Case(".vcd", text_file("$comment " + "word " * (2 * MIB)),
                                 "truncated: the file ends inside $comment"),
    "vcd-unknown-timescale": Case(".vcd", text_file(vcd("#0\n1!\n", ts="3 ns")),
                                  "unknown VCD timescale '3 ns'"),
    "vcd-no-timescale": Case(".vcd", text_file(vcd("").replace("$timescale 1 ns $end\n", "")),
                             "no $timescale"),
    "vcd-no-1-bit-signals": Case(".vcd", text_file(
        "$timescale 1 ns $end\n$var wire 8 # BUS $end\n$enddefinitions $end\n#0\n"),
        "no 1-bit signals declared"),
    "vcd-missing-signals": Case(".vcd", text_file(vcd("#0\n1!\n")),
                                "no channel for MISO, CS", ("--mode", "spi")),
    "vcd-truncated-header": Case(".vcd", text_file(vcd("")[:80]), "truncated"),
    "vcd-truncated-body": Case(".vcd", text_file(vcd("#0\n1!\n#5\n0")),
                               "value change without identifier"),
    "vcd-time-goes-backwards": Case(".vcd", text_file(vcd("#10\n1!\n#5\n0!\n")),
                                    "time goes backwards"),
    "vcd-timestamp-beyond-int64": Case(".vcd", text_file(vcd("#0 1! #99999999999 0!",
                                                             ts="1 s")), "is too late"),
    "vcd-word-without-whitespace": Case(".vcd", text_file(vcd("#0 " + "1" * (4 * MAX_WORD))),
                                        "a word of more than"),
    "vcd-500k-changes-on-one-line": Case(".vcd", one_line_vcd(500_000), None),
}

RUNNER = r"""
import contextlib, io, json, resource, sys, time
from app.cli import main

def peak_mib():
    # VmHWM: this process's own peak. ru_maxrss would also count the pytest process the
    # child was forked from (Linux carries the old address space's peak across exec).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(json.dumps({"name": "", "peak_mib": peak_mib()}), flush=True)  # after the imports
for name, argv in json.loads(sys.stdin.read()):
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException as error:  # reported, so the other files still run
            code = f"escaped {type(error).__name__}: {error}"
    print(json.dumps({"name": name, "code": code, "stderr": err.getvalue(),
                      "seconds": time.perf_counter() - start,
                      "peak_mib": peak_mib()}), flush=True)
"""


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every hand-made file decoded by ``sdscope decode --summary`` in one child process."""
    folder = tmp_path_factory.mktemp("hostile")
    jobs = []
    for name, case in CASES.items():
        path = folder / f"{name}{case.suffix}"
        case.make(path)
        jobs.append((name, ["decode", str(path), "--summary", *case.options]))
    child = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(jobs),
                           capture_output=True, text=True, timeout=300)
    records = {r["name"]: r for r in map(json.loads, child.stdout.splitlines())}
    imported = records.pop("", {"peak_mib": 0.0})["peak_mib"]
    peak = max((r["peak_mib"] for r in records.values()), default=0.0)
    print(f"reliability: {len(records)} hostile captures decoded, peak RSS {peak:.0f} MiB "
          f"({imported:.0f} MiB after the imports)")
    return records


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_capture_is_one_clear_error_in_bounded_memory_and_time(
        decoded: dict[str, dict[str, Any]], name: str) -> None:
    case, record = CASES[name], decoded.get(name)
    assert record is not None, "the decoding process died before this file"
    if case.message is None:
        assert (record["code"], record["stderr"]) == (0, "")
    else:
        assert record["code"] == 2
        assert record["stderr"].startswith("sdscope: error: ")
        assert record["stderr"].count("\n") == 1
        assert case.message in record["stderr"]
    assert record["seconds"] < CASE_LIMIT_S
    assert record["peak_mib"] < MEMORY_LIMIT_MIB


# --- generated inputs ------------------------------------------------------------------------

DECODE_AS = st.sampled_from([
    ("auto", None),
    ("sd", "CLK=0,CMD=1"),
    ("sd", "CLK=0,CMD=1,DAT0=2,DAT1=3,DAT2=4,DAT3=5"),
    ("spi", "SCK=0,MOSI=1,MISO=2,CS=3"),
])
PROBE_NAMES = st.sampled_from(["CLK", "CMD", "DAT0", "DAT1", "DAT2", "DAT3", "SCK", "MOSI",
                               "MISO", "CS#", "x", ""])
NUMBERS = st.one_of(st.integers(-2, 70).map(str),
                    st.sampled_from(["", "two", "1e3", "9" * 30, "0x10", " 4 "]))
RATES = st.one_of(st.sampled_from(["1 MHz", "24 MHz", "125 MHz", "1 kHz", "0 Hz", "-1 MHz",
                                   "1.5 GHz", "9" * 400, "quick", "24000000"]),
                  st.text(max_size=12))
MEMBER_NAMES = st.sampled_from(["logic-1-1", "logic-1-2", "logic-1-3", "logic-1",
                                "logic-2-1", "../logic-1-1", "/logic-1-1", "metadata"])
COMPRESSION = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                               zipfile.ZIP_LZMA])


def mostly(valid: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]
           ) -> st.SearchStrategy[Any]:
    """``valid`` four times in five, else ``wild``: most archives get past the metadata
    checks, so that the damage reaches the sample data and the decoders."""
    return st.integers(0, 4).flatmap(lambda n: wild if n == 0 else valid)


SIX_PROBES = ["CLK", "CMD", "DAT0", "DAT1", "DAT2", "DAT3"]


@st.composite
def sr_archives(draw: st.DrawFn) -> bytes:
    """A sigrok session, mostly well-formed, with random samples, then damaged: wrong
    metadata values, odd members, changed bytes anywhere, a cut-off end."""
    unitsize = draw(mostly(st.sampled_from(["1", "2", "4"]), NUMBERS))
    values = {
        "capturefile": mostly(st.just("logic-1"), st.sampled_from(["logic-2", "", "../logic-1"])),
        "total probes": mostly(st.just("6"), NUMBERS),
        "samplerate": mostly(st.sampled_from(["1 MHz", "24 MHz", "125 MHz"]), RATES),
        "unitsize": st.just(unitsize),
    }
    lines = draw(mostly(st.just(["[global]", "sigrok version=0.5.2", "[device 1]"]),
                        st.sampled_from([[], ["[device 2]"], ["[device 1"]])))
    lines += [f"{key}={draw(value)}" for key, value in values.items() if draw(st.integers(0, 9))]
    names = draw(mostly(st.just(SIX_PROBES), st.lists(PROBE_NAMES, max_size=10)))
    lines += [f"probe{i + 1}={name}" for i, name in enumerate(names)]
    width = int(unitsize) if unitsize in ("1", "2", "4") else 1
    chunks = [draw(st.binary(max_size=4096)) for _ in range(draw(st.integers(1, 3)))]
    members = draw(mostly(
        st.just({f"logic-1-{i + 1}": data[:len(data) // width * width]
                 for i, data in enumerate(chunks)}),
        st.dictionaries(MEMBER_NAMES, st.binary(max_size=3000), max_size=4)))
    buffer = _zip_bytes("\n".join(lines), members, draw(COMPRESSION))
    damage = draw(mostly(st.just([]), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                               min_size=1, max_size=4)))
    for where, byte in damage:
        buffer[min(int(where * len(buffer)), len(buffer) - 1)] = byte
    cut = draw(mostly(st.none(), st.floats(0, 1)))
    return bytes(buffer if cut is None else buffer[:int(cut * len(buffer))])


def _zip_bytes(meta: str, members: dict[str, bytes], compression: int) -> bytearray:
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        archive.writestr("metadata", meta)
        for name, data in members.items():
            if name != "metadata":
                archive.writestr(name, data)
    return bytearray(out.getvalue())


CODES = st.sampled_from(["!", '"', "#", "%", "&"])
VCD_TOKENS = st.one_of(
    st.sampled_from(["$end", "$dumpvars", "$dumpall", "$comment", "$scope", "module", "top",
                     "$upscope", "$enddefinitions", "$timescale", "1", "ns", "10ps", "3",
                     "$var", "wire", "reg", "real", "8", "CLK", "CMD", "DAT0", "#", "x", "\0"]),
    st.builds(lambda t: f"#{t}", st.one_of(st.integers(-5, 10**6), st.integers(0, 10**40))),
    st.builds(lambda v, c: v + c, st.sampled_from(["0", "1", "x", "z", "X", "Z"]), CODES),
    st.builds(lambda v: f"b{v}", st.text("01xz", max_size=9)),
    st.builds(lambda v: f"r{v}", st.floats(allow_nan=True).map(str)),
    CODES,
    st.text(max_size=6),
)


@st.composite
def vcd_texts(draw: st.DrawFn) -> str:
    """A plausible VCD header (or part of one) followed by a soup of VCD words."""
    header = ["$timescale", draw(st.sampled_from(["1 ns", "10 ps", "100 fs", "1 s", "3 ns",
                                                  "ns", ""])), "$end"]
    for _ in range(draw(st.integers(0, 6))):
        header += ["$var", draw(st.sampled_from(["wire", "reg", "real"])),
                   draw(st.sampled_from(["1", "1", "2", "x"])), draw(CODES), draw(PROBE_NAMES),
                   "$end"]
    if draw(st.integers(0, 4)):
        header += ["$enddefinitions", "$end"]
    words = header[:draw(st.integers(0, len(header)))] if draw(st.integers(0, 3)) == 0 \
        else header
    words += draw(st.lists(VCD_TOKENS, max_size=80))
    spaces = draw(st.lists(st.sampled_from([" ", "\n", "\t", "  "]), min_size=len(words),
                           max_size=len(words)))
    return "".join(word + space for word, space in zip(words, spaces, strict=True))


def decode_within_bounds(path: Path, mode: str, mapping: str | None) -> None:
    """Decode to the end: only a one-line CaptureError may stop it, within the bounds."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        for _ in decode_capture(path, mode, mapping):
            pass
    except CaptureError as error:
        assert str(error) and "\n" not in str(error)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < EXAMPLE_LIMIT_S
    assert peak < EXAMPLE_LIMIT_MIB * MIB


FUZZ = settings(max_examples=1500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(archive=sr_archives(), decode_as=DECODE_AS)
def test_generated_sr_archives_decode_or_fail_cleanly(
        tmp_path: Path, archive: bytes, decode_as: tuple[str, str | None]) -> None:
    path = tmp_path / "fuzz.sr"
    path.write_bytes(archive)
    decode_within_bounds(path, *decode_as)


@FUZZ
@given(text=vcd_texts(), decode_as=DECODE_AS)
def test_generated_vcd_texts_decode_or_fail_cleanly(
        tmp_path: Path, text: str, decode_as: tuple[str, str | None]) -> None:
    path = tmp_path / "fuzz.vcd"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    decode_within_bounds(path, *decode_as)
