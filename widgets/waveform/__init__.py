"""The waveform view: bus signals and their decoded annotations on one time axis."""

from widgets.waveform.cursors import CursorReadout
from widgets.waveform.view import WaveformView

__all__ = ["WaveformView", "CursorReadout"]
