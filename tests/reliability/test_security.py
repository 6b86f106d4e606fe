"""Files sdscope opens are data, never code; paths inside them never reach the file
system; an image opened read-only is never written.

- No module of sdmodel/app/widgets can deserialise objects or run text as code: no pickle,
  marshal, shelve or YAML import, no eval/exec/compile/__import__, no
  ``allow_pickle=True`` (checked on the source's syntax tree, so comments do not count).
- A ``.sr`` is a zip archive, read member by member and never extracted: member names
  with ``../`` or absolute paths, and a ``capturefile`` naming a file outside the archive,
  reach nothing on disk.
- A read-only image (``--read-only``, or a file without write permission) is opened
  O_RDONLY, and a write workload, an erase and a CMD42 forced erase leave its bytes and
  its modification time as they were.
"""

from __future__ import annotations

import ast
import asyncio
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import app.cli
from sdmodel.capacity import BLOCK_SIZE
from sdmodel.card import Card
from sdmodel.decode import decode_capture
from sdmodel.errors import CaptureError
from sdmodel.registers import CardStatus
from sdmodel.storage import Storage, StorageOptions

ROOT = Path(__file__).parents[2]
PACKAGES = ("sdmodel", "app", "widgets")
# Modules that turn bytes into arbitrary objects (or load YAML, whose tags can).
UNSAFE_MODULES = frozenset({"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill",
                            "cloudpickle", "jsonpickle", "joblib", "yaml", "ruamel"})
UNSAFE_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
MIB = 1024 * 1024


def unsafe_uses(source: str) -> Iterator[str]:
    """Each place in ``source`` that could run data as code, as "line: what"."""
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in UNSAFE_MODULES:
                yield f"{node.lineno}: import {name}"
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_BUILTINS:
                yield f"{node.lineno}: {node.func.id}()"
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                    yield f"{node.lineno}: allow_pickle"


@pytest.mark.parametrize("snippet", [
    "import pickle", "import yaml.constructor", "from ruamel.yaml import YAML",
    "from marshal import loads", "eval(text)", "exec(code, {})", "__import__(name)",
    "compile(text, 'x', 'exec')", "numpy.load(f, allow_pickle=True)",
])
def test_the_scanner_finds_each_way_of_running_data_as_code(snippet: str) -> None:
    assert len(list(unsafe_uses(snippet))) == 1


@pytest.mark.parametrize("snippet", [
    "import tomllib", "re.compile(pattern)", "dialog.exec()", "np.load(f)",
    "np.load(f, allow_pickle=False)", "from . import pickle_free",
])
def test_the_scanner_leaves_safe_code_alone(snippet: str) -> None:
    assert list(unsafe_uses(snippet)) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_can_deserialise_objects_or_run_text_as_code(package: str) -> None:
    sources = sorted((ROOT / package).rglob("*.py"))
    assert sources
    found = [f"{path.relative_to(ROOT)}:{use}" for path in sources
             for use in unsafe_uses(path.read_text(encoding="utf-8"))]
    assert found == []


# --- paths inside a capture ------------------------------------------------------------------


def metadata(capturefile: str = "logic-1") -> str:
    return ("[global]\nsigrok version=0.5.2\n\n[device 1]\n"
            f"capturefile={capturefile}\ntotal probes=2\nsamplerate=1 MHz\nunitsize=1\n"
            "probe1=CLK\nprobe2=CMD\n")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The chosen directory (where the capture is) inside a parent that must stay as it is."""
    inner = tmp_path / "captures" / "chosen"
    inner.mkdir(parents=True)
    return inner


def test_member_names_that_climb_out_of_the_folder_are_never_extracted(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = workdir.parent.parent
    absolute = outside / "absolute.txt"
    path = workdir / "hostile.sr"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", metadata())
        archive.writestr("logic-1-1", bytes([1, 3, 0, 2]) * 64)
        for name in ("../escaped.txt", "../../escaped.txt", str(absolute), "/etc/sdscope.txt"):
            archive.writestr(zipfile.ZipInfo(name), b"written by a hostile capture")
    before = tree(outside)
    assert app.cli.main(["decode", str(path), "--summary"]) == 0
    assert "mode:      sd" in capsys.readouterr().out
    assert tree(outside) == before
    assert not absolute.exists() and not Path("/etc/sdscope.txt").exists()


@pytest.mark.parametrize("capturefile", ["../outside/logic-1", "{outside}/logic-1"])
def test_capturefile_names_a_member_of_the_archive_never_a_file_on_disk(
        workdir: Path, capturefile: str) -> None:
    outside = workdir.parent / "outside"
    outside.mkdir()
    (outside / "logic-1-1").write_bytes(bytes([1, 0]) * 64)  # samples an attacker planted
    path = workdir / "pointing-out.sr"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", metadata(capturefile.format(outside=outside)))
    with pytest.raises(CaptureError, match="no sample data"):
        list(decode_capture(path))


# --- a read-only image is never written ------------------------------------------------------


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "card.img"
    path.write_bytes(b"".join(bytes([lba % 256]) * BLOCK_SIZE for lba in range(2048)))
    return path


def open_flags(path: Path) -> list[int]:
    """The access mode (O_RDONLY/O_WRONLY/O_RDWR) of each descriptor of this process that
    has ``path`` open."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd (Linux)")
    modes = []
    for fd in fds.iterdir():
        try:
            if Path(os.readlink(fd)) != path.resolve():
                continue
            info = (Path("/proc/self/fdinfo") / fd.name).read_text()
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        flags = int(next(line.split()[1] for line in info.splitlines()
                         if line.startswith("flags:")), 8)
        modes.append(flags & os.O_ACCMODE)
    return modes


@pytest.mark.parametrize("how", ["option", "permissions"])
def test_a_read_only_image_is_opened_without_write_access(image: Path, how: str) -> None:
    if how == "permissions":
        image.chmod(0o444)
    with Storage.open(image, StorageOptions(read_only=how == "option")) as storage:
        assert storage.read_only
        assert open_flags(image) == [os.O_RDONLY]


@pytest.mark.parametrize("mode", ["sd", "spi"])
def test_a_write_workload_on_an_image_opened_read_only_changes_nothing(
        image: Path, capsys: pytest.CaptureFixture[str], mode: str) -> None:
    before = file_state(image)
    code = app.cli.main(["simulate", "--mode", mode, "--image", str(image), "--read-only",
                         "--workload", "init; write 0 8; write 100 1; erase 0 64; read 0 8"])
    out, _ = capsys.readouterr()
    assert code == 1 and "statement 2 (write 0 8): ok" not in out
    assert file_state(image) == before


CMD42_SET_PASSWORD_AND_LOCK = bytes([0x05, 4]) + b"sdsc"  # SET_PWD | LOCK_UNLOCK (§4.3.7)
CMD42_FORCE_ERASE = bytes([0x08])  # ERASE alone: wipes the card, no password (§4.3.7.4)


async def force_erase(storage: Storage) -> Card:
    """Initialise a card, lock it with a password and force-erase it (Linux init order,
    reference §8; CMD42 data blocks of CMD16's length)."""
    card = Card(storage)
    for index, arg in ((0, 0), (8, 0x1AA), (55, 0), (41, 0x40300000), (55, 0),
                       (41, 0x40300000), (2, 0), (3, 0)):
        card.execute(index, arg)
    card.execute(7, card.rca << 16)
    for block in (CMD42_SET_PASSWORD_AND_LOCK, CMD42_FORCE_ERASE):
        card.execute(16, len(block))
        card.execute(42, 0)
        card.accept_block(block)
        await card.wait_ready()
    return card


def test_a_forced_erase_of_a_read_only_image_fails_and_changes_nothing(image: Path) -> None:
    """CMD42's forced erase is the one erase not refused by the card's write protection
    (§4.3.7.4 erases even a protected card); the read-only storage refuses it."""
    before = file_state(image)
    with Storage.open(image, StorageOptions(read_only=True)) as storage:
        card = asyncio.run(force_erase(storage))
    assert not card.lock.locked and not card.lock.password  # the card went ahead...
    assert card.status & CardStatus.ERROR  # ...and the storage refused (§4.10.1 ERROR)
    assert file_state(image) == before
