"""``sdscope decode CAPTURE``: decode a logic-analyzer capture (sigrok .sr or VCD).

Prints an aligned table of bus tokens, JSON Lines (``--jsonl``, the schema of
``Token.to_json`` plus register ``fields``), or counts (``--summary``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from app.cli.parser import add_capture_arguments
from sdmodel.decode import DecodePlan, DecodeSummary, plan_decode
from sdmodel.decode.fields import compact_fields, token_json
from sdmodel.tokens import PS_PER_S, FindingToken, Token

__all__ = ["register", "run", "format_token", "format_summary"]

_PROGRESS_AFTER = 1.0  # s of decoding before progress appears on stderr
_PROGRESS_EVERY = 0.25  # s between progress updates


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode an SD or SPI capture (sigrok .sr, VCD)",
        description="Decode a logic-analyzer capture of an SD bus (CLK, CMD, DAT0-3) or an "
        "SPI-mode card (SCK, MOSI, MISO, CS#) into commands, responses, data blocks, CRC "
        "status, busy periods and protocol findings, checking every CRC.",
    )
    add_capture_arguments(parser)
    parser.add_argument("--jsonl", action="store_true",
                        help="one JSON object per token on stdout")
    parser.add_argument("--summary", action="store_true",
                        help="counts per command, CRC errors and findings instead of the "
                        "token table (with --jsonl: one extra summary object at the end)")
    parser.set_defaults(handler=run)


def _seconds(ps: int) -> str:
    return f"{ps / PS_PER_S:.9f}"


def format_token(token: Token) -> str:
    """One table row: start time, line, kind, label, CRC verdict and register fields."""
    data = token.to_json()
    label = token.label()
    if isinstance(token, FindingToken):
        label = f"{token.severity.upper()} {token.code}: {token.message}"
    if data.get("crc_ok") is False:
        label += "  [CRC ERROR]"
    fields = compact_fields(token)
    if fields and len(fields) <= 6:
        label += "  (" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
    return f"{_seconds(token.start):>15}  {data['line']:<4} {data['kind']:<10} {label}"


def format_summary(plan: DecodePlan, summary: DecodeSummary, path: str) -> str:
    lines = [f"capture:   {path}",
             f"mode:      {plan.mode.value} ({plan.channels.describe()})"]
    if summary.first_ps is not None:
        lines.append(f"span:      {_seconds(summary.first_ps)} .. {_seconds(summary.last_ps)} s, "
                     f"{summary.tokens} tokens")
    else:
        lines.append("span:      no tokens")
    if summary.commands:
        width = max(len(name) for name in summary.commands)
        lines.append("commands:")
        lines += [f"  {name:<{width}}  {n:>6}" for name, n in sorted(summary.commands.items())]
    if summary.responses:
        lines.append("responses: " + ", ".join(f"{k} {v}" for k, v in
                                               sorted(summary.responses.items())))
    lines.append(f"data:      {summary.data_blocks} blocks, {summary.data_bytes} bytes")
    if summary.crc_status:
        lines.append("crc status: " + ", ".join(f"{k} {v}" for k, v in
                                                sorted(summary.crc_status.items())))
    if summary.busy_ps:
        lines.append(f"busy:      {_seconds(summary.busy_ps)} s")
    crc = f"CRC:       {summary.crc_checked} checked, {summary.crc_errors} errors"
    if plan.mode.value == "spi" and summary.crc_errors:
        crc += " (SPI mode: CRC is off unless CMD59 turned it on; only CRCs the card " \
               "checks raise findings)"
    lines.append(crc)
    if summary.findings:
        lines.append("findings:  " + ", ".join(f"{k} {v}" for k, v in
                                               sorted(summary.severities.items())))
        lines += [f"  {code:<28} {n:>6}" for code, n in sorted(summary.findings.items())]
    else:
        lines.append("findings:  none")
    return "\n".join(lines)


def _summary_json(plan: DecodePlan, summary: DecodeSummary) -> dict[str, Any]:
    return {
        "kind": "summary",
        "mode": plan.mode.value,
        "channels": plan.channels.roles,
        "tokens": summary.tokens,
        "commands": dict(summary.commands),
        "responses": dict(summary.responses),
        "data_blocks": summary.data_blocks,
        "data_bytes": summary.data_bytes,
        "crc_checked": summary.crc_checked,
        "crc_errors": summary.crc_errors,
        "findings": dict(summary.findings),
    }


def _progress(stream: TextIO) -> Callable[[float], None]:
    """A progress callback that shows a percentage once decoding takes over a second."""
    started = time.monotonic()
    shown = [0.0]

    def report(fraction: float) -> None:
        now = time.monotonic()
        if now - started >= _PROGRESS_AFTER and now - shown[0] >= _PROGRESS_EVERY:
            shown[0] = now
            stream.write(f"\rdecoding: {fraction:6.1%}")
            stream.flush()

    return report


def run(args: argparse.Namespace) -> int:
    plan = plan_decode(args.capture, args.mode, args.mapping)
    progress = _progress(sys.stderr) if sys.stderr.isatty() else None
    summary = DecodeSummary()
    out = sys.stdout
    tokens = plan.tokens(progress)
    try:
        for token in tokens:
            summary.add(token)
            if args.jsonl:
                out.write(json.dumps(token_json(token)) + "\n")
            elif not args.summary:
                out.write(format_token(token) + "\n")
    finally:
        tokens.close()
        if progress is not None:
            sys.stderr.write("\r\033[K")
    if args.summary:
        if args.jsonl:
            out.write(json.dumps(_summary_json(plan, summary)) + "\n")
        else:
            out.write(format_summary(plan, summary, args.capture) + "\n")
    return 0
