"""The workload language: statements, numbers, comments, patterns and error messages."""

from __future__ import annotations

import struct

import pytest

from sdmodel.driver.patterns import COUNTER, Pattern, PatternKind
from sdmodel.driver.workload import Erase, Init, Read, Wait, Write, parse_workload
from sdmodel.errors import WorkloadError

BYTE_A5 = Pattern(PatternKind.BYTE, 0xA5)
RANDOM = Pattern(PatternKind.RANDOM)


@pytest.mark.parametrize(("text", "step"), [
    ("init", Init(number=1, text="init", line=1)),
    ("read 0 8", Read(number=1, text="read 0 8", line=1, lba=0, count=8)),
    ("write 100 4", Write(number=1, text="write 100 4", line=1, lba=100, count=4,
                          pattern=COUNTER)),
    ("write 100 4 pattern=0xA5", Write(number=1, text="write 100 4 pattern=0xA5", line=1,
                                       lba=100, count=4, pattern=BYTE_A5)),
    ("write 1 1 pattern=random", Write(number=1, text="write 1 1 pattern=random", line=1,
                                       lba=1, count=1, pattern=RANDOM)),
    ("write 1 1 pattern=counter", Write(number=1, text="write 1 1 pattern=counter", line=1,
                                        lba=1, count=1, pattern=COUNTER)),
    ("write 1 1 pattern=165", Write(number=1, text="write 1 1 pattern=165", line=1,
                                    lba=1, count=1, pattern=BYTE_A5)),
    ("erase 200 16", Erase(number=1, text="erase 200 16", line=1, lba=200, count=16)),
    ("wait 25", Wait(number=1, text="wait 25", line=1, ms=25)),
    ("read 0x10 0X20", Read(number=1, text="read 0x10 0X20", line=1, lba=16, count=32)),
    ("  READ   7\t1  ", Read(number=1, text="READ   7\t1", line=1, lba=7, count=1)),
])
def test_each_statement_kind_parses(text: str, step: object) -> None:
    assert parse_workload(text) == [step]


def test_the_issue_example_gives_five_steps_in_order() -> None:
    steps = parse_workload("init; read 0 8; write 100 4 pattern=0xA5; erase 200 16; read 100 4")
    assert [(s.number, s.action) for s in steps] == [
        (1, "init"), (2, "read"), (3, "write"), (4, "erase"), (5, "read")]
    assert steps[2] == Write(number=3, text="write 100 4 pattern=0xA5", line=1, lba=100,
                             count=4, pattern=BYTE_A5)


def test_newlines_comments_and_empty_statements() -> None:
    text = "# a lesson\ninit   # power up first\n\nread 0 1;; wait 5 # ; erase 9 9\n  ;\nread 1 1"
    steps = parse_workload(text)
    assert [(s.number, s.line, s.text) for s in steps] == [
        (1, 2, "init"), (2, 4, "read 0 1"), (3, 4, "wait 5"), (4, 6, "read 1 1")]


def test_an_empty_workload_has_no_steps() -> None:
    assert parse_workload("  # nothing\n;;\n") == []


@pytest.mark.parametrize(("text", "message"), [
    ("init; read 0 8; reed 0 8",
     'workload: statement 3 "reed 0 8": unknown action "reed" '
     "(expected init, read, write, erase, wait)"),
    ("read 0",
     'workload: statement 1 "read 0": read takes 2 number(s), got 1; usage: read LBA COUNT'),
    ("init 5", 'workload: statement 1 "init 5": init takes 0 number(s), got 1; usage: init'),
    ("wait", 'workload: statement 1 "wait": wait takes 1 number(s), got 0; usage: wait MS'),
    ("read x 8",
     'workload: statement 1 "read x 8": LBA "x" is not a number '
     "(write it in decimal or as 0x hex)"),
    ("erase 0 -1",
     'workload: statement 1 "erase 0 -1": COUNT "-1" is not a number '
     "(write it in decimal or as 0x hex)"),
    ("read 0 0", 'workload: statement 1 "read 0 0": COUNT must be at least 1, not 0'),
    ("read 0 0x", 'workload: statement 1 "read 0 0x": COUNT "0x" is not a number '
                  "(write it in decimal or as 0x hex)"),
    ("write 0 1 pattern=0x1FF",
     'workload: statement 1 "write 0 1 pattern=0x1FF": pattern "0x1FF" must be a byte '
     "0x00..0xFF, random or counter"),
    ("write 0 1 pattern=zebra",
     'workload: statement 1 "write 0 1 pattern=zebra": pattern "zebra" must be a byte '
     "0x00..0xFF, random or counter"),
    ("write 0 1 pattern=1 pattern=2",
     'workload: statement 1 "write 0 1 pattern=1 pattern=2": option "pattern" given twice'),
    ("read 0 1 pattern=1",
     'workload: statement 1 "read 0 1 pattern=1": unknown option "pattern" for read '
     "(allowed: none)"),
    ("write 0 1 colour=1",
     'workload: statement 1 "write 0 1 colour=1": unknown option "colour" for write '
     "(allowed: pattern)"),
])
def test_errors_name_the_statement_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(WorkloadError) as caught:
        parse_workload(text)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_counter_pattern_words_hold_their_byte_address() -> None:
    block = COUNTER.block(3)
    words = struct.unpack(">64Q", block)
    assert words[0] == 3 * 512 and words[63] == 3 * 512 + 504
    assert COUNTER.block(3) != COUNTER.block(4)


def test_random_pattern_depends_on_seed_salt_and_lba_only() -> None:
    first = RANDOM.block(7, seed=1, salt=2)
    assert RANDOM.block(7, seed=1, salt=2) == first
    assert len({first, RANDOM.block(8, seed=1, salt=2), RANDOM.block(7, seed=2, salt=2),
                RANDOM.block(7, seed=1, salt=3)}) == 4


def test_byte_pattern_and_names() -> None:
    assert BYTE_A5.blocks(0, 2) == b"\xa5" * 1024
    assert [str(p) for p in (BYTE_A5, RANDOM, COUNTER)] == ["0xA5", "random", "counter"]
    with pytest.raises(ValueError, match="0x00..0xFF"):
        Pattern(PatternKind.BYTE, 0x100)
