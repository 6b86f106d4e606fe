"""The lesson panel: list, text with explain-this-field links, progress, Back / Next /
Show me, focus signals, check marks; and lesson 3 walked through it on the real
simulator, the way the window runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sdmodel.lessons import LessonRunner, StepReport, load_lessons
from sdmodel.lessons.runner import CheckResult
from widgets.lesson_panel import LessonPanel, render_text
from widgets.qt import Qt, QtCore

LESSONS = load_lessons()


@pytest.fixture
def panel(qtbot: Any) -> LessonPanel:
    widget = LessonPanel()
    qtbot.addWidget(widget)
    widget.set_lessons(LESSONS)
    return widget


def test_an_empty_panel_says_so(qtbot: Any) -> None:
    widget = LessonPanel()
    qtbot.addWidget(widget)
    assert widget.lesson is None and widget.step is None
    assert not any(b.isEnabled() for b in widget.buttons().values())


def test_the_first_lesson_opens_at_its_first_step(panel: LessonPanel) -> None:
    assert panel.lesson is LESSONS[0] and panel.step_index == 0
    assert panel.progress_text() == f"step 1 of {len(LESSONS[0].steps)}"
    buttons = panel.buttons()
    assert not buttons["back"].isEnabled()
    assert buttons["next"].isEnabled() and buttons["show_me"].isEnabled()
    assert all(row.startswith("○ ") for row in panel.check_rows())
    assert "at least 74 clocks" in panel.check_rows()[0]


def test_next_and_back_move_and_announce_the_step_and_its_focus(qtbot: Any,
                                                                 panel: LessonPanel) -> None:
    panel.set_lesson("03-single-block-read")
    steps: list[Any] = []
    focuses: list[dict[str, str]] = []
    panel.sigStepChanged.connect(steps.append)
    panel.sigFocus.connect(focuses.append)
    qtbot.mouseClick(panel.buttons()["next"], Qt.MouseButton.LeftButton)
    assert [s.title for s in steps] == ["CMD17 and its R1"]
    assert focuses == [{"panel": "waveform", "span": "CMD17"}]
    assert panel.progress_text() == "step 2 of 4"
    qtbot.mouseClick(panel.buttons()["back"], Qt.MouseButton.LeftButton)
    assert panel.step_index == 0
    panel.go_to_step(3)
    assert not panel.buttons()["next"].isEnabled()
    panel.go_to_step(4)  # past the end: nothing happens
    assert panel.step_index == 3


def test_picking_a_lesson_in_the_list(qtbot: Any, panel: LessonPanel) -> None:
    with qtbot.waitSignal(panel.sigLessonChanged) as blocker:
        panel.lesson_list.setCurrentRow(6)
    assert blocker.args[0].id == "07-spi-mode"
    assert panel.step_index == 0


def test_show_me_asks_the_app_to_run_the_current_step(qtbot: Any, panel: LessonPanel) -> None:
    with qtbot.waitSignal(panel.sigShowMe) as blocker:
        qtbot.mouseClick(panel.buttons()["show_me"], Qt.MouseButton.LeftButton)
    assert blocker.args[0] is LESSONS[0].steps[0]
    panel.set_running(True)
    assert not any(b.isEnabled() for b in panel.buttons().values())
    with qtbot.assertNotEmitted(panel.sigShowMe):
        panel.buttons()["show_me"].click()
    panel.set_running(False)
    assert panel.buttons()["show_me"].isEnabled()


def test_results_mark_each_check(panel: LessonPanel) -> None:
    step = LESSONS[0].steps[0]
    results = (CheckResult("idle", "at least 74 clocks", True, "74 idle clocks"),
               CheckResult("clock", "100-400 kHz", False, "CMD0 clocked at 25 MHz"))
    panel.show_results(StepReport(step, results))
    assert panel.check_rows() == ["✓ at least 74 clocks\n    74 idle clocks",
                                  "✗ 100-400 kHz\n    CMD0 clocked at 25 MHz"]
    panel.next_step()
    assert all(row.startswith("○ ") for row in panel.check_rows())
    panel.previous_step()
    assert panel.check_rows()[0].startswith("✓ ")
    panel.clear_results()
    assert panel.check_rows()[0].startswith("○ ")


def test_field_links_explain_the_field(qtbot: Any, panel: LessonPanel) -> None:
    panel.set_lesson("03-single-block-read")
    panel.go_to_step(1)
    assert 'href="field:CARD_STATUS.CURRENT_STATE"' in panel.step_html()
    with qtbot.waitSignal(panel.sigExplain) as blocker:
        panel.text_view.anchorClicked.emit(QtCore.QUrl("field:CARD_STATUS.CURRENT_STATE"))
    assert blocker.args == ["CARD_STATUS", "CURRENT_STATE"]
    assert "CURRENT_STATE (bits 12:9, §4.10.1)" in panel.explanation_text()
    panel.explain("CSD", "C_SIZE", 8191)
    assert panel.explanation_text().endswith("value 8191 (0x1FFF) = 8191")
    panel.explain("CSD", "NOPE")
    assert "has no field 'NOPE'" in panel.explanation_text()


def test_a_register_focus_explains_its_field_at_once(panel: LessonPanel) -> None:
    panel.set_lesson("02-card-identity")
    panel.go_to_step(1)
    assert "CSD.C_SIZE (bits 69:48, §5.3.3)" in panel.explanation_text()


def test_lesson_text_renders_paragraphs_lists_code_and_links() -> None:
    html = render_text("A <b> `40 00` {CSD.C_SIZE}\n\n- one\n- two {OCR.CCS}\n")
    assert html == ('<p>A &lt;b&gt; <code>40 00</code> <a href="field:CSD.C_SIZE" '
                    'title="CSD.C_SIZE">C_SIZE</a></p><ul><li>one</li><li>two '
                    '<a href="field:OCR.CCS" title="OCR.CCS">CCS</a></li></ul>')


def test_lesson_3_walks_through_the_panel_on_the_simulator(
        qtbot: Any, aloop: asyncio.AbstractEventLoop, arun: Any, panel: LessonPanel,
        tmp_path: Path) -> None:
    """What the window does: Show me runs the step on the real simulator (on the one
    qasync loop) and hands the report back; Next moves on, until every check is ✓."""
    panel.set_lesson("03-single-block-read")
    lesson = panel.lesson
    assert lesson is not None
    runner = LessonRunner(lesson, tmp_path)
    runs: list[asyncio.Task[StepReport]] = []

    async def show_me(step: Any) -> StepReport:
        panel.set_running(True)
        try:
            report = await runner.run_step(step.index)
        finally:
            panel.set_running(False)
        panel.show_results(report)
        return report

    panel.sigShowMe.connect(lambda step: runs.append(aloop.create_task(show_me(step))))
    try:
        for number in range(1, len(lesson.steps) + 1):
            assert panel.progress_text() == f"step {number} of {len(lesson.steps)}"
            qtbot.mouseClick(panel.buttons()["show_me"], Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: bool(runs) and runs[-1].done(), timeout=20_000)
            report = runs[-1].result()
            assert report.ok, [f"{r.label}: {r.found}" for r in report.results if not r.ok]
            rows = panel.check_rows()
            assert rows and all(row.startswith("✓ ") for row in rows), rows
            if number < len(lesson.steps):
                qtbot.mouseClick(panel.buttons()["next"], Qt.MouseButton.LeftButton)
        assert len(runs) == len(lesson.steps)
    finally:
        arun(runner.aclose())
