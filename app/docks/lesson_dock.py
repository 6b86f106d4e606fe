"""The "Lesson" dock: the lesson panel driving a LessonRunner on the window's loop.

"Show me" runs the step on the real simulator (the runner opens its own cards); the
window's panels follow the runner's simulator, and the step's focus moves the view to
what the step is about: a waveform span, a register field, an interrupt lane, a state.
Capture steps (lesson 9) open their capture in the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable

from app.docks.base import Dock
from sdmodel.lessons import Lesson, load_lessons
from sdmodel.lessons.runner import LessonRunner, StepReport
from sdmodel.lessons.schema import Step
from sdmodel.sim.simulator import Simulator
from widgets.lesson_panel import LessonPanel
from widgets.qt import QWidget

__all__ = ["LessonDock"]


class LessonDock(Dock):
    def __init__(self, show_simulator: Callable[[Simulator], None],
                 focus: Callable[[dict[str, str], StepReport | None], None],
                 show_capture: Callable[[str], object],
                 parent: QWidget | None = None) -> None:
        self.panel = LessonPanel()
        super().__init__("Lesson", "LessonDock", self.panel, parent)
        self._show_simulator = show_simulator
        self._focus = focus
        self._show_capture = show_capture
        self.runner: LessonRunner | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="sdscope-lesson-")
        self._task: asyncio.Task[StepReport | None] | None = None
        self._last: StepReport | None = None
        self.panel.sigLessonChanged.connect(self.start_lesson)
        self.panel.sigShowMe.connect(self.show_me)
        self.panel.sigFocus.connect(lambda focus: self._focus(focus, self._last))
        self._loaded = False

    def load(self) -> None:
        """Fill the list (lesson files are read on first use)."""
        if not self._loaded:
            self.panel.set_lessons(load_lessons())
            self._loaded = True

    def start_lesson(self, lesson: Lesson | None) -> None:
        self._close_runner()
        self._last = None
        if lesson is None:
            return
        self.runner = LessonRunner(lesson, self._workdir.name)
        self.runner.events.session.connect(self._show_simulator)
        self.runner.events.step.connect(self.panel.show_results)

    def open_lesson(self, lesson: Lesson) -> None:
        self.load()
        self.panel.set_lesson(lesson)
        self.show()
        self.raise_()

    def show_me(self, step: Step) -> asyncio.Task[StepReport | None] | None:
        if self.runner is None or (self._task is not None and not self._task.done()):
            return None
        self._task = asyncio.ensure_future(self._run(step))
        return self._task

    async def _run(self, step: Step) -> StepReport | None:
        runner = self.runner
        assert runner is not None
        self.panel.set_running(True)
        try:
            report = await runner.run_step(step.index)
        finally:
            self.panel.set_running(False)
        self._last = report
        if step.capture is not None:
            await self._show_capture(str(step.capture))  # type: ignore[misc]
        if step.focus is not None:
            self._focus(step.focus.as_dict(), report)
        return report

    def _close_runner(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.ensure_future(runner.aclose())

    def shutdown(self) -> None:
        """The window is closing: close the lesson's card."""
        self._close_runner()
