"""Logic-analyzer captures: sigrok ``.sr`` and VCD readers and writers, and the channel
mapping."""

from sdmodel.capture.channels import ChannelMap, Mode, map_channels, parse_mapping
from sdmodel.capture.source import Capture, open_capture
from sdmodel.capture.sr import SrCapture, parse_samplerate, read_sr
from sdmodel.capture.sr_write import (
    EdgeSource,
    ExportError,
    default_samplerate,
    format_samplerate,
    write_sr,
)
from sdmodel.capture.vcd import VcdCapture, VcdSignal, parse_timescale, read_vcd
from sdmodel.capture.vcd_write import write_vcd

__all__ = [
    "Capture",
    "ChannelMap",
    "EdgeSource",
    "ExportError",
    "Mode",
    "SrCapture",
    "VcdCapture",
    "VcdSignal",
    "default_samplerate",
    "format_samplerate",
    "map_channels",
    "open_capture",
    "parse_mapping",
    "parse_samplerate",
    "parse_timescale",
    "read_sr",
    "read_vcd",
    "write_sr",
    "write_vcd",
]
