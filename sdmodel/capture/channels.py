"""Which capture channel carries which bus signal, and which mode (SD or SPI) to decode.

Names come from the file (``probeN=`` in ``.sr`` metadata, ``$var`` in VCD) and are
matched case-insensitively against the spellings below; a user mapping such as
``CLK=0,CMD=4`` (0-based channel index, or a channel name) overrides them. Mode ``auto``
picks SD when a clock and a channel spelled like CMD exist, SPI when a clock and an
SPI spelling (CS, MOSI, MISO, ...) exist. DAT3 never selects SPI: probes that are not
connected read a constant 0 (the i.MX6 capture's DAT3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sdmodel.errors import CaptureError

__all__ = ["Mode", "ChannelMap", "ROLE_SPELLINGS", "REQUIRED", "map_channels", "parse_mapping"]


class Mode(str, Enum):
    SD = "sd"
    SPI = "spi"


# Canonical role -> accepted spellings (upper case), per mode. Pin correspondence: SD card
# pin 1 DAT3 = CS#, pin 2 CMD = DI/MOSI, pin 5 CLK = SCLK, pin 7 DAT0 = DO/MISO (§7.2).
ROLE_SPELLINGS: dict[Mode, dict[str, tuple[str, ...]]] = {
    Mode.SD: {
        "CLK": ("CLK", "SCK", "SCLK", "CLOCK", "SDCLK", "SD_CLK"),
        "CMD": ("CMD", "SDCMD", "SD_CMD", "MOSI", "DI"),
        "DAT0": ("DAT0", "SD_DAT0", "MISO", "DO"),
        "DAT1": ("DAT1", "SD_DAT1"),
        "DAT2": ("DAT2", "SD_DAT2"),
        "DAT3": ("DAT3", "SD_DAT3", "CD/DAT3"),
    },
    Mode.SPI: {
        "SCK": ("SCK", "SCLK", "CLK", "CLOCK"),
        "MOSI": ("MOSI", "DI", "SDI", "CMD"),
        "MISO": ("MISO", "DO", "SDO", "DAT0"),
        "CS": ("CS#", "CS", "NCS", "CSN", "CS_N", "/CS", "SS", "SS#", "NSS", "DAT3"),
    },
}
REQUIRED: dict[Mode, tuple[str, ...]] = {
    Mode.SD: ("CLK", "CMD"),
    Mode.SPI: ("SCK", "MOSI", "MISO", "CS"),
}
# Spellings that only one mode uses: they decide ``auto``.
_SD_MARKERS = frozenset({"CMD", "SDCMD", "SD_CMD"})
_SPI_MARKERS = frozenset({"MOSI", "MISO", "DI", "DO", "SDI", "SDO", "SCK", "SCLK",
                          "CS#", "CS", "NCS", "CSN", "CS_N", "/CS", "SS", "SS#", "NSS"})
_CLOCKS = frozenset({"CLK", "SCK", "SCLK", "CLOCK", "SDCLK", "SD_CLK"})


def _norm(name: str) -> str:
    return "".join(name.split()).upper()


@dataclass(frozen=True)
class ChannelMap:
    mode: Mode
    roles: dict[str, int]  # canonical role -> 0-based channel index
    names: dict[int, str]  # channel index -> name in the file

    def describe(self) -> str:
        return ", ".join(
            f"{role}={index}" + (f" ({self.names[index]})" if index in self.names else "")
            for role, index in self.roles.items()
        )


def parse_mapping(text: str) -> dict[str, str]:
    """``"CLK=0, CMD=4"`` -> ``{"CLK": "0", "CMD": "4"}`` (keys upper-cased)."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CaptureError(f"bad channel mapping {item.strip()!r}: expected ROLE=CHANNEL")
        pairs[_norm(key)] = value.strip()
    return pairs


def _available(names: dict[int, str], nchannels: int) -> str:
    named = ", ".join(f"{i}={n}" for i, n in sorted(names.items()))
    unnamed = nchannels - len(names)
    if not named:
        return f"channels 0-{nchannels - 1}, all unnamed"
    return f"channels {named}" + (f" ({unnamed} unnamed, 0-{nchannels - 1})" if unnamed else "")


def _infer_mode(names: dict[int, str], nchannels: int, user: dict[str, str]) -> Mode:
    keys = set(user)  # a user mapping that names SD or SPI signals decides first
    if keys & {"CMD", "DAT0", "DAT1", "DAT2"}:
        return Mode.SD
    if keys & {"MOSI", "MISO", "CS", "SCK"}:
        return Mode.SPI
    spelled = {_norm(n) for n in names.values()}
    has_clock = bool(spelled & _CLOCKS) or "CLK" in keys
    if has_clock and spelled & _SD_MARKERS:
        return Mode.SD
    if has_clock and spelled & _SPI_MARKERS:
        return Mode.SPI
    raise CaptureError(
        f"cannot tell SD from SPI mode from the channel names; {_available(names, nchannels)}"
        "; use --mode sd|spi and --map"
    )


def map_channels(
    names: dict[int, str],
    nchannels: int,
    mode: str | Mode = "auto",
    mapping: str | dict[str, str] | None = None,
) -> ChannelMap:
    """Resolve bus roles to channel indexes; raises CaptureError naming what is missing
    and listing the channels the file has."""
    user = parse_mapping(mapping) if isinstance(mapping, str) else dict(mapping or {})
    user = {_norm(k): v for k, v in user.items()}
    text = mode.value if isinstance(mode, Mode) else str(mode).lower()
    if text == "auto":
        chosen = _infer_mode(names, nchannels, user)
    else:
        try:
            chosen = Mode(text)
        except ValueError:
            raise CaptureError(f"unknown mode {text!r} (expected sd, spi or auto)") from None
    spellings = ROLE_SPELLINGS[chosen]
    alias = {spelling: role for role, group in spellings.items() for spelling in group}
    by_name: dict[str, int] = {}
    for index, name in sorted(names.items(), reverse=True):
        by_name[_norm(name)] = index  # the lowest index wins for duplicate names
    roles: dict[str, int] = {}
    # Names in the file first, in the order of each role's spellings...
    for role, group in spellings.items():
        for spelling in group:
            if spelling in by_name and by_name[spelling] not in roles.values():
                roles[role] = by_name[spelling]
                break
    # ...then the user's mapping overrides them.
    mapped: dict[str, int] = {}
    for key, value in user.items():
        role = alias.get(key)
        if role is None:
            raise CaptureError(
                f"unknown {chosen.value.upper()}-mode signal {key!r} in the channel mapping; "
                f"expected one of {', '.join(spellings)}"
            )
        mapped[role] = _channel(value, names, nchannels)
    taken = set(mapped.values())
    roles = {r: i for r, i in roles.items() if r in mapped or i not in taken} | mapped
    missing = [r for r in REQUIRED[chosen] if r not in roles]
    if missing:
        raise CaptureError(
            f"no channel for {', '.join(missing)} ({chosen.value.upper()} mode); "
            f"{_available(names, nchannels)}; map them with --map "
            + ",".join(f"{r}=<index|name>" for r in missing)
        )
    ordered = {role: roles[role] for role in spellings if role in roles}
    return ChannelMap(chosen, ordered, dict(names))


def _channel(value: str, names: dict[int, str], nchannels: int) -> int:
    if value.isdigit():  # an index (sigrok's default probe names are the index anyway)
        index = int(value)
        if index >= nchannels:
            raise CaptureError(
                f"channel {index} does not exist; {_available(names, nchannels)}"
            )
        return index
    for index, name in sorted(names.items()):
        if _norm(name) == _norm(value):
            return index
    raise CaptureError(f"no channel named {value!r}; {_available(names, nchannels)}")
