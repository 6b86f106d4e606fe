"""Uncaught exceptions end in a non-blocking dialog and the log."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from qasync import asyncSlot

from app.excepthook import ExceptHook, install_excepthook, loop_exception_handler
from sdmodel.errors import ImageError
from widgets.qt import QApplication, QMessageBox, QObject, Signal


@pytest.fixture
def hook(qapp: Any) -> Iterator[ExceptHook]:
    previous = install_excepthook()
    yield sys.excepthook
    sys.excepthook = previous
    for box in _boxes():
        box.close()


def _boxes() -> list[QMessageBox]:
    widgets = QApplication.topLevelWidgets()
    return [w for w in widgets if isinstance(w, QMessageBox) and w.isVisible()]


def _raise(error: BaseException) -> tuple[type[BaseException], BaseException, Any]:
    try:
        raise error
    except BaseException as caught:
        return type(caught), caught, caught.__traceback__


def test_unexpected_exception_shows_traceback_and_logs(
    hook: ExceptHook, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="sdscope"):
        hook(*_raise(RuntimeError("boom")))
    (box,) = _boxes()
    assert box.text() == "RuntimeError: boom"
    assert "Traceback (most recent call last)" in box.detailedText()
    assert box.icon() is QMessageBox.Icon.Critical
    assert caplog.records[-1].exc_info is not None


def test_user_error_shows_only_its_message(hook: ExceptHook) -> None:
    hook(*_raise(ImageError("no such image: x.img")))
    (box,) = _boxes()
    assert box.text() == "no such image: x.img"
    assert box.detailedText() == ""


def test_errors_while_a_dialog_is_open_are_added_to_it(hook: ExceptHook) -> None:
    hook(*_raise(RuntimeError("first")))
    hook(*_raise(ValueError("second")))
    (box,) = _boxes()
    assert box.text() == "RuntimeError: first"
    assert "1 more error(s)" in box.informativeText()
    assert "ValueError: second" in box.detailedText()


class _Button(QObject):
    sigClicked = Signal()

    @asyncSlot()
    async def on_click(self) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("from an async slot")


@pytest.mark.qt_no_exception_capture
def test_async_slot_exceptions_reach_the_dialog(
    hook: ExceptHook, arun: Callable[..., Any]
) -> None:
    button = _Button()
    button.sigClicked.connect(button.on_click)

    async def click() -> None:
        button.sigClicked.emit()
        while not _boxes():
            await asyncio.sleep(0.01)

    arun(click(), timeout=5)
    (box,) = _boxes()
    assert box.text() == "RuntimeError: from an async slot"


def test_loop_exception_handler_routes_exceptions_to_the_hook(
    hook: ExceptHook, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop_exception_handler(loop, {"message": "task failed", "exception": OSError("EIO")})

    arun(scenario())
    (box,) = _boxes()
    assert box.text() == "OSError: EIO"
