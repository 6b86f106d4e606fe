"""Capture decoding: samples -> bus tokens for SD mode (CMD, DAT0-3) and SPI mode, with
every CRC checked and protocol findings (see ``findings``)."""

from sdmodel.decode.api import DecodePlan, DecodeSummary, decode_capture, plan_decode
from sdmodel.decode.fields import FieldRow, compact_fields, decode_register_fields, token_json
from sdmodel.decode.findings import FINDINGS, FindingKind
from sdmodel.decode.sd import SdDecoder
from sdmodel.decode.spi import (
    SpiBusyToken,
    SpiCommandToken,
    SpiDataResponseToken,
    SpiDataToken,
    SpiDecoder,
    SpiFindingToken,
    SpiResponseToken,
)

__all__ = [
    "FINDINGS",
    "DecodePlan",
    "FieldRow",
    "DecodeSummary",
    "FindingKind",
    "SdDecoder",
    "SpiBusyToken",
    "SpiCommandToken",
    "SpiDataResponseToken",
    "SpiDataToken",
    "SpiDecoder",
    "SpiFindingToken",
    "SpiResponseToken",
    "compact_fields",
    "decode_capture",
    "decode_register_fields",
    "plan_decode",
    "token_json",
]
