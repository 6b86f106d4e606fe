"""Byte sizes as people write them: ``512``, ``64MiB``, ``2GB``, ``1.5 GiB``.

One grammar for every size the product reads (image sizes, the disk-full fault...):
decimal units are powers of 1000 (what card packaging says), binary ones powers of 1024;
ambiguous shorthands like ``64M`` are refused rather than guessed.
"""

from __future__ import annotations

import re
from fractions import Fraction

from sdmodel.errors import SizeError

__all__ = ["parse_size", "format_size", "parse_frequency", "format_frequency"]

# Decimal units are powers of 1000 (what card packaging says), binary ones powers of 1024.
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``512``, ``64MiB``, ``2GB``, ``1.5 GiB`` (a whole number of bytes)."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise SizeError(f"cannot read size {text!r}; write it like 64MiB, 2GB or 512")
    number, unit = match.groups()
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise SizeError(
            f"unknown size unit {unit!r} in {text!r}; use bytes or one of "
            "KB, MB, GB, TB, KiB, MiB, GiB, TiB"
        )
    value = Fraction(number) * factor
    if value.denominator != 1:
        raise SizeError(f"size {text!r} is not a whole number of bytes")
    return int(value)


def format_size(size: int) -> str:
    """``size`` bytes in the largest binary unit that keeps it readable: ``64 MiB``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            text = f"{size / factor:.2f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    return f"{size} B"


_HZ_UNITS: dict[str, int] = {"": 1, "hz": 1, "khz": 1000, "mhz": 1000**2, "ghz": 1000**3}


def parse_frequency(text: str) -> int:
    """Hertz in ``text``: ``400000``, ``400kHz``, ``25 MHz``, ``1.5MHz`` (whole hertz)."""
    match = _SIZE_RE.match(text)
    factor = _HZ_UNITS.get(match.group(2).lower()) if match else None
    if match is None or factor is None:
        raise SizeError(f"cannot read frequency {text!r}; write it like 25MHz, 400kHz or 400000")
    value = Fraction(match.group(1)) * factor
    if value.denominator != 1 or value <= 0:
        raise SizeError(f"frequency {text!r} is not a positive whole number of hertz")
    return int(value)


def format_frequency(hz: float) -> str:
    """``25 MHz``, ``400 kHz``, ``1.5 MHz``."""
    for unit, factor in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if hz >= factor:
            return f"{hz / factor:g} {unit}"
    return f"{hz:g} Hz"
