"""The ``sdscope`` command line. Each subcommand is one module in ``SUBCOMMANDS`` with a
``register(subparsers)`` that adds its parser and sets ``handler``; handlers parse nothing
themselves, call the API the tests call, and return an exit code.

Errors meant for users (``SdscopeError``, usage errors, ``OSError`` on a user's path) end
as one ``sdscope: error: ...`` line on stderr and exit code 2; ``--debug`` adds the
traceback. Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from app import __version__
from app.cli import bench, decode, gui, image, lesson, replay, simulate
from app.cli.parser import CliParser, add_debug_option
from sdmodel.errors import SdscopeError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

# One module per subcommand, in --help order. Add a subcommand by appending its module.
SUBCOMMANDS: tuple[ModuleType, ...] = (gui, image, simulate, decode, replay, bench, lesson)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def build_parser() -> CliParser:
    parser = CliParser(
        prog="sdscope",
        description="Interactive SD-bus debugger: a simulated SD card, SDHCI controller and "
        "host driver, with waveform and protocol views. Without a command, opens the window "
        "on the built-in demo card.",
    )
    parser.add_argument("--version", action="version", version=f"sdscope {__version__}")
    add_debug_option(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    for sub in _nested_parsers(parser):
        add_debug_option(sub, top_level=False)
    return parser


def _nested_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand parser below ``parser``, at any depth (``image``, ``image new``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *_nested_parsers(sub)]
    return found


# Loggers that --debug turns up to DEBUG (libraries such as qasync stay at WARNING).
_OWN_LOGGERS = ("sdscope", "sdmodel", "widgets", "app", "qt")


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
    if debug:
        for name in _OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _parse(parser: CliParser, arguments: list[str]) -> argparse.Namespace:
    """Parse, letting a subcommand whose positional list is named by its ``intermixed``
    default take words that follow its options (``bench decode --json FILE``)."""
    args, extra = parser.parse_known_args(arguments)
    dest = getattr(args, "intermixed", None)
    if extra and dest and not any(word.startswith("-") for word in extra):
        getattr(args, dest).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sdscope`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    try:
        parser = build_parser()
        args = _parse(parser, arguments)
        if args.command is None:  # bare `sdscope`: the window with its defaults
            args = parser.parse_args([*arguments, "gui"])
        _configure_logging(args.debug)
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `sdscope ... | head`: the reader left, nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (SdscopeError, OSError) as error:
        if debug:
            traceback.print_exc()
        print(f"sdscope: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR

