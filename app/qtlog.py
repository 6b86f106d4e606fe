"""Qt's own messages (qWarning and friends) go to Python logging under the "qt" logger."""

from __future__ import annotations

import logging

from widgets.qt import QtCore

__all__ = ["HARMLESS_PREFIXES", "install_qt_message_handler"]

log = logging.getLogger("qt")

# Messages Qt prints in normal operation that say nothing about sdscope.
HARMLESS_PREFIXES: tuple[str, ...] = (
    "This plugin does not support ",  # the offscreen platform: raise(), size hints...
)

_LEVELS = {
    QtCore.QtMsgType.QtDebugMsg: logging.DEBUG,
    QtCore.QtMsgType.QtInfoMsg: logging.INFO,
    QtCore.QtMsgType.QtWarningMsg: logging.WARNING,
    QtCore.QtMsgType.QtCriticalMsg: logging.ERROR,
    QtCore.QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def _handler(kind: QtCore.QtMsgType, context: QtCore.QMessageLogContext, message: str) -> None:
    if message.startswith(HARMLESS_PREFIXES):
        return
    log.log(_LEVELS.get(kind, logging.WARNING), "%s", message)


def install_qt_message_handler() -> None:
    QtCore.qInstallMessageHandler(_handler)
