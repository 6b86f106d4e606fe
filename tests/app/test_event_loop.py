"""The session's qasync loop (tests/conftest.py): one loop, usable by every Qt test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest


def test_arun_runs_on_the_session_loop(qloop: Any, arun: Callable[..., Any]) -> None:
    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert arun(which_loop()) is qloop


def test_executor_results_come_back_to_the_loop(arun: Callable[..., Any]) -> None:
    async def job() -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: threading.current_thread().name)

    assert arun(job()) != threading.current_thread().name


def test_arun_raises_what_the_coroutine_raised(arun: Callable[..., Any]) -> None:
    async def fail() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        arun(fail())


def test_arun_gives_up_after_its_timeout(arun: Callable[..., Any]) -> None:
    with pytest.raises(Exception, match="timed out"):
        arun(asyncio.sleep(10), timeout=0.1)


def test_plain_asyncio_works_after_qt_tests() -> None:
    # Runs after the tests above (file order): the session loop must not stay installed.
    assert asyncio.run(asyncio.sleep(0, result="ok")) == "ok"
