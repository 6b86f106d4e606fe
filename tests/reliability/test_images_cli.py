"""Odd and broken disk images on the command line: a one-line error and exit 2 when the
image cannot back a card, a write-protected card for a read-only file, the advisory lock
between two sdscope processes, and an image truncated, replaced or removed while in use.

Disk full and I/O errors during writes are in test_crash_safety.py (they are about which
blocks were acknowledged); the GUI side of each case belongs to the window tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import app.cli
from sdmodel.capacity import BLOCK_SIZE, MAX_IMAGE_BYTES

MIB = 1024 * 1024
ASSET_CAPTURE = Path(__file__).parents[2] / "assets" / "captures" / "imx6_working_snippet.sr"
CHILD_ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}  # progress lines arrive as printed


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = app.cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def sized(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as image:
            image.truncate(size)

    return make


def huge(path: Path) -> None:
    try:
        sized(MAX_IMAGE_BYTES + BLOCK_SIZE)(path)
    except OSError as error:  # a file system without 2 TiB sparse files
        pytest.skip(f"cannot create a sparse file over 2 TiB here: {error.strerror}")


@dataclass(frozen=True)
class BadImage:
    make: Callable[[Path], object]  # creates (or not) the image at the path
    message: str  # what the one error line must say


BAD_IMAGES = {
    "empty": BadImage(sized(0), "image is empty (0 bytes)"),
    "size-not-multiple-of-512": BadImage(sized(1000), "not a multiple of 512"),
    "smaller-than-4-blocks": BadImage(sized(1024), "only 1024 bytes"),
    "larger-than-2-TiB": BadImage(huge, "cards larger than 2 TiB (SDUC) are not supported"),
    "missing": BadImage(lambda path: None, "no such image"),
    "directory": BadImage(Path.mkdir, "is a directory, not a disk image"),
    "fifo": BadImage(os.mkfifo, "not a regular file or block device"),
}

COMMANDS = {
    "image-info": ("image", "info", "{image}"),
    "simulate-sd": ("simulate", "--image", "{image}", "--workload", "init; read 0 1"),
    "simulate-spi": ("simulate", "--mode", "spi", "--image", "{image}"),
    "replay": ("replay", str(ASSET_CAPTURE), "--image", "{image}"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_an_image_that_cannot_back_a_card_is_one_error_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: str) -> None:
    bad = BAD_IMAGES[case]
    path = tmp_path / "card.img"
    bad.make(path)
    code, out, err = run(capsys, *(a.format(image=path) for a in COMMANDS[command]))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("sdscope: error: ")
    assert bad.message in err and "card.img" in err


# --- a read-only file is a write-protected card ----------------------------------------------


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
def read_only_image(tmp_path: Path) -> Path:
    path = tmp_path / "ro.img"
    path.write_bytes(b"".join(bytes([lba % 256]) * BLOCK_SIZE for lba in range(2048)))
    path.chmod(0o444)  # even root (CI) gets a write-protected card: the mode bits decide
    return path


def test_image_info_reports_a_read_only_file_as_a_write_protected_card(
        read_only_image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "image", "info", read_only_image)
    assert (code, err) == (0, "")
    assert "read-only (write-protected card)" in out


@pytest.mark.parametrize(("mode", "refusal"), [
    ("sd", "(WP_VIOLATION)"),  # R1 of CMD24/25 (§4.10.1)
    ("spi", "data response 0x0D"),  # write error data response (§7.3.3.1, reference A.5)
])
def test_writes_to_a_read_only_file_are_refused_on_the_bus_and_the_file_is_untouched(
        read_only_image: Path, capsys: pytest.CaptureFixture[str], mode: str,
        refusal: str) -> None:
    before = file_state(read_only_image)
    code, out, err = run(capsys, "simulate", "--mode", mode, "--image", read_only_image,
                         "--workload", "init; write 0 1; write 8 4; erase 0 16; read 0 1")
    assert (code, err) == (1, "")
    statements = dict(line.split(": ", 1) for line in out.splitlines()
                      if line.startswith("statement "))
    assert statements["statement 1 (init)"] == "ok"
    assert "CMD24 WRITE_BLOCK" in statements["statement 2 (write 0 1)"]
    assert refusal in statements["statement 2 (write 0 1)"]
    assert "CMD25 WRITE_MULTIPLE_BLOCK" in statements["statement 3 (write 8 4)"]
    assert file_state(read_only_image) == before


# --- the advisory lock ---------------------------------------------------------------------


def hung_writer(image: Path) -> subprocess.Popen[str]:
    """Another sdscope process holding ``image`` open for writing: its first write hangs
    in storage, so it keeps the image (and its lock) until killed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "simulate", "--image", str(image), "--workload",
         "init; write 0 1", "--fault", "hang"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=CHILD_ENV)
    assert child.stdout is not None
    assert child.stdout.readline() == "statement 1 (init): ok\n"
    return child


def test_a_second_sdscope_process_refuses_to_write_an_image_in_use_and_can_read_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "card.img"
    sized(MIB)(image)
    holder = hung_writer(image)
    try:
        code, out, err = run(capsys, "simulate", "--image", image, "--workload", "init")
        assert (code, out) == (2, "")
        assert err == (f"sdscope: error: {image}: image is in use by another sdscope process "
                       "(it holds the write lock); close it there or open this image "
                       "read-only\n")
        code, out, err = run(capsys, "simulate", "--image", image, "--read-only",
                             "--workload", "init; read 0 1")
        assert (code, err) == (0, "") and "statement 2 (read 0 1): ok" in out
        assert run(capsys, "image", "info", image)[0] == 0
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    # flock dies with its process: a crashed sdscope leaves no stale lock behind
    code, out, err = run(capsys, "simulate", "--image", image, "--workload", "init; write 0 1")
    assert (code, err) == (0, "") and "statement 2 (write 0 1): ok" in out


# --- the image file changes under a running simulation ---------------------------------------


def truncate(path: Path) -> None:
    os.truncate(path, MIB // 2)


def replace(path: Path) -> None:
    other = path.with_name("other.img")
    other.write_bytes(b"\x5a" * MIB)
    os.replace(other, path)


MEDDLING = {
    "truncated": (truncate, "image file changed size from 1048576 to 524288 bytes while in use"),
    "replaced": (replace, "image file was replaced by another file while in use"),
    "removed": (Path.unlink, "image file was removed while in use"),
}
WRITES = 40


@pytest.mark.parametrize("case", list(MEDDLING))
def test_an_image_changed_while_in_use_fails_the_following_writes_and_is_not_written(
        tmp_path: Path, case: str) -> None:
    meddle, message = MEDDLING[case]
    image, jsonl = tmp_path / "card.img", tmp_path / "bus.jsonl"
    sized(MIB)(image)
    workload = "init; " + "; ".join(f"write {lba} 1" for lba in range(WRITES))
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "simulate", "--image", str(image), "--workload",
         workload, "--latency", "20ms", "--jsonl", str(jsonl)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("statement 3 "):
            break
    assert lines[-1] == "statement 3 (write 1 1): ok\n", "".join(lines)
    meddle(image)
    after = image.read_bytes() if image.exists() else None
    out, err = child.communicate(timeout=60)
    assert (child.returncode, err) == (1, "")
    assert f"statement {WRITES + 1} (write {WRITES - 1} 1): write of blocks" in out
    items = [json.loads(line) for line in jsonl.read_text().splitlines()]
    findings = [item["message"] for item in items
                if item["kind"] == "finding" and item["code"] == "storage_fault"]
    assert findings and all(message in text for text in findings)
    assert (image.read_bytes() if image.exists() else None) == after  # not written since
