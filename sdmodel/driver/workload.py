"""The workload language of the CLI and the lessons, and its runner.

    init; read 0 8; write 100 4 pattern=0xA5; erase 200 16; read 100 4

Statements are separated by ``;`` or newlines; ``#`` starts a comment that runs to the end
of the line. Numbers are decimal or ``0x`` hex. Actions:

- ``init``: initialise the card (reference §8);
- ``read LBA COUNT``: read blocks; blocks this workload wrote or erased are checked;
- ``write LBA COUNT [pattern=0xNN|random|counter]``: write blocks (default ``counter``:
  every 8-byte word holds its own byte address, so each block depends on its LBA);
- ``erase LBA COUNT``: CMD32/CMD33/CMD38;
- ``wait MS``: the host idles MS milliseconds of simulated time.

``parse_workload`` raises WorkloadError naming the statement; ``run_workload`` records the
errors of each step (bus errors, out-of-range requests, mismatches) and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver.errors import DriverError
from sdmodel.driver.patterns import COUNTER, Pattern, PatternKind
from sdmodel.errors import WorkloadError

if TYPE_CHECKING:
    from sdmodel.driver.card_info import CardInfo
    from sdmodel.driver.host import HostDriver

__all__ = [
    "Step",
    "Init",
    "Read",
    "Write",
    "Erase",
    "Wait",
    "StepResult",
    "WorkloadResult",
    "parse_workload",
    "run_workload",
    "CHUNK_BLOCKS",
]

CHUNK_BLOCKS = 2048  # blocks per driver call while running a step (bounds memory: 1 MiB)
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, kw_only=True)
class Step:
    number: int  # 1-based statement number (empty statements are not counted)
    text: str  # the statement as written
    line: int  # line of the workload text it starts on

    @property
    def action(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True, kw_only=True)
class Init(Step):
    pass


@dataclass(frozen=True, kw_only=True)
class Read(Step):
    lba: int
    count: int


@dataclass(frozen=True, kw_only=True)
class Write(Step):
    lba: int
    count: int
    pattern: Pattern = COUNTER


@dataclass(frozen=True, kw_only=True)
class Erase(Step):
    lba: int
    count: int


@dataclass(frozen=True, kw_only=True)
class Wait(Step):
    ms: int


# --------------------------------------------------------------------------- grammar


@dataclass(frozen=True)
class _Action:
    step: type[Step]
    args: tuple[str, ...] = ()  # positional arguments, upper-case as in the usage text
    options: tuple[str, ...] = ()  # name=value options

    def usage(self, name: str) -> str:
        opts = " ".join(f"[{o}=...]" for o in self.options)
        return " ".join(filter(None, (name, *self.args, opts)))


_ACTIONS: dict[str, _Action] = {
    "init": _Action(Init),
    "read": _Action(Read, ("LBA", "COUNT")),
    "write": _Action(Write, ("LBA", "COUNT"), ("pattern",)),
    "erase": _Action(Erase, ("LBA", "COUNT")),
    "wait": _Action(Wait, ("MS",)),
}
_MINIMUM = {"LBA": 0, "COUNT": 1, "MS": 0}
_NAMED_PATTERNS = {"random": Pattern(PatternKind.RANDOM), "counter": COUNTER}


def _statements(text: str) -> list[tuple[int, str]]:
    """(line number, statement text) of every non-empty statement, comments removed."""
    found = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0]
        found.extend((line_no, part.strip()) for part in code.split(";") if part.strip())
    return found


def _number(token: str, what: str) -> int:
    if not _NUMBER.fullmatch(token):
        raise ValueError(f'{what} "{token}" is not a number (write it in decimal or as 0x hex)')
    value = int(token, 0)
    if value < _MINIMUM[what]:
        raise ValueError(f"{what} must be at least {_MINIMUM[what]}, not {value}")
    return value


def _pattern(token: str) -> Pattern:
    if token.lower() in _NAMED_PATTERNS:
        return _NAMED_PATTERNS[token.lower()]
    if not _NUMBER.fullmatch(token) or int(token, 0) > 0xFF:
        raise ValueError(f'pattern "{token}" must be a byte 0x00..0xFF, random or counter')
    return Pattern(PatternKind.BYTE, int(token, 0))


def _parse_statement(number: int, line: int, text: str) -> Step:
    name, *words = text.split()
    action = _ACTIONS.get(name.lower())
    if action is None:
        raise ValueError(f'unknown action "{name}" (expected {", ".join(_ACTIONS)})')
    positional = [w for w in words if "=" not in w]
    options = [w for w in words if "=" in w]
    if len(positional) != len(action.args):
        raise ValueError(
            f"{name.lower()} takes {len(action.args)} number(s), got {len(positional)}; "
            f"usage: {action.usage(name.lower())}"
        )
    values: dict[str, object] = {
        arg.lower(): _number(word, arg) for arg, word in zip(action.args, positional, strict=True)
    }
    for option in options:
        key, _, value = option.partition("=")
        if key.lower() not in action.options:
            allowed = ", ".join(action.options) or "none"
            raise ValueError(f'unknown option "{key}" for {name.lower()} (allowed: {allowed})')
        if key.lower() in values:
            raise ValueError(f'option "{key}" given twice')
        values[key.lower()] = _pattern(value)
    return action.step(number=number, text=text, line=line, **values)


def parse_workload(text: str) -> list[Step]:
    """The steps of a workload text; WorkloadError names the statement that is wrong."""
    steps = []
    for number, (line, statement) in enumerate(_statements(text), start=1):
        try:
            steps.append(_parse_statement(number, line, statement))
        except ValueError as error:
            raise WorkloadError(f'workload: statement {number} "{statement}": {error}') from None
    return steps


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class StepResult:
    step: Step
    blocks: int = 0  # blocks moved (read, written or erased)
    bytes: int = 0
    errors: tuple[str, ...] = ()
    mismatches: tuple[int, ...] = ()  # LBAs whose data differed from what was written
    start_ps: int = 0  # simulated time
    end_ps: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class WorkloadResult:
    steps: tuple[StepResult, ...]
    card: CardInfo | None = None

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.steps)

    @property
    def errors(self) -> list[str]:
        return [f"statement {r.step.number}: {e}" for r in self.steps for e in r.errors]


@dataclass
class _Expected:
    """What the blocks written or erased by this run must read back as (newest wins)."""

    seed: int
    ranges: list[tuple[int, int, Pattern | None, int]] = field(default_factory=list)

    def record(self, lba: int, count: int, pattern: Pattern | None, salt: int) -> None:
        """``pattern`` None: the content is unknown (the step failed part way)."""
        self.ranges.append((lba, lba + count, pattern, salt))

    def block(self, lba: int) -> bytes | None:
        for first, end, pattern, salt in reversed(self.ranges):
            if first <= lba < end:
                return None if pattern is None else pattern.block(lba, seed=self.seed, salt=salt)
        return None


def _chunks(lba: int, count: int) -> list[tuple[int, int]]:
    return [(first, min(CHUNK_BLOCKS, lba + count - first))
            for first in range(lba, lba + count, CHUNK_BLOCKS)]


class _Runner:
    def __init__(self, driver: HostDriver, seed: int) -> None:
        self.driver = driver
        self.seed = seed
        self.expected = _Expected(seed)

    async def run(self, step: Step) -> StepResult:
        start = self.driver.now
        try:
            self._check_range(step)
            blocks, mismatches = await self._execute(step)
        except (DriverError, WorkloadError) as error:
            return StepResult(step, errors=(str(error),), start_ps=start, end_ps=self.driver.now)
        errors = ()
        if mismatches:
            shown = ", ".join(str(lba) for lba in mismatches[:8])
            more = ", ..." if len(mismatches) > 8 else ""
            errors = (f"{len(mismatches)} of {blocks} blocks differ from what this workload "
                      f"wrote (LBA {shown}{more})",)
        return StepResult(step, blocks, blocks * BLOCK_SIZE, errors, tuple(mismatches),
                          start, self.driver.now)

    def _check_range(self, step: Step) -> None:
        """Requests past the card's end are refused here, before any bus traffic."""
        card = self.driver.card
        if card is None or not isinstance(step, Read | Write | Erase):
            return
        if step.lba + step.count > card.blocks:
            raise WorkloadError(
                f"blocks {step.lba}..{step.lba + step.count - 1} are beyond the end of the "
                f"card ({card.blocks} blocks, last LBA {card.blocks - 1})"
            )

    async def _execute(self, step: Step) -> tuple[int, list[int]]:
        match step:
            case Init():
                await self.driver.init()
                return 0, []
            case Read():
                return step.count, await self._read(step)
            case Write():
                await self._write(step)
                return step.count, []
            case Erase():
                await self._erase(step)
                return step.count, []
            case Wait():
                await self.driver.wait(step.ms)
                return 0, []
        raise AssertionError(f"no runner for {step!r}")

    async def _read(self, step: Read) -> list[int]:
        mismatches = []
        for lba, count in _chunks(step.lba, step.count):
            data = await self.driver.read(lba, count)
            for i in range(count):
                expected = self.expected.block(lba + i)
                if expected is not None and data[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE] != expected:
                    mismatches.append(lba + i)
        return mismatches

    async def _write(self, step: Write) -> None:
        self.expected.record(step.lba, step.count, None, step.number)
        for lba, count in _chunks(step.lba, step.count):
            await self.driver.write(lba, step.pattern.blocks(lba, count, seed=self.seed,
                                                             salt=step.number))
        self.expected.record(step.lba, step.count, step.pattern, step.number)

    async def _erase(self, step: Erase) -> None:
        self.expected.record(step.lba, step.count, None, step.number)
        await self.driver.erase(step.lba, step.count)
        card = self.driver.card
        assert card is not None  # erase succeeded, so init ran
        erased = Pattern(PatternKind.BYTE, card.erased_byte)
        self.expected.record(step.lba, step.count, erased, step.number)


async def run_workload(
    driver: HostDriver,
    steps: Sequence[Step],
    *,
    seed: int = 0,
    on_step: Callable[[StepResult], None] | None = None,
) -> WorkloadResult:
    """Run ``steps`` in order; the same steps and seed write the same bytes. A failing
    step records its error and the run goes on (``WorkloadResult.ok`` tells)."""
    runner = _Runner(driver, seed)
    results = []
    for step in steps:
        result = await runner.run(step)
        results.append(result)
        if on_step is not None:
            on_step(result)
    return WorkloadResult(tuple(results), driver.card)
