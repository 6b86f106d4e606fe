"""``sdscope lesson list|run``: the list format, headless runs and their exit codes, and
one-line errors (exit 2) for a broken or unknown lesson."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import app.cli
from sdmodel.lessons import lessons_dir

GOOD = '''title = "Mine"
goal = "G"
[session]
card = "64MiB"
[[steps]]
title = "Init"
text = "x"
workload = "init"
checks = [ { kind = "command", index = 16, arg = 512, response = "R1", label = "CMD16 512" } ]
'''


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = app.cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_one_lesson_a_line_id_space_title(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lesson", "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == sorted(
        p.stem for p in lessons_dir().glob("*.toml"))
    assert len(lines) >= 9
    assert all(re.fullmatch(r"\d\d-[a-z0-9-]+ \S.*", line) for line in lines)
    assert "03-single-block-read A single block read" in lines


def test_headless_run_passes_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lesson", "run", "09", "--headless")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "lesson 09-real-capture: A real capture: Linux starts a card"
    assert "step 1/5 Clocks before the first command: ok" in out
    assert "  ok   at least 74 clocks before CMD0: 91 clocks before CMD0 GO_IDLE_STATE" in out
    assert out.rstrip().endswith("5 of 5 steps passed")


def test_headless_run_with_a_failing_check_exits_1(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    path = tmp_path / "sdhc.toml"
    path.write_text(GOOD.replace('"64MiB"', '"4GiB"'), encoding="utf-8")  # no CMD16 on SDHC
    code, out, _ = run(capsys, "lesson", "run", path, "--headless")
    assert code == 1
    assert "step 1/1 Init: FAILED" in out
    assert "  FAIL CMD16 512: no CMD16 in this step" in out
    assert out.rstrip().endswith("0 of 1 steps passed")


def test_headless_run_of_a_lesson_file_by_path(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = tmp_path / "sdsc.toml"
    path.write_text(GOOD, encoding="utf-8")
    code, out, _ = run(capsys, "lesson", "run", path, "--headless")
    assert code == 0 and "lesson sdsc: Mine" in out


@pytest.mark.parametrize("headless", [True, False], ids=["headless", "window"])
def test_a_broken_lesson_file_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, headless: bool) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(GOOD.replace('kind = "command"', 'kind = "comand"'), encoding="utf-8")
    code, out, err = run(capsys, "lesson", "run", path, *(["--headless"] if headless else []))
    assert (code, out) == (2, "")
    assert err.startswith("sdscope: error: lesson broken.toml: step 1, check 1: unknown check "
                          "kind 'comand'")
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["lesson", "run", "99-nothing", "--headless"], "'99-nothing' is not a lesson"),
    (["lesson", "run", "0", "--headless"], "'0' matches several lessons"),
    (["lesson", "list", "extra"], "unrecognized arguments: extra"),
    (["lesson"], "lesson: the following arguments are required: ACTION"),
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                             message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1
