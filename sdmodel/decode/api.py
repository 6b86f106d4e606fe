"""Decode a capture file: open it, map its channels, stream tokens, summarise.

``decode_capture`` is what the CLI, the GUI's import and the tests call. It is a
generator: samples are read block by block and tokens come out as soon as every line's
decoder has passed them, so memory stays bounded for any capture length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sdmodel.capture.channels import ChannelMap, Mode, map_channels
from sdmodel.capture.source import Capture, open_capture
from sdmodel.decode.edges import sample_edges
from sdmodel.decode.sd import SdDecoder
from sdmodel.decode.spi import SpiDecoder
from sdmodel.tokens import (
    BusyToken,
    CommandToken,
    CrcStatusToken,
    DataToken,
    FindingToken,
    ResponseToken,
    Token,
)

__all__ = ["DecodePlan", "DecodeSummary", "plan_decode", "decode_capture"]

Progress = Callable[[float], None]
_DAT = ("DAT0", "DAT1", "DAT2", "DAT3")


@dataclass(frozen=True)
class DecodePlan:
    """A capture with its channels resolved; ``tokens()`` decodes it."""

    capture: Capture
    channels: ChannelMap

    @property
    def mode(self) -> Mode:
        return self.channels.mode

    @property
    def dat_lines(self) -> int:
        """DAT lines decoded in SD mode: 4 with DAT0-3 mapped, 1 with DAT0, else 0."""
        roles = self.channels.roles
        if self.mode is not Mode.SD or "DAT0" not in roles:
            return 0
        return 4 if all(r in roles for r in _DAT) else 1

    def tokens(self, progress: Progress | None = None) -> Iterator[Token]:
        roles = self.channels.roles
        if self.mode is Mode.SD:
            lines = [roles["CMD"], *(roles[r] for r in _DAT[: self.dat_lines])]
            decoder: SdDecoder | SpiDecoder = SdDecoder(self.dat_lines)
            batches = sample_edges(self.capture, roles["CLK"], lines)
        else:
            lines = [roles["MOSI"], roles["MISO"], roles["CS"]]
            decoder = SpiDecoder()
            batches = sample_edges(self.capture, roles["SCK"], lines, framing=roles["CS"])
        for batch in batches:
            yield from decoder.feed(batch)
            if progress is not None:
                progress(batch.progress)
        yield from decoder.finish()


def plan_decode(
    path: str | Path, mode: str | Mode = "auto", mapping: str | dict[str, str] | None = None
) -> DecodePlan:
    """Open ``path`` and resolve its channels; raises CaptureError with a one-line reason."""
    capture = open_capture(path)
    channels = map_channels(capture.names, capture.nprobes, mode, mapping)
    return DecodePlan(capture, channels)


def decode_capture(
    path: str | Path,
    mode: str | Mode = "auto",
    mapping: str | dict[str, str] | None = None,
    progress: Progress | None = None,
) -> Iterator[Token]:
    """The bus tokens of a capture file, in start-time order (a generator)."""
    return plan_decode(path, mode, mapping).tokens(progress)


@dataclass
class DecodeSummary:
    """Counts over a decoded token stream (``sdscope decode --summary``)."""

    tokens: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    crc_checked: int = 0
    crc_errors: int = 0
    data_blocks: int = 0
    data_bytes: int = 0
    crc_status: Counter[str] = field(default_factory=Counter)
    busy_ps: int = 0
    first_ps: int | None = None
    last_ps: int = 0

    def add(self, token: Token) -> None:
        self.tokens += 1
        if self.first_ps is None:
            self.first_ps = token.start
        self.last_ps = max(self.last_ps, token.end)
        if isinstance(token, CommandToken):
            self.commands[token.name] += 1
        elif isinstance(token, ResponseToken):
            self.responses[token.type] += 1
        elif isinstance(token, DataToken):
            self.data_blocks += 1
            self.data_bytes += token.nbytes
        elif isinstance(token, CrcStatusToken):
            self.crc_status[token.fields()["meaning"]] += 1
        elif isinstance(token, BusyToken):
            self.busy_ps += token.end - token.start
        elif isinstance(token, FindingToken):
            self.findings[token.code] += 1
            self.severities[token.severity] += 1
        crc_ok = token.fields().get("crc_ok")
        if crc_ok is not None:
            self.crc_checked += 1
            self.crc_errors += not crc_ok

    @classmethod
    def of(cls, tokens: Iterable[Token]) -> DecodeSummary:
        summary = cls()
        for token in tokens:
            summary.add(token)
        return summary
