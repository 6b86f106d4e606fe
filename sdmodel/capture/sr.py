"""Read sigrok session files (``.sr``), streamed chunk by chunk.

A ``.sr`` file is a zip archive holding a ``metadata`` INI file and raw logic samples:
``logic-1-1``, ``logic-1-2``, ... (or one ``logic-1`` member in files from sigrok < 0.4).
Every sample is ``unitsize`` little-endian bytes; bit n is probe n+1. The reader checks the
archive before yielding anything and never holds more than one block of samples, so a huge
capture or a zip bomb cannot exhaust memory:

* every member's declared size must be possible for its compression method (deflate never
  expands more than ~1032:1, ``stored`` is 1:1) and the total must stay below
  ``MAX_SAMPLES``;
* members are read in blocks of at most ``BLOCK_SAMPLES`` samples; ``zipfile`` stops at
  the declared size and checks the CRC, so a member that inflates to more fails cleanly;
* the members read may not overlap in the file: a "quoted-overlap" zip bomb lets many
  members share one compressed stream, each within the deflate limit, together far beyond
  it (Python < 3.12 does not check this itself);
* encrypted members and compression methods ``zipfile`` cannot read are refused before
  anything is decoded, and every decompression error becomes a one-line CaptureError.
"""

from __future__ import annotations

import configparser
import lzma
import math
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdmodel.errors import CaptureError

__all__ = [
    "SrCapture",
    "read_sr",
    "parse_samplerate",
    "sample_dtype",
    "MAX_SAMPLES",
    "BLOCK_SAMPLES",
]

MAX_SAMPLES = 1 << 40  # ~1.1e12 samples: days at 10 MHz; anything above is a broken header
BLOCK_SAMPLES = 1 << 20  # samples decompressed and converted at a time
_DEFLATE_MAX_RATIO = 1100  # deflate's hard limit is 1032:1 (+ headers)
_MAX_METADATA = 1 << 16
_LOCAL_HEADER = 30  # fixed part of a zip local file header (APPNOTE 4.3.7)
# LZMA is left out: its header chooses the decoder's dictionary size, so a few bytes could
# make the reader allocate tens of MiB or more (found by the capture fuzzing); no sigrok
# tool writes it.
_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2})
# What zipfile and its decompressors raise for damaged data (bz2 raises a bare OSError).
_READ_ERRORS = (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError,
                zlib.error, lzma.LZMAError, OSError)

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMG]?)(?:Hz)?\s*$")
_RATE_UNIT = {"": 1, "k": 1_000, "M": 1_000_000, "G": 1_000_000_000}


def parse_samplerate(text: str) -> int:
    """Sample rate in Hz from sigrok's spelling: ``"125 MHz"``, ``"1 kHz"``, ``"24000000"``."""
    match = _RATE.match(text)
    if match is None:
        raise CaptureError(f"unreadable sample rate {text.strip()[:40]!r}")
    value = float(match.group(1)) * _RATE_UNIT[match.group(2)]
    if not math.isfinite(value):
        raise CaptureError(f"sample rate {text.strip()[:40]!r} is not a finite number")
    rate = round(value)
    if rate <= 0:
        raise CaptureError(f"sample rate must be positive, not {text.strip()[:40]!r}")
    return rate


def sample_dtype(unitsize: int) -> np.dtype:
    """The unsigned integer type holding one sample of ``unitsize`` bytes."""
    if unitsize == 1:
        return np.dtype(np.uint8)
    if unitsize == 2:
        return np.dtype("<u2")
    return np.dtype("<u4") if unitsize <= 4 else np.dtype("<u8")


@dataclass(frozen=True)
class SrCapture:
    """A checked ``.sr`` file. ``chunks()`` streams its samples."""

    path: Path
    samplerate: int  # Hz
    unitsize: int  # bytes per sample
    nprobes: int
    names: dict[int, str]  # 0-based probe index -> name from the metadata
    members: tuple[str, ...]  # sample members in order
    total_samples: int
    sizes: tuple[int, ...] = field(repr=False, default=())  # declared bytes per member

    @property
    def duration_ps(self) -> int:
        return self.total_samples * 1_000_000_000_000 // self.samplerate

    def chunks(self, block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
        """The samples, one numpy array of at most ``block_samples`` values at a time
        (bit n = probe n+1). Raises CaptureError for truncated or corrupt members."""
        block = max(1, block_samples) * self.unitsize
        dtype = sample_dtype(self.unitsize)
        try:
            with zipfile.ZipFile(self.path) as archive:
                for name, size in zip(self.members, self.sizes, strict=True):
                    got = 0
                    with archive.open(name) as member:
                        while got < size:
                            raw = member.read(min(block, size - got))
                            if not raw:
                                break
                            got += len(raw)
                            if len(raw) % self.unitsize:
                                raise CaptureError(
                                    f"{self.path.name}: {name} ends inside a sample (truncated)"
                                )
                            yield _to_samples(raw, self.unitsize, dtype)
                    if got != size:
                        raise CaptureError(
                            f"{self.path.name}: {name} is truncated ({got} of {size} bytes)"
                        )
        except _READ_ERRORS as e:
            raise _read_error(self.path, "sample data", e) from None


def _read_error(path: Path, what: str, error: BaseException) -> CaptureError:
    """A decompression failure, or an I/O error while reading ``what``, as one line."""
    if isinstance(error, OSError) and error.errno is not None:
        return CaptureError(f"{path.name}: cannot read {what}: {error.strerror or error}")
    reason = " ".join(str(error).split()) or type(error).__name__
    return CaptureError(f"{path.name}: corrupt {what} ({reason})")


def _to_samples(raw: bytes, unitsize: int, dtype: np.dtype) -> np.ndarray:
    if unitsize in (1, 2, 4, 8):
        return np.frombuffer(raw, dtype=dtype)
    # 3, 5, 6, 7 bytes per sample: pad each sample to the next power of two.
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, unitsize)
    padded = np.zeros((rows.shape[0], dtype.itemsize), dtype=np.uint8)
    padded[:, :unitsize] = rows
    return padded.view(dtype).reshape(-1)


def read_sr(path: str | Path) -> SrCapture:
    """Open and check a ``.sr`` file (metadata, members, declared sizes)."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise CaptureError(f"{path.name}: not a sigrok .sr file (not a zip archive)") from None
    except _READ_ERRORS as e:  # e.g. a zip version zipfile does not know
        raise _read_error(path, "archive", e) from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        meta = infos.get("metadata")
        if meta is None:
            raise CaptureError(f"{path.name}: no 'metadata' member (not a sigrok session)")
        _check_member(path, meta)
        file_size = path.stat().st_size
        _check_layout(path, [meta], file_size)
        # zipfile reads a member's whole compressed size in one go: bound both sizes
        if max(meta.file_size, meta.compress_size) > _MAX_METADATA:
            raise CaptureError(f"{path.name}: metadata is implausibly large")
        try:
            text = archive.read("metadata").decode("utf-8", errors="replace")
        except _READ_ERRORS as e:
            raise _read_error(path, "metadata", e) from None
    device = _device_section(path, text)
    unitsize = _int_key(path, device, "unitsize")
    if not 1 <= unitsize <= 8:
        raise CaptureError(f"{path.name}: unitsize {unitsize} is not between 1 and 8")
    nprobes = _int_key(path, device, "total probes")
    if not 1 <= nprobes <= unitsize * 8:
        raise CaptureError(
            f"{path.name}: {nprobes} probes do not fit a unitsize of {unitsize} bytes"
        )
    rate_text = device.get("samplerate")
    if rate_text is None:
        raise CaptureError(f"{path.name}: metadata has no samplerate")
    try:
        samplerate = parse_samplerate(rate_text)
    except CaptureError as e:
        raise CaptureError(f"{path.name}: metadata: {e}") from None
    names = {
        n - 1: device[f"probe{n}"].strip()
        for n in range(1, nprobes + 1)
        if device.get(f"probe{n}", "").strip()
    }
    prefix = device.get("capturefile", "logic-1").strip() or "logic-1"
    members = _sample_members(path, prefix, infos)
    sizes = []
    for name in members:
        info = infos[name]
        _check_member(path, info)
        if info.file_size % unitsize:
            raise CaptureError(
                f"{path.name}: {name} holds {info.file_size} bytes, "
                f"not a multiple of unitsize {unitsize}"
            )
        sizes.append(info.file_size)
    _check_layout(path, [meta, *(infos[name] for name in members)], file_size)
    total = sum(sizes) // unitsize
    if total > MAX_SAMPLES:
        raise CaptureError(
            f"{path.name}: declares {total} samples, more than the limit of {MAX_SAMPLES}"
        )
    return SrCapture(path, samplerate, unitsize, nprobes, names, tuple(members), total,
                     tuple(sizes))


def _device_section(path: Path, text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str.lower  # type: ignore[assignment, method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as e:
        first = str(e).splitlines()[0]
        raise CaptureError(f"{path.name}: garbled metadata ({first})") from None
    if not parser.has_section("device 1"):
        raise CaptureError(f"{path.name}: metadata has no [device 1] section")
    return parser["device 1"]


def _int_key(path: Path, section: configparser.SectionProxy, key: str) -> int:
    value = section.get(key)
    if value is None:
        raise CaptureError(f"{path.name}: metadata has no '{key}'")
    try:
        return int(value.strip())
    except ValueError:
        raise CaptureError(f"{path.name}: metadata '{key}' is not a number: {value!r}") from None


def _sample_members(path: Path, prefix: str, infos: dict[str, zipfile.ZipInfo]) -> list[str]:
    numbered = re.compile(re.escape(prefix) + r"-(\d+)$")
    chunks = sorted(
        (int(m.group(1)), name) for name in infos if (m := numbered.match(name)) is not None
    )
    if chunks:
        for expected, (number, _) in enumerate(chunks, start=1):
            if number != expected:
                raise CaptureError(f"{path.name}: sample chunk {prefix}-{expected} is missing")
        return [name for _, name in chunks]
    if prefix in infos:  # single-member layout of old sigrok versions
        return [prefix]
    raise CaptureError(f"{path.name}: no sample data ({prefix}-1 ... missing)")


def _check_layout(path: Path, infos: list[zipfile.ZipInfo], file_size: int) -> None:
    """Refuse members whose compressed data would overlap another member's (or run past the
    end of the file): each member must own its bytes."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    ends = [info.header_offset for info in ordered[1:]] + [file_size]
    for info, limit in zip(ordered, ends, strict=True):
        if info.header_offset + _LOCAL_HEADER + info.compress_size > limit:
            raise CaptureError(
                f"{path.name}: {info.filename} overlaps the next member or the end of the "
                "file (corrupt, or an overlapping-member zip bomb)"
            )


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a member that cannot be read (encrypted, unknown compression) or whose
    declared size its compression cannot produce (zip bomb or corrupt directory)."""
    if info.flag_bits & 0x1:
        raise CaptureError(f"{path.name}: {info.filename} is encrypted")
    if info.compress_type not in _READABLE_METHODS:
        raise CaptureError(
            f"{path.name}: {info.filename} uses compression method {info.compress_type}, "
            "which sdscope cannot read (sigrok writes deflate)"
        )
    if info.compress_type == zipfile.ZIP_STORED:
        plausible = info.file_size == info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:  # what sigrok writes
        plausible = info.file_size <= (info.compress_size + 64) * _DEFLATE_MAX_RATIO
    else:  # bzip2: no fixed bound; reading stops at the declared size anyway
        plausible = True
    if not plausible:
        raise CaptureError(
            f"{path.name}: {info.filename} declares {info.file_size} bytes from "
            f"{info.compress_size} compressed bytes, which is impossible (corrupt or zip bomb)"
        )
