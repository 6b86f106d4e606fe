"""What every lane of the waveform view is: a GraphicsObject spanning the visible window
between y = ``bottom`` and ``bottom + height`` (view units; x in seconds)."""

from __future__ import annotations

from widgets.qt import QtCore, pg

__all__ = ["LaneItem"]


class LaneItem(pg.GraphicsObject):
    def __init__(self, bottom: float, height: float) -> None:
        super().__init__()
        self.bottom = bottom
        self.height = height

    def boundingRect(self) -> QtCore.QRectF:
        view = self.viewRect()
        if view is None:
            return QtCore.QRectF()
        return QtCore.QRectF(view.left(), self.bottom, view.width(), self.height)

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        self.prepareGeometryChange()  # the visible window is the item's extent
