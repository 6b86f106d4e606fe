"""Lesson files: every shipped lesson validates, and a broken file is one clear line that
names the file, the place and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdmodel.lessons import LessonError, find_lesson, lessons_dir, load_lesson, load_lessons
from sdmodel.lessons.schema import SPAN

SHIPPED = ["01-identification", "02-card-identity", "03-single-block-read",
           "04-multi-block-write", "05-errors-and-recovery", "06-going-faster", "07-spi-mode",
           "08-slow-storage", "09-real-capture"]

GOOD_STEP = '''
[[steps]]
title = "Init"
text = "The card starts."
workload = "init"
checks = [ { kind = "workload", ok = true } ]
'''
HEAD = 'title = "T"\ngoal = "G"\n'


def write(tmp_path: Path, text: str, name: str = "broken.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def step(body: str) -> str:
    """A lesson with one good step and then a step made of ``body``."""
    return HEAD + GOOD_STEP + '\n[[steps]]\ntitle = "S"\ntext = "x"\n' + body


def test_the_nine_shipped_lessons_load_in_order() -> None:
    lessons = load_lessons()
    assert [lesson.id for lesson in lessons] == SHIPPED
    for lesson in lessons:
        assert lesson.title and lesson.goal and lesson.steps
        assert all(s.text.strip() and s.checks for s in lesson.steps)
        assert lesson.path.parent == lessons_dir()


def test_every_waveform_focus_is_a_span_the_runner_knows() -> None:
    for lesson in load_lessons():
        for s in lesson.steps:
            if s.focus is not None and s.focus.panel == "waveform":
                assert SPAN.fullmatch(s.focus.target["span"]), (lesson.id, s.number)


@pytest.mark.parametrize("text, message", [
    ("title = ", "lesson broken.toml: not valid TOML"),
    ('goal = "G"\n' + GOOD_STEP, "lesson broken.toml: missing key 'title'"),
    ('title = 3\ngoal = "G"\n' + GOOD_STEP, "'title' must be a string, not an integer"),
    (HEAD + 'titel = "x"\n' + GOOD_STEP, "unknown key 'titel'"),
    (HEAD, "needs at least one [[steps]] table"),
    (HEAD + '[[steps]]\ntitle = "S"\nworkload = "init"\nchecks = [{ kind = "workload" }]\n',
     "step 1: missing key 'text'"),
    (step('checks = []\n'), "step 2: needs a non-empty list 'checks'"),
    (step('checks = [ { kind = "comand", index = 17 } ]\n'),
     "step 2, check 1: unknown check kind 'comand' (one of command, response"),
    (step('checks = [ { kind = "command" } ]\n'), "step 2, check 1: missing key 'index'"),
    (step('checks = [ { kind = "command", index = "17" } ]\n'),
     "step 2, check 1: 'index' must be an integer, not a string"),
    (step('checks = [ { kind = "command", index = 17, idx = 3 } ]\n'), "unknown key 'idx'"),
    (step('checks = [ { kind = "command", index = 17, state = "tran2" } ]\n'),
     "'state' = 'tran2' is not one of idle, ready"),
    (step('checks = [ { kind = "busy", line = "DAT0" } ]\n'),
     "busy: needs min_ms or max_ms"),
    (step('checks = [ { kind = "busy", line = "DAT0", min_ms = 5, max_ms = 1 } ]\n'),
     "min_ms (5.0) is above max_ms (1.0)"),
    (step('checks = [ { kind = "count", of = "irq", index = 17, at_least = 1 } ]\n'),
     "index applies to of = cmd or rsp"),
    (step('checks = [ { kind = "response", type = "R3", fields = { BUSY = 1, FOO = 2 } } ]\n'),
     "unknown field(s) FOO of OCR"),
    (step('checks = [ { kind = "capture_command", index = 8 } ]\n'),
     "a capture_command check needs a capture step, this one is a simulation step"),
    (step('checks = [ { kind = "spi", what = "rsp" } ]\n'), "spi checks need SPI mode"),
    (step('workload = "init; reed 0 8"\nchecks = [ { kind = "workload" } ]\n'),
     'step 2: workload: statement 2 "reed 0 8": unknown action "reed"'),
    (step('workload = "read 0 1"\nuntil = "cmd=99"\nchecks = [ { kind = "workload" } ]\n'),
     "step 2: breakpoint 'cmd=99': command index 99 is not 0..63"),
    (step('until = "cmd=17"\nchecks = [ { kind = "workload" } ]\n'),
     "'until' needs a workload to run"),
    (HEAD + '[[steps]]\ntitle = "S"\ntext = "x"\nworkload = "init"\nuntil = "cmd=8"\n'
     'checks = [ { kind = "workload" } ]\n' + GOOD_STEP,
     "step 2: starts a workload while the previous one is paused at a breakpoint"),
    (step('text2 = "x"\nchecks = [ { kind = "workload" } ]\n'), "unknown key 'text2'"),
    (HEAD + GOOD_STEP.replace('"The card starts."', '"See {CSD.C_SIZ}."'),
     "step 1: text names {CSD.C_SIZ}: register CSD has no field 'C_SIZ'"),
    (step('focus = { panel = "scope" }\nchecks = [ { kind = "workload" } ]\n'),
     "step 2, focus: unknown panel 'scope'"),
    (step('focus = { panel = "registers", register = "CSD", field = "SIZE" }\n'
          'checks = [ { kind = "workload" } ]\n'), "register CSD has no field 'SIZE'"),
    (step('focus = { panel = "waveform", span = "CMD17!" }\nchecks = [ { kind = "workload" } ]\n'),
     "span 'CMD17!' is not a command"),
    (step('capture = "../lessons/01-identification.toml"\n'
          'checks = [ { kind = "capture_command", index = 0 } ]\n'), "is outside"),
    (step('capture = "missing.sr"\nchecks = [ { kind = "capture_command", index = 0 } ]\n'),
     "capture 'missing.sr' does not exist"),
    (step('capture = "imx6_working_snippet.sr"\nworkload = "init"\n'
          'checks = [ { kind = "capture_command", index = 0 } ]\n'),
     "a capture step cannot also have workload"),
    (step('bus_fault = { command = 17, data_block = 1 }\nchecks = [ { kind = "workload" } ]\n'),
     "give exactly one of command or data_block"),
    (step('storage = { latency = "fast" }\nchecks = [ { kind = "workload" } ]\n'),
     "bad latency 'fast'"),
    (step('session = { bus_width = 8 }\nworkload = "init"\nchecks = [ { kind = "workload" } ]\n'),
     "step 2, session: --bus-width must be 1 or 4, not 8"),
    (step('session = { card = "lots" }\nworkload = "init"\nchecks = [ { kind = "workload" } ]\n'),
     "cannot read size 'lots'"),
    (HEAD + '[session]\nmode = "spi"\n' + GOOD_STEP.replace(
        '{ kind = "workload", ok = true }', '{ kind = "irq", bit = "DATA_TIMEOUT" }'),
     "step 1, check 1: irq: SPI mode has no SDHCI controller"),
    (HEAD + '[session]\nmode = "spi"\n' + GOOD_STEP.replace(
        'workload = "init"', 'workload = "init"\nbus_fault = { command = 17 }'),
     "step 1, bus_fault: bus faults are SD-mode only"),
    (HEAD + '[session]\nmode = "spi"\n' + GOOD_STEP.replace(
        'workload = "init"', 'workload = "init"\nuntil = "cmd=17"'),
     "until 'cmd=17': in SPI mode use one of state, finding, storage-fault"),
])
def test_a_broken_lesson_is_one_line_naming_the_problem(tmp_path: Path, text: str,
                                                        message: str) -> None:
    with pytest.raises(LessonError) as caught:
        load_lesson(write(tmp_path, text))
    assert message in str(caught.value)
    assert str(caught.value).startswith("lesson broken.toml: ")
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_utf8_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'title = "caf\xe9"\n')
    with pytest.raises(LessonError, match="not UTF-8 text"):
        load_lesson(path)
    with pytest.raises(LessonError, match="lesson nothing.toml: No such file"):
        load_lesson(tmp_path / "nothing.toml")


def test_lesson_files_are_data_only(tmp_path: Path) -> None:
    """TOML has no code and no object tags: a text that looks like code stays text."""
    lesson = load_lesson(write(tmp_path, HEAD.replace('"T"', '"__import__(\'os\')"')
                               + GOOD_STEP, "data.toml"))
    assert lesson.title == "__import__('os')"


def test_the_session_merges_lesson_and_step_options(tmp_path: Path) -> None:
    text = (HEAD + '[session]\ncard = "1GiB"\ndma = false\ncmd23 = false\n' + GOOD_STEP
            + GOOD_STEP.replace('workload = "init"',
                                'session = { bus_width = 1, latency = "30ms" }\n'
                                'workload = "init"'))
    lesson = load_lesson(write(tmp_path, text, "merge.toml"))
    assert lesson.session is not None
    assert (lesson.session.card_size, lesson.session.cmd23) == (1 << 30, False)
    assert not lesson.session.options.use_dma
    second = lesson.steps[1].session
    assert second is not None and second.card_size == 1 << 30 and not second.cmd23
    assert (second.options.bus_width, second.options.latency, second.options.use_dma) == (
        1, "30ms", False)


def test_check_labels_default_to_the_parameters(tmp_path: Path) -> None:
    lesson = load_lesson(write(tmp_path, step(
        'checks = [ { kind = "command", index = 17, set = ["APP_CMD", "ERROR"] },\n'
        '  { kind = "state", state = "tran", label = "back in tran" } ]\n'), "labels.toml"))
    first, second = lesson.steps[1].checks
    assert first.label == "command: index=17, set=APP_CMD+ERROR"
    assert second.label == "back in tran"


@pytest.mark.parametrize("name, lesson_id", [
    ("03-single-block-read", "03-single-block-read"),
    ("03", "03-single-block-read"),
    ("07-spi", "07-spi-mode"),
])
def test_a_shipped_lesson_is_found_by_id_or_prefix(name: str, lesson_id: str) -> None:
    assert find_lesson(name).id == lesson_id


@pytest.mark.parametrize("name, message", [
    ("0", "'0' matches several lessons"),
    ("99-nothing", "'99-nothing' is not a lesson (lessons: 01-identification"),
])
def test_an_unknown_or_ambiguous_name_is_refused(name: str, message: str) -> None:
    with pytest.raises(LessonError, match=message.replace("(", r"\(")):
        find_lesson(name)


def test_a_lesson_file_is_found_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + GOOD_STEP, "mine.toml")
    assert find_lesson(str(path)).id == "mine"
