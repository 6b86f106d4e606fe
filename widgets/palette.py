"""Colours of sdscope's views: one per bus signal, one per token kind, red for errors.

The hex tables are the source (stylesheets can use them too); ``qcolor`` turns an entry
into a cached QColor. ``token_color`` is what a view paints a token with: the colour of
its kind, or ``ERROR`` when the token is an error (:func:`is_error`). Colours are chosen
to read on the waveform's dark background and on a light table.
"""

from __future__ import annotations

from functools import cache

from sdmodel.tokens import CommandToken, CrcStatus, CrcStatusToken, FindingToken, SpiToken, Token
from widgets.qt import QtGui

__all__ = [
    "ERROR",
    "KIND_COLORS",
    "SEVERITY_COLORS",
    "SIGNAL_COLORS",
    "SPI_KINDS",
    "color_kind",
    "is_error",
    "qcolor",
    "token_color",
]

ERROR = "#f0504a"

# token kind (Token.kind) -> colour
KIND_COLORS: dict[str, str] = {
    "cmd": "#4c9be8",
    "rsp": "#38b487",
    "data": "#a27ee0",
    "crc_status": "#d6a73c",
    "busy": "#8a8f98",
    "idle": "#5d646e",
    "spi": "#4c9be8",
    "finding": "#e8a33c",
    "state": "#c9a0dc",
    "reg": "#7fa7c9",
    "irq": "#e07b53",
    "dense": "#6f7d8c",  # merged boxes too narrow to tell apart
}

# finding severity -> colour ("error" is ERROR)
SEVERITY_COLORS: dict[str, str] = {"error": ERROR, "warning": "#e8a33c", "info": "#6f8faf"}

# bus signal -> lane colour
SIGNAL_COLORS: dict[str, str] = {
    "CLK": "#9fd87a",
    "SCLK": "#9fd87a",
    "CMD": "#f2d15c",
    "DAT0": "#5cc8f2",
    "DAT1": "#5cc8f2",
    "DAT2": "#5cc8f2",
    "DAT3": "#5cc8f2",
    "CS": "#f29a5c",
    "MOSI": "#f2d15c",
    "MISO": "#5cc8f2",
}

# SpiToken.what -> the kind whose colour it takes (Part A framing: command, R1, data...)
SPI_KINDS: dict[str, str] = {
    "cmd": "cmd",
    "stop_tran": "cmd",
    "rsp": "rsp",
    "data": "data",
    "data_response": "crc_status",
    "busy": "busy",
    "data_error": "data",
}


def is_error(token: Token) -> bool:
    """Shown red: a bad CRC, an error finding, a CRC status other than "accepted" (§4.3.4),
    an SPI data error token (§7.3.3.3)."""
    if isinstance(token, FindingToken):
        return token.severity == "error"
    if isinstance(token, CrcStatusToken):
        return token.status != CrcStatus.ACCEPTED
    if isinstance(token, SpiToken):
        return token.what == "data_error" or token.info.get("crc_ok") is False
    return getattr(token, "crc_ok", True) is False


def color_kind(token: Token) -> str:
    """The KIND_COLORS key of a token (SPI runs by their meaning, findings by severity)."""
    if isinstance(token, SpiToken):
        return SPI_KINDS.get(token.what, "spi")
    if isinstance(token, CommandToken):
        return "cmd"
    return token.kind


@cache
def qcolor(hex_color: str, alpha: int = 255) -> QtGui.QColor:
    color = QtGui.QColor(hex_color)
    color.setAlpha(alpha)
    return color


def token_color(token: Token) -> QtGui.QColor:
    if is_error(token):
        return qcolor(ERROR)
    if isinstance(token, FindingToken):
        return qcolor(SEVERITY_COLORS.get(token.severity, KIND_COLORS["finding"]))
    return qcolor(KIND_COLORS.get(color_kind(token), KIND_COLORS["dense"]))
