"""The console: driver and simulator messages, one text line each, newest at the bottom.

A read-only QPlainTextEdit: lines are text blocks (no widget per line), the document
keeps at most ``max_lines`` of them (older ones drop off the top), and each block
remembers its level so a filter hides lower levels without re-reading anything.
``log_handler()`` turns Python logging (any thread) into console lines.
"""

from __future__ import annotations

import logging
from enum import IntEnum

from widgets.qt import QObject, Qt, QtGui, QtWidgets, QWidget, Signal

__all__ = ["ConsoleLogHandler", "ConsoleView", "LogLevel"]

DEFAULT_MAX_LINES = 5000


class LogLevel(IntEnum):
    """Message levels, numbered like Python logging."""

    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR

    @classmethod
    def of(cls, level: str | int) -> LogLevel:
        """``"warning"``, ``"WARN"``, ``logging.WARNING`` or 35 -> LogLevel.WARNING."""
        if isinstance(level, str):
            name = level.strip().upper()
            name = {"WARN": "WARNING", "CRITICAL": "ERROR"}.get(name, name)
            if name not in cls.__members__:
                raise ValueError(f"unknown log level {level!r}: use debug, info, warning "
                                 "or error")
            return cls[name]
        return max((m for m in cls if m <= level), default=cls.DEBUG)


_COLOURS: dict[LogLevel, str] = {
    LogLevel.DEBUG: "#8a939e",
    LogLevel.INFO: "",  # the palette's text colour
    LogLevel.WARNING: "#b35900",
    LogLevel.ERROR: "#c0392b",
}
_TAGS: dict[LogLevel, str] = {
    LogLevel.DEBUG: "debug: ", LogLevel.INFO: "", LogLevel.WARNING: "warning: ",
    LogLevel.ERROR: "error: ",
}


def format_stamp(time_ps: int) -> str:
    """Simulated time as a fixed-width stamp in milliseconds, e.g. ``"   12.345678 ms"``."""
    return f"{time_ps / 1e9:12.6f} ms"


class ConsoleView(QtWidgets.QPlainTextEdit):
    """Bounded, filterable message log."""

    def __init__(self, parent: QWidget | None = None, *,
                 max_lines: int = DEFAULT_MAX_LINES) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.document().setMaximumBlockCount(max_lines)
        self._min_level = LogLevel.DEBUG
        self._empty = True
        self._formats = {level: self._format(level) for level in LogLevel}

    @staticmethod
    def _format(level: LogLevel) -> QtGui.QTextCharFormat:
        fmt = QtGui.QTextCharFormat()
        if _COLOURS[level]:
            fmt.setForeground(QtGui.QColor(_COLOURS[level]))
        if level is LogLevel.ERROR:
            fmt.setFontWeight(QtGui.QFont.Weight.Bold)
        return fmt

    @property
    def max_lines(self) -> int:
        return self.document().maximumBlockCount()

    @property
    def min_level(self) -> LogLevel:
        return self._min_level

    def append(self, message: str, level: str | int = "info",
               time_ps: int | None = None) -> None:
        """Add ``message`` at ``level``, stamped with simulated time ``time_ps`` if given.
        A multi-line message takes one line per text line."""
        lvl = LogLevel.of(level)
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        stamp = format_stamp(time_ps) + "  " if time_ps is not None else ""
        cursor = QtGui.QTextCursor(self.document())
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        for i, text in enumerate(message.splitlines() or [""]):
            if not self._empty:
                cursor.insertBlock()
            self._empty = False
            prefix = stamp + _TAGS[lvl] if i == 0 else " " * len(stamp)
            cursor.insertText(prefix + text, self._formats[lvl])
            block = cursor.block()
            block.setUserState(int(lvl))
            block.setVisible(lvl >= self._min_level)
        if lvl < self._min_level:
            self._relayout()
        if at_bottom:
            bar.setValue(bar.maximum())

    def set_min_level(self, level: str | int) -> None:
        """Show only lines at ``level`` or above."""
        self._min_level = LogLevel.of(level)
        block = self.document().firstBlock()
        while block.isValid():
            block.setVisible(block.userState() >= self._min_level)
            block = block.next()
        self._relayout()

    def _relayout(self) -> None:
        doc = self.document()
        doc.markContentsDirty(0, doc.characterCount())
        self.viewport().update()

    def lines(self, *, visible_only: bool = True) -> list[str]:
        """The text of the lines kept (shown by the filter, unless ``visible_only=False``)."""
        out = []
        block = self.document().firstBlock()
        while block.isValid():
            if not self._empty and (block.isVisible() or not visible_only):
                out.append(block.text())
            block = block.next()
        return out

    def copy_all(self) -> None:
        """Put the shown lines on the clipboard."""
        QtWidgets.QApplication.clipboard().setText("\n".join(self.lines()))

    def clear(self) -> None:
        super().clear()
        self._empty = True

    def contextMenuEvent(self, event: QtGui.QContextMenuEvent) -> None:
        menu = self.createStandardContextMenu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addSeparator()
        menu.addAction("Copy all shown lines", self.copy_all)
        show = menu.addMenu("Show")
        group = QtGui.QActionGroup(show)
        for level in LogLevel:
            action = show.addAction(f"{level.name.lower()} and above")
            action.setCheckable(True)
            action.setChecked(level is self._min_level)
            action.triggered.connect(lambda _=False, lv=level: self.set_min_level(lv))
            group.addAction(action)
        menu.addAction("Clear", self.clear)
        menu.popup(event.globalPos())  # never exec(): one event loop (gui_common.md)

    def log_handler(self, level: int = logging.INFO) -> ConsoleLogHandler:
        """A logging handler writing to this console from any thread."""
        return ConsoleLogHandler(self, level)


class _Bridge(QObject):
    sigRecord = Signal(str, int)


class ConsoleLogHandler(logging.Handler):
    """Sends log records to a ConsoleView; records from other threads (the storage
    worker) reach it through a queued signal."""

    def __init__(self, console: ConsoleView, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self._bridge = _Bridge()
        self._bridge.sigRecord.connect(console.append)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._bridge.sigRecord.emit(self.format(record), record.levelno)
        except RuntimeError:  # the console is gone
            pass
