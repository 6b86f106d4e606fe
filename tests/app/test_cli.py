"""The sdscope command line: help, version, image new/info and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyfatfs.PyFatFS import PyFatFS

from app import __version__
from app.cli import SUBCOMMANDS, main
from sdmodel.images import FAT_PARTITION_ALIGN

MiB = 1024**2


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"sdscope {__version__}\n"


@pytest.mark.parametrize(
    "command",
    [[], ["gui"], ["image"], ["image", "new"], ["image", "info"], ["decode"], ["replay"],
     ["bench"]],
    ids=lambda c: " ".join(c) or "sdscope",
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(['sdscope', *command])}")
    assert "--debug" in out


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.findall(r"^    (\w+) ", capsys.readouterr().out, re.MULTILINE)
    assert listed == [module.__name__.rsplit(".", 1)[1] for module in SUBCOMMANDS]


def test_image_new_then_info(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "x.img"
    code, out, err = run(capsys, "image", "new", str(path), "--size", "64MiB")
    assert (code, err) == (0, "")
    assert out == f"created {path}: 64 MiB SDSC card, blank\n"
    assert path.stat().st_size == 64 * MiB

    code, out, err = run(capsys, "image", "info", str(path))
    assert (code, err) == (0, "")
    assert re.search(r"^Card type: +SDSC \(byte addressing\)$", out, re.MULTILINE)
    assert re.search(r"^Capacity: +64 MiB \(67,108,864 bytes\)$", out, re.MULTILINE)


def test_image_new_fat_files_read_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "fat.img"
    code, out, _ = run(capsys, "image", "new", str(path), "--size", "64MiB", "--fat")
    assert code == 0
    assert out.endswith("64 MiB SDSC card, MBR with FAT16 partition at 4 MiB\n")
    fs = PyFatFS(str(path), offset=FAT_PARTITION_ALIGN, read_only=True)
    try:
        assert "demo card" in fs.readtext("/README.TXT")
        assert fs.readtext("/SENSORS.CSV").startswith("time,temperature_c,")
    finally:
        fs.close()

    code, out, _ = run(capsys, "image", "info", str(path))
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["#", "Type", "Start", "Size", "File", "system"]
    assert table[1].split() == [
        "1", "FAT16", "(0x06)", "4", "MiB", "60", "MiB", "FAT16", '"SDSCOPE"'
    ]


def test_image_info_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "j.img"
    run(capsys, "image", "new", str(path), "--size", "4GiB")
    code, out, _ = run(capsys, "image", "info", str(path), "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["size"], data["card_type"], data["capacity"], data["scheme"]) == (
        4 * 1024**3, "SDHC", 4 * 1024**3, "none"
    )


def test_image_info_demo(capsys: pytest.CaptureFixture[str], demo_image: Path) -> None:
    code, out, _ = run(capsys, "image", "info", "demo", "--json")
    assert code == 0
    assert json.loads(out)["path"] == str(demo_image)


def test_force_overwrites(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "x.img"
    path.write_bytes(b"x")
    assert run(capsys, "image", "new", str(path), "--size", "1MiB", "--force")[0] == 0
    assert path.stat().st_size == MiB


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["image", "new", "{tmp}/a.img", "--size", "64XB"], "unknown size unit 'XB'"),
        (["image", "new", "{tmp}/a.img", "--size", "1000"], "not a multiple of 512"),
        (["image", "new", "{tmp}/a.img", "--size", "3TiB"], "larger than 2 TiB"),
        (["image", "new", "{tmp}/exists.img", "--size", "1MiB"], "already exists"),
        (["image", "new", "{tmp}", "--size", "1MiB"], "is a directory"),
        (["image", "new", "{tmp}/no/a.img", "--size", "1MiB"], "does not exist"),
        (["image", "new", "{tmp}/a.img"], "required: --size"),
        (["image", "new", "{tmp}/a.img", "--size", "4MiB", "--fat"], "at least 8 MiB"),
        (["image", "info", "{tmp}/missing.img"], "no such image"),
        (["image", "info", "{tmp}"], "is a directory"),
        (["image", "info", "{tmp}/odd.img"], "not a multiple of 512"),
        (["image"], "image: the following arguments are required: ACTION"),
        (["image", "resize"], "invalid choice: 'resize'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["--nope"], "unrecognized arguments: --nope"),
        (["gui", "--image", "{tmp}/missing.img"], "no such image"),
        (["gui", "--quit-after", "-1"], "seconds must be 0 or more"),
        (["gui", "--screenshot", "{tmp}/shot.jpg"], "must name a .png file"),
        (["gui", "--screenshot", "{tmp}/no/shot.png"], "does not exist"),
        (["bench", "warp-speed"], "unknown benchmark 'warp-speed'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_arguments_give_one_error_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    (tmp_path / "exists.img").write_bytes(b"")
    (tmp_path / "odd.img").write_bytes(bytes(1000))
    code, out, err = run(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("sdscope: error: ")
    assert message in err
    assert (tmp_path / "exists.img").read_bytes() == b""


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--debug", "image", "info", str(tmp_path / "missing.img"))
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == f"sdscope: error: no such image: {tmp_path / 'missing.img'}"


def test_debug_works_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "image", "info", str(tmp_path / "missing.img"), "--debug")
    assert code == 2
    assert "Traceback" in err
