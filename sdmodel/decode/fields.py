"""Register contents of decoded tokens, field by field, from ``sdmodel.registers``.

Which table applies follows from the token and the command it answers: card status in
R1/R1b, RCA and status in R6, OCR in R3, CID or CSD in R2, the echo in R7; data blocks
of ACMD51 (SCR), ACMD13 (SD Status), CMD6 (switch status) and, in SPI mode, CMD9/CMD10
(CSD/CID as a 16-byte block); SPI R1, R2 and data error bits.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sdmodel.commands import lookup
from sdmodel.registers import (
    CARD_STATUS,
    CID,
    OCR,
    R6_STATUS,
    SCR,
    SD_STATUS,
    SPI_R1,
    SPI_R2_STATUS,
    SWITCH_STATUS,
    Register,
    csd_table,
)
from sdmodel.tokens import CommandToken, DataToken, ResponseToken, Token

__all__ = ["FieldRow", "decode_register_fields", "compact_fields", "token_json"]

_R7_FIELDS = lookup(8).args if lookup(8) is not None else ()  # R7 echoes CMD8's fields


class FieldRow(NamedTuple):
    field: str
    value: int
    text: str
    width: int  # bits


def _rows(register: Register, raw: int, prefix: str = "") -> list[FieldRow]:
    try:
        return [FieldRow(prefix + v.field.name, v.value, v.text, v.field.width)
                for v in register.explain(raw)]
    except ValueError:
        return []


def _r7(value: int) -> list[FieldRow]:
    return [FieldRow(a.name, a.get(value), f"0x{a.get(value):X}", a.msb - a.lsb + 1)
            for a in _R7_FIELDS]


def _command_of(token: Token, command: CommandToken | None) -> tuple[int | None, bool]:
    if command is not None:
        return command.index, command.app
    return getattr(token, "for_index", None), bool(getattr(token, "app", False))


def _response_rows(token: ResponseToken, index: int | None) -> list[FieldRow]:
    raw = getattr(token, "raw", None)
    if isinstance(raw, bytes):  # SPI response: R1 first (§7.3.2)
        rows = _rows(SPI_R1, raw[0])
        if token.type == "R2" and len(raw) == 2:
            rows += _rows(SPI_R2_STATUS, raw[1])
        elif token.type == "R3" and len(raw) == 5:
            rows += _rows(OCR, int.from_bytes(raw[1:], "big"))
        elif token.type == "R7" and len(raw) == 5:
            rows += _r7(int.from_bytes(raw[1:], "big"))
        return rows
    value = token.value
    if token.type in ("R1", "R1b"):
        return _rows(CARD_STATUS, value)
    if token.type == "R6":
        return [FieldRow("RCA", value >> 16, f"0x{value >> 16:04X}", 16),
                *_rows(R6_STATUS, value & 0xFFFF)]
    if token.type == "R3":
        return _rows(OCR, value)
    if token.type == "R7":
        return _r7(value)
    if token.type == "R2":
        if index == 9:
            try:
                return _rows(csd_table(value), value)
            except ValueError:
                return []
        if index in (2, 10):
            return _rows(CID, value)
    return []


def _data_rows(token: DataToken, index: int | None, app: bool) -> list[FieldRow]:
    data = token.data
    if not data or index is None or token.to_card:
        return []
    raw = int.from_bytes(data, "big")
    table: Register | None = None
    if app and index == 51:
        table = SCR
    elif app and index == 13:
        table = SD_STATUS
    elif not app and index == 6:
        table = SWITCH_STATUS
    elif not app and index == 10:
        table = CID
    elif not app and index == 9:
        try:
            table = csd_table(raw) if len(data) == 16 else None
        except ValueError:
            return []
    if table is None or len(data) * 8 != table.width:
        return []
    return _rows(table, raw)


def decode_register_fields(
    token: Token, command: CommandToken | None = None
) -> list[FieldRow]:
    """The register fields a response or data token carries, as (field, value, text,
    width) rows; empty when the token holds no register. ``command`` is the command the
    token answers (defaults to the token's own ``for_index``/``app``)."""
    index, app = _command_of(token, command)
    if isinstance(token, ResponseToken):
        return _response_rows(token, index)
    if isinstance(token, DataToken):
        return _data_rows(token, index, app)
    return []


def compact_fields(token: Token, command: CommandToken | None = None) -> dict[str, str]:
    """Multi-bit fields and the single-bit flags that are set, as ``{field: text}``."""
    return {r.field: r.text for r in decode_register_fields(token, command)
            if r.width > 1 or r.value}


def token_json(token: Token) -> dict[str, Any]:
    """``token.to_json()`` plus a compact ``fields`` dict for responses and register data."""
    out = token.to_json()
    if isinstance(token, (ResponseToken, DataToken)):
        fields = compact_fields(token)
        if fields:
            out["fields"] = fields
    return out
