"""``sdscope gui``: open the main window (also what a bare ``sdscope`` does)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.parser import UsageError
from sdmodel.images import DEMO_KEYWORD, read_image_info, resolve_image

__all__ = ["register", "run"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"seconds must be 0 or more, not {text}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="open the main window (the default command)",
        description="Open the sdscope window on a disk image.",
    )
    parser.add_argument(
        "--image",
        default=DEMO_KEYWORD,
        metavar="IMG",
        help="disk image to load (default: 'demo', the built-in demo card)",
    )
    parser.add_argument("--capture", type=Path, metavar="FILE",
                        help="decode and show a capture (.sr or VCD) once the window is up")
    parser.add_argument("--workload", metavar="TEXT",
                        help="run this workload on the image once the window is up, e.g. "
                        "'init; read 0 8'")
    parser.add_argument("--lesson", metavar="NAME",
                        help="open a guided lesson (an id from 'sdscope lesson list')")
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="save a picture of the window to PNG right before quitting",
    )
    parser.add_argument(
        "--quit-after",
        type=_seconds,
        metavar="SECONDS",
        help="close the window SECONDS after it is first shown",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    image = resolve_image(args.image)
    read_image_info(image)  # a bad image is a one-line error here, before any window opens
    screenshot: Path | None = args.screenshot
    if screenshot is not None:
        if screenshot.suffix.lower() != ".png":
            raise UsageError(f"gui: --screenshot must name a .png file, not {screenshot}")
        if not screenshot.parent.is_dir():
            raise UsageError(f"gui: directory {screenshot.parent} does not exist")
    actions = _startup_actions(args)
    from app.main import run_gui  # Qt is imported only when a window is wanted

    return run_gui(image, screenshot=screenshot, quit_after=args.quit_after, actions=actions)


def _startup_actions(args: argparse.Namespace) -> Any:
    """Check --capture, --workload and --lesson before any window opens."""
    from app.main import StartupActions
    from sdmodel.capture.source import open_capture
    from sdmodel.driver.workload import parse_workload
    from sdmodel.lessons import find_lesson

    capture = getattr(args, "capture", None)
    if capture is not None:
        open_capture(capture)  # a broken capture is a one-line error here
    workload = getattr(args, "workload", None)
    if workload:
        parse_workload(workload)
    lesson_name = getattr(args, "lesson", None)
    lesson = find_lesson(lesson_name) if lesson_name else None
    return StartupActions(capture=capture, workload=workload, lesson=lesson)
