"""``sdscope lesson list|run``: the guided lessons (assets/lessons/*.toml).

``lesson list`` prints one lesson a line: its id, a space, its title. ``lesson run NAME
--headless`` runs every step and check on the simulator (or the lesson's capture) and
exits 0 only if all pass (1 otherwise); without ``--headless`` it opens the window on the
lesson. NAME is a lesson id, a unique id prefix ("03") or a lesson file's path; a broken
lesson file is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from typing import Any

from app.cli.gui import run as open_window
from sdmodel.images import DEMO_KEYWORD
from sdmodel.lessons import LessonReport, find_lesson, load_lessons, run_lesson

__all__ = ["register", "run_list", "run_lesson_command", "format_report", "EXIT_FAILED"]

EXIT_FAILED = 1  # a check failed


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lesson",
        help="list and run the guided lessons",
        description="Guided lessons on the simulated card: each step runs part of a "
        "workload, explains what happens on the bus and checks that it happened.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one lesson a line: id and title",
                                 description="List the lessons: id, a space, the title.")
    listing.set_defaults(handler=run_list)
    run = actions.add_parser(
        "run",
        help="run a lesson in the window, or headless with --headless",
        description="Open the window on a lesson, or with --headless run every step and "
        "check and print the results (exit 0 only if all pass).",
    )
    run.add_argument("name", metavar="NAME",
                     help="a lesson id, a unique prefix of one (03), or a lesson file")
    run.add_argument("--headless", action="store_true",
                     help="run every step without a window and report the checks")
    run.set_defaults(handler=run_lesson_command)


def run_list(args: argparse.Namespace) -> int:
    for lesson in load_lessons():
        print(f"{lesson.id} {lesson.title}")
    return 0


def run_lesson_command(args: argparse.Namespace) -> int:
    lesson = find_lesson(args.name)  # a broken file fails here, before anything runs
    if not args.headless:
        return int(open_window(argparse.Namespace(
            image=DEMO_KEYWORD, screenshot=None, quit_after=None, capture=None, workload=None,
            lesson=str(lesson.path))))
    with tempfile.TemporaryDirectory(prefix="sdscope-lesson-") as workdir:
        report = asyncio.run(run_lesson(lesson, workdir))
    print(format_report(report))
    return 0 if report.ok else EXIT_FAILED


def format_report(report: LessonReport) -> str:
    """The headless report: the lesson, each step with its checks, a total line."""
    lesson = report.lesson
    lines = [f"lesson {lesson.id}: {lesson.title}"]
    for step in report.steps:
        lines.append(f"step {step.step.number}/{len(lesson.steps)} {step.step.title}: "
                     f"{'ok' if step.ok else 'FAILED'}")
        lines += [f"  {'ok  ' if r.ok else 'FAIL'} {r.label}: {r.found}" for r in step.results]
    passed = sum(step.ok for step in report.steps)
    lines.append(f"{passed} of {len(lesson.steps)} steps passed")
    return "\n".join(lines)
