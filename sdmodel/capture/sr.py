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
  the declared size and checks the CRC, so a member that inflates to more fails cleanly.
"""

from __future__ import annotations

import configparser
import re
import zipfile
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

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMG]?)(?:Hz)?\s*$")
_RATE_UNIT = {"": 1, "k": 1_000, "M": 1_000_000, "G": 1_000_000_000}


def parse_samplerate(text: str) -> int:
    """Sample rate in Hz from sigrok's spelling: ``"125 MHz"``, ``"1 kHz"``, ``"24000000"``."""
    match = _RATE.match(text)
    if match is None:
        raise CaptureError(f"unreadable sample rate {text.strip()!r}")
    rate = round(float(match.group(1)) * _RATE_UNIT[match.group(2)])
    if rate <= 0:
        raise CaptureError(f"sample rate must be positive, not {text.strip()!r}")
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
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as e:
            raise CaptureError(f"{self.path.name}: corrupt sample data ({e})") from None


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
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        meta = infos.get("metadata")
        if meta is None:
            raise CaptureError(f"{path.name}: no 'metadata' member (not a sigrok session)")
        _check_member(path, meta)
        if meta.file_size > _MAX_METADATA:
            raise CaptureError(f"{path.name}: metadata is implausibly large")
        try:
            text = archive.read("metadata").decode("utf-8", errors="replace")
        except (zipfile.BadZipFile, EOFError, ValueError) as e:
            raise CaptureError(f"{path.name}: corrupt metadata ({e})") from None
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
    samplerate = parse_samplerate(rate_text)
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


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a member whose declared size its compression cannot produce (zip bomb or
    corrupt directory)."""
    if info.compress_type == zipfile.ZIP_STORED:
        plausible = info.file_size == info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:  # what sigrok writes
        plausible = info.file_size <= (info.compress_size + 64) * _DEFLATE_MAX_RATIO
    else:  # bzip2/lzma: no fixed bound; reading stops at the declared size anyway
        plausible = True
    if not plausible:
        raise CaptureError(
            f"{path.name}: {info.filename} declares {info.file_size} bytes from "
            f"{info.compress_size} compressed bytes, which is impossible (corrupt or zip bomb)"
        )
