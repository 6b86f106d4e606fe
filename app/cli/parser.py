"""The argument parser shared by every subcommand: usage errors are one line."""

from __future__ import annotations

import argparse
from typing import NoReturn

from sdmodel.errors import SdscopeError

__all__ = ["CliParser", "UsageError", "add_debug_option", "add_capture_arguments"]


class UsageError(SdscopeError):
    """The command line does not parse; ``str()`` names the subcommand and the problem."""


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose ``error()`` raises instead of printing usage and exiting,
    so ``main`` can report it as one ``sdscope: error: ...`` line with exit code 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "sdscope image new" -> "image new"
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message} (see '{self.prog} --help')")


def add_debug_option(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``--debug`` on the top-level parser and on every subcommand. Subcommands default to
    SUPPRESS so ``sdscope --debug image info X`` is not reset by the subparser."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="log debug messages and show tracebacks of errors",
    )


def add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    """CAPTURE, --mode and --map: how every capture-reading subcommand names its input."""
    parser.add_argument("capture", metavar="CAPTURE", help="a sigrok .sr file or a VCD file")
    parser.add_argument("--mode", choices=("auto", "sd", "spi"), default="auto",
                        help="bus mode (default: from the channel names)")
    parser.add_argument("--map", dest="mapping", metavar="ROLE=CH,...",
                        help="channel mapping, e.g. CLK=0,CMD=4,DAT0=1 (0-based channel "
                        "index or channel name); overrides the names in the file")
