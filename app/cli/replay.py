"""``sdscope replay CAPTURE``: feed a real host's commands to the card model and compare.

Prints one row per command (real response, model response, verdict and why) and the
agreement; ``--json`` prints one object ``{"commands", "compared", "agree",
"agreement", "rows"}``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.parser import add_capture_arguments
from sdmodel.images import resolve_image
from sdmodel.replay import ReplayReport, replay_capture

__all__ = ["register", "run", "format_report"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a real capture against the card model and compare responses",
        description="Decode a capture, send the captured host's commands to a simulated "
        "card and compare each real response with the model's: response type, "
        "CURRENT_STATE, error bits, APP_CMD, the R7 echo, the OCR busy/CCS progression "
        "(SD mode) or the R1 bits (SPI mode). Card-specific contents (CID, CSD, RCA, OCR "
        "window) are reported, not judged. Exit status 0 whatever the agreement.",
    )
    add_capture_arguments(parser)
    parser.add_argument("--image", metavar="IMG",
                        help="back the model card with this image ('demo' for the demo card); "
                        "default: a temporary sparse image sized like the captured card")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    image = resolve_image(args.image) if args.image else None
    report = replay_capture(args.capture, mode=args.mode, mapping=args.mapping, image=image)
    print(json.dumps(report.to_json()) if args.json else format_report(report))
    return 0


def format_report(report: ReplayReport) -> str:
    header = ("time (s)", "command", "real", "model", "verdict")
    rows = [(f"{r.t:.6f}", r.command, r.real, r.model, r.verdict) for r in report.rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    for row, source in zip(rows, report.rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines += [f"{'':{widths[0]}}  - {note}" for note in source.notes]
    lines.append("")
    lines.append(
        f"{report.mode.upper()} mode: {report.commands} commands, {report.compared} compared, "
        f"{report.agree} agree ({report.agreement:.1%})"
    )
    return "\n".join(lines)
