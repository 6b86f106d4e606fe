"""`sdscope gui` as a real process, offscreen: screenshot, --quit-after, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from app.startup import STARTUP_ENV


def _gui(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The GUI in a child process with settings of its own (no saved layout)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", "gui", *args],
        env={
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "SDSCOPE_CONFIG_DIR": str(config),
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_screenshot_of_the_demo_card(tmp_path: Path, demo_image: Path) -> None:
    shot = tmp_path / "main.png"
    proc = _gui(tmp_path, "--image", "demo", "--screenshot", str(shot), "--quit-after", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1400, 900)  # MainWindow.DEFAULT_SIZE
    assert err == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path, demo_image: Path) -> None:
    proc = _gui(tmp_path, "--image", "demo", env={STARTUP_ENV: "0"})
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed at the first paint
    assert "startup_s" in json.loads(first)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err
