"""Uncaught exceptions end in a dialog and the log instead of a silent console traceback.

``install_excepthook`` replaces ``sys.excepthook``; qasync's ``asyncSlot`` and the asyncio
loop's exception handler (``loop_exception_handler``) route their errors to it too. The
dialog is non-blocking (``open()``); while one is showing, further errors are appended to
its details instead of stacking more dialogs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sdmodel.errors import SdscopeError
from widgets.qt import QApplication, QMessageBox, Qt, QWidget

__all__ = ["ExceptHook", "install_excepthook", "loop_exception_handler", "show_error"]

log = logging.getLogger("sdscope")

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], None]

_current: QMessageBox | None = None


def _parent() -> QWidget | None:
    app = QApplication.instance()
    if app is None:
        return None
    active = QApplication.activeWindow()
    if active is not None:
        return active
    shown = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.isWindow()]
    return shown[0] if shown else None


def show_error(title: str, message: str, details: str = "") -> QMessageBox | None:
    """Show a non-blocking error dialog (or add to the one showing); None without a
    QApplication."""
    global _current
    if QApplication.instance() is None:
        return None
    if _current is not None and _current.isVisible():
        more = _current.property("more") or 0
        _current.setProperty("more", more + 1)
        _current.setInformativeText(f"{more + 1} more error(s) happened; see the details.")
        _current.setDetailedText(f"{_current.detailedText()}\n{message}\n{details}".strip())
        return _current
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Close,
                      _parent())
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if details:
        box.setDetailedText(details)
    box.destroyed.connect(_forget)
    box.open()
    _current = box
    return box


def _forget() -> None:
    global _current
    _current = None


def _report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, SdscopeError):  # a user-facing message, not a bug
        log.error("%s", exc)
        show_error("sdscope", str(exc))
        return
    log.error("uncaught exception", exc_info=(exc_type, exc, tb))
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    show_error("sdscope: unexpected error", f"{exc_type.__name__}: {exc}", text)


def install_excepthook() -> ExceptHook:
    """Make ``sys.excepthook`` report to the log and a dialog; returns the previous hook.
    KeyboardInterrupt still goes to the previous hook."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            _report(exc_type, exc, tb)
        except Exception:  # never let reporting hide the original error
            previous(exc_type, exc, tb)

    sys.excepthook = hook
    return previous


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio exception handler: exceptions go to ``sys.excepthook``, the rest is logged."""
    error = context.get("exception")
    if isinstance(error, BaseException):
        sys.excepthook(type(error), error, error.__traceback__)
    else:
        loop.default_exception_handler(context)
