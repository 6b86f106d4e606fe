"""``sdscope replay``: the per-command table, the JSON object and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures"
IMX6 = CAPTURES / "sd_mode" / "imx6_working_snippet.sr"
needs_captures = pytest.mark.skipif(not IMX6.exists(), reason=f"no captures in {CAPTURES}")


@needs_captures
def test_replay_prints_a_table_and_the_agreement(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(IMX6)]) == 0
    out = capsys.readouterr().out
    assert "CMD8 SEND_IF_COND" in out and "R7 0x000001AA" in out
    assert out.rstrip().endswith("SD mode: 5 commands, 4 compared, 4 agree (100.0%)")


@needs_captures
def test_replay_json_is_one_object_with_the_documented_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(IMX6), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["commands"], data["compared"], data["agree"]) == (5, 4, 4)
    assert data["agreement"] == 1.0
    assert [row["verdict"] for row in data["rows"]][:4] == ["agree"] * 4


def test_replay_of_a_file_that_is_not_a_capture_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.sr"
    bogus.write_text("not a zip")
    assert main(["replay", str(bogus)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sdscope: error: ")
