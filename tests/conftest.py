"""Shared test set-up.

- Qt runs offscreen (set before any Qt import), so tests never need a display.
- Every test session gets its own data and settings directories (``SDSCOPE_DATA_DIR``,
  ``SDSCOPE_CONFIG_DIR``, XDG dirs): tests never write to the user's home.
- ``qloop`` is ONE qasync event loop for the whole session; ``arun(coro)`` runs a
  coroutine on it. The loop is never stopped or closed before the session ends, and it is
  the running loop only during the tests that use it, so plain ``asyncio.run`` tests
  still work.
- ``heartbeat`` measures the largest gap of the Qt event loop during a test.

Qt is imported lazily inside fixtures, so the model tests run without PySide6 installed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

if TYPE_CHECKING:
    from qasync import QEventLoop

    from widgets.heartbeat import Heartbeat

T = TypeVar("T")


@pytest.fixture(autouse=True, scope="session")
def user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Point every per-user location at temporary directories for the whole session."""
    root = tmp_path_factory.mktemp("user")
    dirs = {
        "SDSCOPE_DATA_DIR": root / "data",
        "SDSCOPE_CONFIG_DIR": root / "config",
        "XDG_DATA_HOME": root / "xdg-data",
        "XDG_CONFIG_HOME": root / "xdg-config",
        "XDG_CACHE_HOME": root / "xdg-cache",
        "XDG_RUNTIME_DIR": root / "xdg-runtime",
    }
    patch = pytest.MonkeyPatch()
    for name, path in dirs.items():
        path.mkdir(mode=0o700)
        patch.setenv(name, str(path))
    yield dirs
    patch.undo()


@pytest.fixture(scope="session")
def qt_settings(qapp: Any, user_dirs: dict[str, Path]) -> None:
    """QSettings of this process live in the session's config directory."""
    from app.settings import configure_settings

    configure_settings()


@pytest.fixture(scope="session")
def qloop(qapp: Any, qt_settings: None) -> Iterator[QEventLoop]:
    """The session's one qasync loop, in qasync's "already running" mode: whatever spins
    Qt's event loop (``qtbot.wait``, ``waitUntil``, ``waitSignal``) also runs its asyncio
    callbacks, so it never has to be started or stopped during the session. Tests reach
    it through ``aloop``/``arun``, which make it the running loop only while they run."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(None)  # attached per test by `aloop`
    yield loop
    loop.stop()  # end of the session: the only stop
    loop.close()


@pytest.fixture
def aloop(qloop: QEventLoop) -> Iterator[QEventLoop]:
    """The session loop as this test's running asyncio loop (``asyncSlot`` needs one)."""
    asyncio.set_event_loop(qloop)
    asyncio.events._set_running_loop(qloop)
    yield qloop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture
def arun(aloop: QEventLoop, qtbot: Any) -> Callable[..., Any]:
    """``arun(coro, timeout=10)``: run ``coro`` as a task on the session loop, spinning Qt
    until it is done; returns its result or raises its exception."""

    def run(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        task = aloop.create_task(coro)
        try:
            qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        except BaseException:
            task.cancel()
            qtbot.waitUntil(task.done, timeout=1000)
            raise
        return task.result()

    return run


@pytest.fixture
def heartbeat(qapp: Any) -> Iterator[Heartbeat]:
    """A running 5 ms Qt heartbeat; read ``max_gap_ms`` after the code under test ran."""
    from widgets.heartbeat import Heartbeat

    beat = Heartbeat()
    beat.start()
    yield beat
    beat.stop()
    beat.deleteLater()


@pytest.fixture(scope="session")
def demo_image(user_dirs: dict[str, Path]) -> Path:
    """The built-in demo card, created once in the session's data directory."""
    from sdmodel.images import ensure_demo_image

    return ensure_demo_image()
