"""The headless runner: every shipped lesson passes on the real simulator (and the real
capture); steps run in order, breakpoints pause a workload between steps, and a check,
a breakpoint or a step that does not come true fails the step with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdmodel.lessons import LessonRunner, StepReport, load_lesson, load_lessons, run_lesson
from sdmodel.sim.simulator import Simulator

LESSONS = load_lessons()
HEAD = 'title = "T"\ngoal = "G"\n[session]\ncard = "64MiB"\n'


def lesson_file(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "lesson.toml"
    path.write_text(HEAD + steps, encoding="utf-8")
    return path


def failures(report: StepReport) -> list[str]:
    return [f"{r.label}: {r.found}" for r in report.results if not r.ok]


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
async def test_every_lesson_passes_headless(tmp_path: Path, lesson: object) -> None:
    report = await run_lesson(lesson, tmp_path)  # type: ignore[arg-type]
    assert len(report.steps) == len(report.lesson.steps)
    for step in report.steps:
        assert step.ok, (step.step.number, failures(step))
    assert report.ok
    assert not list(tmp_path.glob("*.img")) or all(
        p.stat().st_blocks * 512 < 64 << 20 for p in tmp_path.glob("*.img"))  # sparse


STEPWISE = '''
[[steps]]
title = "up to CMD8"
text = "x"
workload = "init; read 0 1"
until = "cmd=8"
focus = { panel = "waveform", span = "R7" }
checks = [ { kind = "command", index = 8, response = "R7" },
           { kind = "count", of = "cmd", index = 2, at_most = 0 } ]

[[steps]]
title = "the rest"
text = "x"
focus = { panel = "waveform", span = "data@CMD17" }
checks = [ { kind = "command", index = 2, response = "R2" },
           { kind = "count", of = "cmd", index = 8, at_least = 1, at_most = 1 },
           { kind = "workload", ok = true } ]
'''


async def test_a_breakpoint_pauses_the_workload_until_the_next_step(tmp_path: Path) -> None:
    runner = LessonRunner(load_lesson(lesson_file(tmp_path, STEPWISE)), tmp_path)
    sessions: list[Simulator] = []
    reports: list[StepReport] = []
    runner.events.session.connect(sessions.append)
    runner.events.step.connect(reports.append)
    try:
        first = await runner.run_step(0)
        assert first.ok, failures(first)
        assert [r.kind for r in first.results][0] == "reached"
        assert runner.workload_paused
        second = await runner.run_step(1)
        assert second.ok, failures(second)
        assert not runner.workload_paused
        assert len(sessions) == 1 and reports == [first, second]
        assert first.focus_range is not None and second.focus_range is not None
        assert first.end_ps <= second.focus_range[0] < second.focus_range[1] <= second.end_ps
    finally:
        await runner.aclose()


async def test_running_an_earlier_step_starts_the_lesson_over(tmp_path: Path) -> None:
    runner = LessonRunner(load_lesson(lesson_file(tmp_path, STEPWISE)), tmp_path)
    sessions: list[Simulator] = []
    runner.events.session.connect(sessions.append)
    try:
        await runner.run_step(1)  # runs step 1 first
        assert runner.reports[0] is not None and runner.next_index == 2
        again = await runner.run_step(0)
        assert again.ok and len(sessions) == 2 and runner.reports[1] is None
    finally:
        await runner.aclose()


async def test_a_breakpoint_never_hit_fails_the_step(tmp_path: Path) -> None:
    lesson = load_lesson(lesson_file(tmp_path, '''
[[steps]]
title = "never"
text = "x"
workload = "init"
until = "cmd=25"
checks = [ { kind = "workload", ok = true } ]
'''))
    report = (await run_lesson(lesson, tmp_path)).steps[0]
    assert failures(report) == ["reached the breakpoint cmd=25: the workload ended without "
                                "hitting cmd=25"]


async def test_a_check_that_does_not_come_true_fails_with_what_was_found(tmp_path: Path) -> None:
    lesson = load_lesson(lesson_file(tmp_path, '''
[[steps]]
title = "SDSC"
text = "x"
workload = "init; read 2 1"
checks = [ { kind = "command", index = 17, arg = 2, label = "block addressing" } ]
'''))
    report = await run_lesson(lesson, tmp_path)
    assert not report.ok
    assert failures(report.steps[0]) == [
        "block addressing: no CMD17 in this step (commands: CMD0, CMD8, CMD55, ACMD41, CMD2, "
        "CMD3, CMD9, CMD7, ACMD51, ACMD13, CMD6, ACMD6, ...)"]


async def test_a_step_that_does_not_finish_in_time_fails(tmp_path: Path) -> None:
    lesson = load_lesson(lesson_file(tmp_path, '''
[[steps]]
title = "init"
text = "x"
workload = "init"
checks = [ { kind = "workload" } ]

[[steps]]
title = "hung write"
text = "x"
session = { time_scale = 0.01 }
storage = { faults = ["hang"] }
workload = "init; write 0 1"
timeout_s = 0.5
checks = [ { kind = "workload" } ]
'''))
    report = await run_lesson(lesson, tmp_path)
    assert report.steps[0].ok
    assert failures(report.steps[1])[0] == (
        "the step finished: the step did not finish within 0.5 s")


async def test_a_bus_fault_corrupts_exactly_one_block(tmp_path: Path) -> None:
    lesson = load_lesson(lesson_file(tmp_path, '''
[[steps]]
title = "init"
text = "x"
workload = "init"
checks = [ { kind = "workload" } ]

[[steps]]
title = "write"
text = "x"
workload = "write 0 3"
bus_fault = { data_block = 2 }
checks = [ { kind = "crc_status", status = "crc_error" },
           { kind = "count", of = "crc_status", at_least = 4 },
           { kind = "workload", ok = true } ]

[[steps]]
title = "write again"
text = "x"
workload = "write 0 3"
checks = [ { kind = "count", of = "crc_status", at_least = 3, at_most = 3 },
           { kind = "crc_status", status = "accepted" } ]
'''))
    runner = LessonRunner(lesson, tmp_path)
    try:
        report = await runner.run_all()
        assert report.ok, [failures(s) for s in report.steps]
        assert runner.sim is not None and runner.sim.bus is not None
        assert {"command", "write_block"}.isdisjoint(vars(runner.sim.bus))  # restored
    finally:
        await runner.aclose()
