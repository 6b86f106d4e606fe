"""The "Image" dock: a hex view of the disk image and the facts about it.

Bytes for the hex view are read from the image file with ``os.pread`` in an executor
thread on a separate read-only descriptor, so the view stays live even while the card's
storage is hung or slow. Driver requests mark blocks: a write is pending until the
driver saw it acknowledged (green) or failed (red); reads are marked as read; the view
jumps to the block a request starts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from app.docks.base import Dock
from sdmodel.driver import Request
from sdmodel.images import ImageInfo
from sdmodel.sim.simulator import Simulator
from widgets.hex_view import HexView, MarkStatus
from widgets.image_info_view import ImageInfoView
from widgets.qt import QtWidgets, QWidget

__all__ = ["ImageDock"]


class ImageDock(Dock):
    def __init__(self, parent: QWidget | None = None) -> None:
        self.tabs = QtWidgets.QTabWidget()
        self.hex = HexView()
        self.view = ImageInfoView()
        self.tabs.addTab(self.hex, "Hex")
        self.tabs.addTab(self.view, "Info")
        super().__init__("Image", "ImageDock", self.tabs, parent)
        self._fd: int | None = None
        self._reads: set[asyncio.Future[None]] = set()
        self.hex.sigNeedData.connect(self._need_data)
        self.follow_requests = True

    def set_info(self, info: ImageInfo | None) -> None:
        self.view.set_info(info)
        self._close_fd()
        self.hex.clear_marks()
        if info is None:
            self.hex.set_size(0)
            return
        with contextlib.suppress(OSError):
            self._fd = os.open(info.path, os.O_RDONLY)
        self.hex.set_image_info(info)

    def attach(self, sim: Simulator) -> None:
        sim.host.events.request.connect(self.request_seen)

    def request_seen(self, request: Request) -> None:
        if request.op not in ("read", "write", "erase") or not request.count:
            return
        if not request.done:
            if request.op != "read":
                self.hex.mark_blocks(request.lba, request.count, MarkStatus.PENDING)
            if self.follow_requests:
                self.hex.go_to_block(request.lba)
            return
        if request.op == "read":
            status = MarkStatus.READ if request.ok else MarkStatus.FAILED
        else:
            status = MarkStatus.ACKNOWLEDGED if request.ok else MarkStatus.FAILED
            self.hex.invalidate(request.lba * 512, request.count * 512)
        self.hex.mark_blocks(request.lba, request.count, status)

    def _need_data(self, offset: int, length: int) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        future = loop.run_in_executor(None, os.pread, fd, length, offset)
        task = asyncio.ensure_future(self._deliver(future, fd, offset))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _deliver(self, future: asyncio.Future[bytes], fd: int, offset: int) -> None:
        try:
            data = await future
        except OSError:
            return
        if fd == self._fd:  # the image was not replaced or closed meanwhile
            self.hex.set_data(offset, data)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def shutdown(self) -> None:
        """The window is closing: stop delivering bytes and close the file."""
        for task in list(self._reads):
            task.cancel()
        self._close_fd()
