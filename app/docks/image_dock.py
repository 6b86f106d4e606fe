"""The "Image" dock: facts about the loaded disk image and its partitions."""

from __future__ import annotations

from sdmodel.images import ImageInfo
from widgets.image_info_view import ImageInfoView
from widgets.qt import QDockWidget, QWidget

__all__ = ["ImageDock"]


class ImageDock(QDockWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Image", parent)
        self.setObjectName("ImageDock")  # saveState() identifies docks by object name
        self.view = ImageInfoView(self)
        self.setWidget(self.view)

    def set_info(self, info: ImageInfo | None) -> None:
        self.view.set_info(info)
