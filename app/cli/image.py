"""``sdscope image new|info``: create and inspect disk images."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sdmodel.errors import SizeError
from sdmodel.images import (
    PARTITION_COLUMNS,
    ImageInfo,
    create_image,
    describe_image,
    format_size,
    parse_size,
    read_image_info,
    resolve_image,
)

__all__ = ["register", "run_info", "run_new"]


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except SizeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "image",
        help="create and inspect disk images",
        description="Create and inspect the raw disk images that back the simulated card.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    new = actions.add_parser(
        "new",
        help="create a sparse image, blank or FAT-formatted",
        description="Create a sparse disk image. The card type (SDSC/SDHC/SDXC) follows from "
        "the size. With --fat the image gets an MBR with one FAT partition at 4 MiB, like a "
        "factory-formatted card, holding a few sample files.",
    )
    new.add_argument("path", metavar="PATH", help="the image file to create")
    new.add_argument(
        "--size",
        required=True,
        type=_size,
        metavar="SIZE",
        help="bytes, or with a unit: KB MB GB TB (powers of 1000) or KiB MiB GiB TiB "
        "(powers of 1024), e.g. 64MiB, 2GB, 32GiB",
    )
    new.add_argument("--fat", action="store_true", help="partition and format it (FAT12/16/32)")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(handler=run_new)

    info = actions.add_parser(
        "info",
        help="show card type, capacity, partitions and file systems",
        description="Show what a card backed by the image presents (card type, capacity) and "
        "what a host finds on it (MBR or GPT partitions and their file systems).",
    )
    info.add_argument("path", metavar="PATH", help="an image file, or 'demo' for the demo card")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=run_info)


def run_new(args: argparse.Namespace) -> int:
    path = create_image(args.path, args.size, fat=args.fat, force=args.force)
    info = read_image_info(path)
    layout = ", ".join(
        f"{p.filesystem or p.type_name} partition at {format_size(p.start)}"
        for p in info.partitions
    )
    content = f"{info.scheme.value.upper()} with {layout}" if layout else "blank"
    print(f"created {path}: {format_size(info.size)} {info.card_type.value} card, {content}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    info = read_image_info(resolve_image(args.path))
    if args.json:
        print(json.dumps(info.to_dict()))
    else:
        print(format_info(info))
    return 0


def format_info(info: ImageInfo) -> str:
    """The human-readable report of ``image info``."""
    rows = describe_image(info)
    width = max(len(title) for title, _ in rows) + 2
    lines = [f"{title + ':':<{width}}{text}" for title, text in rows]
    if info.partitions:
        # Columns with no text in any row (partition names on MBR) are left out.
        columns = [
            (title, cell) for title, cell in PARTITION_COLUMNS
            if any(cell(p) for p in info.partitions)
        ]
        table = [[title for title, _ in columns]]
        table += [[cell(p) for _, cell in columns] for p in info.partitions]
        widths = [max(len(row[c]) for row in table) for c in range(len(columns))]
        lines.append("")
        lines += ["  " + "  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)).rstrip()
                  for row in table]
    lines += [f"warning: {w}" for w in info.warnings]
    return "\n".join(lines)
