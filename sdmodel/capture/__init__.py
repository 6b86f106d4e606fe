"""Logic-analyzer captures: sigrok ``.sr`` and VCD readers and the channel mapping."""

from sdmodel.capture.channels import ChannelMap, Mode, map_channels, parse_mapping
from sdmodel.capture.source import Capture, open_capture
from sdmodel.capture.sr import SrCapture, parse_samplerate, read_sr
from sdmodel.capture.vcd import VcdCapture, VcdSignal, parse_timescale, read_vcd

__all__ = [
    "Capture",
    "ChannelMap",
    "Mode",
    "SrCapture",
    "VcdCapture",
    "VcdSignal",
    "map_channels",
    "open_capture",
    "parse_mapping",
    "parse_samplerate",
    "parse_timescale",
    "read_sr",
    "read_vcd",
]
