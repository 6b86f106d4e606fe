"""Running the GUI: one QApplication, one qasync event loop, one main window.

``run_gui`` is what ``sdscope gui`` calls. The window's whole life is the coroutine
``run_window`` on the qasync loop, so everything the window does (loading images, later
the simulation) runs on the same loop as the model's coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import qasync

from app.excepthook import install_excepthook, loop_exception_handler
from app.main_window import MainWindow
from app.qtlog import install_qt_message_handler
from app.settings import configure_settings
from app.startup import report_startup
from sdmodel.errors import SdscopeError
from sdmodel.lessons import Lesson
from widgets.qt import QApplication

__all__ = ["run_gui", "run_window", "StartupActions"]

EXIT_INTERRUPTED = 130


class ScreenshotError(SdscopeError):
    """The window picture could not be written."""


@dataclass(frozen=True)
class StartupActions:
    """What the window does once shown (``sdscope gui`` options, ``lesson run``)."""

    capture: Path | None = None  # decode and show this capture
    workload: str | None = None  # run this workload on the image
    lesson: Lesson | None = None  # open this lesson in the lesson panel


async def run_window(
    image: Path | None, *, screenshot: Path | None = None, quit_after: float | None = None,
    actions: StartupActions | None = None,
) -> int:
    """Show the main window (on ``image`` if given) until it is closed; returns the exit
    code (130 after Ctrl-C). With ``quit_after`` the window closes that many seconds after
    its first paint, saving ``screenshot`` first."""
    actions = actions or StartupActions()
    loop = asyncio.get_running_loop()
    window = MainWindow()
    closed = asyncio.Event()
    painted = asyncio.Event()
    window.sigClosed.connect(closed.set)
    window.sigFirstPaint.connect(painted.set)
    exit_code = 0

    def interrupt() -> None:
        nonlocal exit_code
        exit_code = EXIT_INTERRUPTED
        window.close()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        window.show()
        loading = asyncio.ensure_future(window.open_image(image)) if image else None
        await painted.wait()
        report_startup()
        if loading is not None:
            await loading
        await _start(window, actions)
        if quit_after is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), quit_after)
            if screenshot is not None and not closed.is_set():
                QApplication.sendPostedEvents()  # pending layouts before the picture
                if not window.grab().save(str(screenshot)):
                    raise ScreenshotError(f"cannot write screenshot {screenshot}")
            window.close()
        await closed.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        window.deleteLater()
    return exit_code


async def _start(window: MainWindow, actions: StartupActions) -> None:
    if actions.lesson is not None:
        window.start_lesson(actions.lesson)
    if actions.workload:
        window.controls.workload.setText(actions.workload)
        window.controls.run()
    if actions.capture is not None:
        await window.open_capture(actions.capture)


def run_gui(
    image: Path | None, *, screenshot: Path | None = None, quit_after: float | None = None,
    actions: StartupActions | None = None,
) -> int:
    """Create the application and its event loop, run the window, return the exit code."""
    install_qt_message_handler()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    configure_settings()
    app.setQuitOnLastWindowClosed(False)  # run_window decides when the loop ends
    previous_hook = install_excepthook()
    loop = qasync.QEventLoop(app)
    loop.set_exception_handler(loop_exception_handler)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(
            run_window(image, screenshot=screenshot, quit_after=quit_after, actions=actions)
        )
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        sys.excepthook = previous_hook
