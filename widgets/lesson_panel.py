"""The lesson panel: the lesson list, the current step's explanation with its spec
references, progress, Back / Next / "Show me" and the step's checks (✓ / ✗).

The panel only shows lessons; the app runs them. "Show me" emits ``sigShowMe(step)``; the
app runs that step (``sdmodel.lessons.LessonRunner.run_step``) and hands the result back
with ``show_results(report)``. Moving to a step emits ``sigStepChanged(step)`` and, when
the step names a place in the UI, ``sigFocus(focus)`` with a plain dict such as
``{"panel": "waveform", "span": "CMD17"}`` or ``{"panel": "registers", "register": "CSD",
"field": "C_SIZE"}``; the app maps it to its panels.

Register fields named in a step's text (``{CSD.C_SIZE}`` in the lesson file) are links:
clicking one explains the field below the text ("explain this field"), and ``explain()``
does the same for any other view.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from sdmodel.lessons.fields import FIELD_REF, FieldError, explain_field
from sdmodel.lessons.runner import StepReport
from sdmodel.lessons.schema import Lesson, Step
from widgets.qt import (
    QLabel,
    QtCore,
    QtGui,
    QtWidgets,
    QVBoxLayout,
    QWidget,
    Signal,
)

__all__ = ["LessonPanel", "render_text"]

PASSED, FAILED, PENDING = "✓", "✗", "○"
_COLORS = {PASSED: "#2e8b57", FAILED: "#d0342c", PENDING: "#7a7f87"}
_CODE = re.compile(r"`([^`]+)`")
_FIELD_SCHEME = "field"


def _inline(text: str) -> str:
    """One paragraph's text as HTML: `code` and {REGISTER.FIELD} links."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return FIELD_REF.sub(
        lambda m: f'<a href="{_FIELD_SCHEME}:{m.group(1)}.{m.group(2)}" '
                  f'title="{m.group(1)}.{m.group(2)}">{m.group(2)}</a>', out)


def render_text(text: str) -> str:
    """A lesson text as rich text: blank lines part paragraphs, "- " lines are a list."""
    blocks = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(line[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "".join(blocks)


class LessonPanel(QWidget):
    """Lessons as steps: read, "Show me", see the checks pass."""

    sigLessonChanged = Signal(object)  # Lesson
    sigStepChanged = Signal(object)  # Step
    sigShowMe = Signal(object)  # Step: the app runs it and calls show_results
    sigFocus = Signal(object)  # dict: the step's UI focus
    sigExplain = Signal(str, str)  # register, field: the learner asked about this field

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lessons: list[Lesson] = []
        self._lesson: Lesson | None = None
        self._index = 0
        self._reports: dict[int, StepReport] = {}
        self._running = False

        self._list = QtWidgets.QListWidget()
        self._list.setMaximumHeight(140)
        self._list.currentRowChanged.connect(self._lesson_picked)
        self._title = QLabel()
        self._title.setWordWrap(True)
        font = self._title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self._title.setFont(font)
        self._goal = QLabel()
        self._goal.setWordWrap(True)
        self._progress = QtWidgets.QProgressBar()
        self._progress.setTextVisible(True)
        self._step_title = QLabel()
        self._step_title.setWordWrap(True)
        bold = self._step_title.font()
        bold.setBold(True)
        self._step_title.setFont(bold)
        self._text = QtWidgets.QTextBrowser()
        self._text.setOpenLinks(False)
        self._text.anchorClicked.connect(self._link_clicked)
        self._spec = QLabel()
        self._spec.setWordWrap(True)
        self._spec.setStyleSheet("color: #5d646e;")
        self._explanation = QLabel()
        self._explanation.setWordWrap(True)
        self._explanation.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self._explanation.setStyleSheet(
            "background: #eef3fb; border: 1px solid #b8c8e0; padding: 4px;")
        self._explanation.hide()
        self._checks = QtWidgets.QTreeWidget()  # a check per row, what was found below it
        self._checks.setHeaderHidden(True)
        self._checks.setRootIsDecorated(False)
        self._checks.setWordWrap(True)
        self._checks.setIndentation(16)
        self._checks.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self._back = QtWidgets.QPushButton("Back")
        self._show_me = QtWidgets.QPushButton("Show me")
        self._next = QtWidgets.QPushButton("Next")
        self._back.clicked.connect(self.previous_step)
        self._next.clicked.connect(self.next_step)
        self._show_me.clicked.connect(self._show_me_clicked)

        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self._back)
        buttons.addStretch(1)
        buttons.addWidget(self._show_me)
        buttons.addWidget(self._next)
        layout = QVBoxLayout(self)
        layout.addWidget(self._list)
        layout.addWidget(self._title)
        layout.addWidget(self._goal)
        layout.addWidget(self._progress)
        layout.addWidget(self._step_title)
        layout.addWidget(self._text, 3)
        layout.addWidget(self._spec)
        layout.addWidget(self._explanation)
        layout.addWidget(QLabel("Checks:"))
        layout.addWidget(self._checks, 2)
        layout.addLayout(buttons)
        self._refresh()

    # --- what is shown --------------------------------------------------------------------

    @property
    def lesson(self) -> Lesson | None:
        return self._lesson

    @property
    def step_index(self) -> int:
        return self._index

    @property
    def step(self) -> Step | None:
        return self._lesson.steps[self._index] if self._lesson is not None else None

    def progress_text(self) -> str:
        return self._progress.text() if self._lesson is not None else ""

    def step_html(self) -> str:
        return self._text.toHtml()

    def check_rows(self) -> list[str]:
        """The checks as shown: "mark expectation", then "    found" after a run."""
        rows = []
        for i in range(self._checks.topLevelItemCount()):
            item = self._checks.topLevelItem(i)
            found = item.child(0).text(0) if item.childCount() else ""
            rows.append(item.text(0) + (f"\n    {found}" if found else ""))
        return rows

    def explanation_text(self) -> str:
        return self._explanation.text() if not self._explanation.isHidden() else ""

    def buttons(self) -> dict[str, QtWidgets.QPushButton]:
        return {"back": self._back, "show_me": self._show_me, "next": self._next}

    @property
    def lesson_list(self) -> QtWidgets.QListWidget:
        return self._list

    @property
    def text_view(self) -> QtWidgets.QTextBrowser:
        """The step's text; its field links explain the field when clicked."""
        return self._text

    # --- lessons and steps ----------------------------------------------------------------

    def set_lessons(self, lessons: Sequence[Lesson]) -> None:
        """The lessons to offer; the first becomes current."""
        self._lessons = list(lessons)
        with QtCore.QSignalBlocker(self._list):
            self._list.clear()
            for lesson in self._lessons:
                item = QtWidgets.QListWidgetItem(f"{lesson.id}  {lesson.title}")
                item.setToolTip(lesson.goal)
                self._list.addItem(item)
        self._list.setCurrentRow(0 if self._lessons else -1)
        if not self._lessons:
            self.set_lesson(None)

    def set_lesson(self, lesson: Lesson | str | None) -> None:
        """Show ``lesson`` (or the offered lesson with that id) from its first step."""
        if isinstance(lesson, str):
            found = [known for known in self._lessons if known.id == lesson]
            if not found:
                raise KeyError(f"no lesson {lesson!r} in the panel")
            lesson = found[0]
        if lesson is not None and lesson in self._lessons:
            with QtCore.QSignalBlocker(self._list):
                self._list.setCurrentRow(self._lessons.index(lesson))
        self._lesson = lesson
        self._reports = {}
        self._index = 0
        self._explanation.hide()
        self._refresh()
        if lesson is not None:
            self.sigLessonChanged.emit(lesson)
            self._announce_step()

    def go_to_step(self, index: int) -> None:
        if self._lesson is None or not 0 <= index < len(self._lesson.steps):
            return
        if index != self._index:
            self._index = index
            self._explanation.hide()
            self._refresh()
            self._announce_step()

    def next_step(self) -> None:
        self.go_to_step(self._index + 1)

    def previous_step(self) -> None:
        self.go_to_step(self._index - 1)

    def show_results(self, report: StepReport) -> None:
        """The outcome of a step the app ran (any step; the current one is redrawn)."""
        self._reports[report.step.index] = report
        if report.step.index == self._index:
            self._refresh()

    def clear_results(self) -> None:
        self._reports = {}
        self._refresh()

    def set_running(self, running: bool) -> None:
        """While the app runs a step, "Show me" and the navigation wait."""
        self._running = running
        self._refresh()

    def explain(self, register: str, field: str, value: int | None = None) -> None:
        """Show what ``register.field`` means (and ``value``, if given) below the text."""
        try:
            text = explain_field(register, field, value)
        except FieldError as error:
            text = str(error)
        self._explanation.setText(text)
        self._explanation.show()

    # --- internals ------------------------------------------------------------------------

    def _lesson_picked(self, row: int) -> None:
        if 0 <= row < len(self._lessons):
            self.set_lesson(self._lessons[row])

    def _announce_step(self) -> None:
        step = self.step
        if step is None:
            return
        self.sigStepChanged.emit(step)
        if step.focus is not None:
            self.sigFocus.emit(step.focus.as_dict())
            if step.focus.panel == "registers":
                self.explain(step.focus.target["register"], step.focus.target["field"])

    def _show_me_clicked(self) -> None:
        if self.step is not None and not self._running:
            self.sigShowMe.emit(self.step)

    def _link_clicked(self, url: QtCore.QUrl) -> None:
        if url.scheme() != _FIELD_SCHEME:
            return
        register, _, field = url.path().partition(".")
        self.explain(register, field)
        self.sigExplain.emit(register, field)

    def _refresh(self) -> None:
        lesson, step = self._lesson, self.step
        has_step = step is not None
        for widget in (self._progress, self._text, self._checks):
            widget.setVisible(has_step)
        if lesson is None or step is None:
            self._title.setText("No lesson")
            self._goal.setText("")
            self._step_title.setText("")
            self._spec.setText("")
            self._checks.clear()
            for button in (self._back, self._show_me, self._next):
                button.setEnabled(False)
            return
        total = len(lesson.steps)
        self._title.setText(lesson.title)
        self._goal.setText(lesson.goal)
        self._progress.setRange(0, total)
        self._progress.setValue(self._index + 1)
        self._progress.setFormat(f"step {self._index + 1} of {total}")
        self._step_title.setText(f"{step.number}. {step.title}")
        self._text.setHtml(render_text(step.text))
        self._spec.setText("Spec: " + " · ".join(step.spec) if step.spec else "")
        self._fill_checks(step)
        self._back.setEnabled(not self._running and self._index > 0)
        self._next.setEnabled(not self._running and self._index < total - 1)
        self._show_me.setEnabled(not self._running)

    def _fill_checks(self, step: Step) -> None:
        self._checks.clear()
        report = self._reports.get(step.index)
        if report is None:
            rows = [(PENDING, check.label, "") for check in step.checks]
        else:
            rows = [(PASSED if r.ok else FAILED, r.label, r.found) for r in report.results]
        for mark, label, found in rows:
            item = QtWidgets.QTreeWidgetItem([f"{mark} {label}"])
            item.setForeground(0, QtGui.QColor(_COLORS[mark]))
            item.setToolTip(0, found or label)
            if found:
                detail = QtWidgets.QTreeWidgetItem(item, [found])
                detail.setForeground(0, QtGui.QColor(_COLORS[PENDING]))
                detail.setToolTip(0, found)
            self._checks.addTopLevelItem(item)
        self._checks.expandAll()
