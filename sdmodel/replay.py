"""Replay a real capture against the card model: conformance in both directions.

The host's commands from a decoded capture are fed to a simulated card, and each real
response is compared with the model's on the facts the protocol fixes (response type,
CURRENT_STATE, error bits, APP_CMD, the R7 echo, the OCR busy/CCS progression).
Card-specific contents (CID, CSD, RCA, OCR voltage window) are reported, not judged.

Captures are snippets: when the real card answers from a state the model is not in
(e.g. the capture starts with CMD13 in tran), the model is first brought to that state
with real commands and the row says so.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sdmodel import registers as regs
from sdmodel.card import Card, CardOptions, Reply
from sdmodel.commands import DataDir, Resp, SpiResp, lookup
from sdmodel.decode.api import plan_decode
from sdmodel.decode.spi import SpiResponseToken
from sdmodel.registers import CardStatus
from sdmodel.states import CardState
from sdmodel.storage import Storage
from sdmodel.tokens import CommandToken, DataToken, ResponseToken, Token

__all__ = [
    "ReplayRow", "ReplayReport", "Exchange", "exchanges", "replay_exchanges", "replay_capture",
]

S = CardState
# Status bits a real card and the model must agree on (§4.10.1): the error bits that the
# command sequence alone determines, APP_CMD and READY_FOR_DATA. Card-internal errors
# (ECC, CC_ERROR, ERROR) are compared as well: a healthy capture shows none.
_COMPARED_STATUS = regs.ERROR_BITS | CardStatus.APP_CMD | CardStatus.READY_FOR_DATA
_STATE_SHIFT = 9


@dataclass(frozen=True)
class Exchange:
    """One command of the capture and the card's response to it (None: no response)."""

    command: CommandToken
    response: ResponseToken | None
    spi_r1: int | None = None  # SPI mode: the R1 byte the real card sent
    spi_extra: bytes = b""  # SPI mode: bytes after R1 (R2 byte 2, R3/R7 payload)
    write_data: bytes | None = None  # the block the host sent after a write command
    read_data: bytes | None = None  # the first block the card sent after a read command


@dataclass
class ReplayRow:
    t: float
    command: str
    arg: int
    real: str
    model: str
    verdict: str  # "agree", "differ", "reported", "skipped"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "command": self.command,
            "arg": f"0x{self.arg:08X}",
            "real": self.real,
            "model": self.model,
            "verdict": self.verdict,
            "notes": self.notes,
        }


@dataclass
class ReplayReport:
    mode: str
    rows: list[ReplayRow] = field(default_factory=list)

    @property
    def commands(self) -> int:
        return len(self.rows)

    @property
    def compared(self) -> int:
        return sum(1 for r in self.rows if r.verdict in ("agree", "differ"))

    @property
    def agree(self) -> int:
        return sum(1 for r in self.rows if r.verdict == "agree")

    @property
    def agreement(self) -> float:
        return self.agree / self.compared if self.compared else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "commands": self.commands,
            "compared": self.compared,
            "agree": self.agree,
            "agreement": round(self.agreement, 6),
            "rows": [r.to_json() for r in self.rows],
        }


def exchanges(tokens: Iterable[Token]) -> Iterator[Exchange]:
    """Pair each command with the response that follows it (before the next command),
    and a write command with the block the host sent after it."""
    pending: Exchange | None = None
    for token in tokens:
        if isinstance(token, CommandToken):
            if pending is not None:
                yield pending
            pending = Exchange(token, None)
        elif pending is None:
            continue
        elif isinstance(token, SpiResponseToken) and pending.spi_r1 is None:
            raw = token.raw
            pending = replace(pending, spi_r1=raw[0], spi_extra=raw[1:])
        elif isinstance(token, ResponseToken) and not isinstance(token, SpiResponseToken) \
                and pending.response is None:
            pending = replace(pending, response=token)
        elif isinstance(token, DataToken) and token.data is not None:
            if token.to_card and pending.write_data is None:
                pending = replace(pending, write_data=bytes(token.data))
            elif not token.to_card and pending.read_data is None:
                pending = replace(pending, read_data=bytes(token.data))
    if pending is not None:
        yield pending


def replay_capture(
    path: str | Path, *, mode: str = "auto", mapping: str | None = None,
    image: str | Path | None = None,
) -> ReplayReport:
    """Decode ``path`` and replay its commands (CaptureError for a bad capture)."""
    plan = plan_decode(path, mode, mapping)
    spi = plan.mode.value == "spi"
    return replay_exchanges(exchanges(plan.tokens()), mode="spi" if spi else "sd", image=image)


def _status_of(rsp: ResponseToken) -> int | None:
    if rsp.type in ("R1", "R1b"):
        return rsp.value
    if rsp.type == "R6":
        return regs.card_status_from_r6_status(rsp.value & 0xFFFF)
    return None


def _state_name(status: int) -> str:
    code = (status >> _STATE_SHIFT) & 0xF
    try:
        return CardState(code).label
    except ValueError:
        return f"state {code}"


def _describe(resp_type: str, value: int) -> str:
    width = 32 if resp_type == "R2" else 8
    return f"{resp_type} 0x{value:0{width}X}"


class _ModelHost:
    """Drives the model card the way the captured host did, and re-synchronises it."""

    def __init__(self, card: Card) -> None:
        self.card = card

    def send(self, index: int, arg: int) -> Reply:
        return self.card.execute(index, arg)

    def bring_to_spi_tran(self) -> None:
        """SPI-mode initialisation (reference A.6): CMD0, CMD8, ACMD41 until ready."""
        card = self.card
        card.execute(0, 0)
        card.execute(8, 0x1AA)
        for _ in range(card.options.acmd41_busy_polls + 1):
            card.execute(55, 0)
            card.execute(41, 1 << 30)
        if card.state is S.IDLE:  # a v1 card, or SDSC: CMD1 like the XMORE host
            card.execute(1, 0)

    def bring_to(self, state: CardState, rca: int | None) -> None:
        """Reach ``state`` through real commands (init, CMD2, CMD3, CMD7, CMD18...)."""
        card = self.card
        if card.state is state:
            return
        card.execute(0, 0)
        if state is S.IDLE:
            return
        card.execute(8, 0x1AA)
        for _ in range(card.options.acmd41_busy_polls + 1):
            card.execute(55, 0)
            card.execute(41, 0x40FF8000)
        if state is S.READY:
            return
        card.execute(2, 0)
        if state is S.IDENT:
            return
        card.execute(3, 0)
        if rca is not None:
            card.rca = rca
        if state is S.STBY:
            return
        card.execute(7, card.rca << 16)
        if state is S.TRAN:
            return
        if state is S.DATA:
            card.execute(18, 0)
        elif state is S.RCV:
            card.execute(25, 0)


def _expects_response(cmd: CommandToken, mode: str) -> bool:
    command = lookup(cmd.index, cmd.app)
    if mode == "spi":
        return True  # every SPI command gets at least R1 (or the illegal-command R1)
    return command is not None and command.resp is not Resp.NONE


def _expected_state(exchange: Exchange) -> CardState | None:
    """The state the real card was in when it received the command."""
    rsp = exchange.response
    if rsp is not None:
        status = _status_of(rsp)
        if status is not None:
            try:
                return CardState((status >> _STATE_SHIFT) & 0xF)
            except ValueError:
                return None
    cmd = lookup(exchange.command.index, exchange.command.app)
    if cmd is None or rsp is None:
        return None
    legal = [s for s in cmd.transitions if s is not S.INA]
    return legal[0] if len(legal) == 1 else None


def _compare_sd(ex: Exchange, reply: Reply, row: ReplayRow) -> None:
    real = ex.response
    model_type = reply.resp.value if reply.resp is not Resp.NONE else "none"
    row.model = "none" if reply.resp is Resp.NONE else _describe(model_type, reply.value)
    if real is None:
        row.verdict = "agree" if reply.resp is Resp.NONE else "differ"
        if row.verdict == "differ":
            row.notes.append("the real card did not answer; the model did")
        return
    mismatches: list[str] = []
    # R1 and R1b look the same on CMD; busy is a DAT0 matter (§4.9.2).
    if real.type.rstrip("b") != model_type.rstrip("b"):
        mismatches.append(f"response type: real {real.type}, model {model_type}")
    elif real.type in ("R1", "R1b", "R6"):
        rs, ms = _status_of(real), _status_of(
            ResponseToken(0, 0, type=model_type, value=reply.value)
        )
        assert rs is not None and ms is not None
        if (rs >> _STATE_SHIFT) & 0xF != (ms >> _STATE_SHIFT) & 0xF:
            mismatches.append(f"CURRENT_STATE: real {_state_name(rs)}, model {_state_name(ms)}")
        mask = _COMPARED_STATUS if real.type != "R6" else regs.card_status_from_r6_status(0xFFFF)
        mask &= _COMPARED_STATUS
        diff = (rs ^ ms) & mask
        for flag in CardStatus:
            if diff & flag:
                mismatches.append(f"{flag.name}: real {int(bool(rs & flag))}, "
                                  f"model {int(bool(ms & flag))}")
        if real.type == "R6":
            row.notes.append(f"RCA real 0x{real.value >> 16:04X}, model 0x{reply.value >> 16:04X}"
                             " (card-specific, reported)")
    elif real.type == "R7":
        if real.value & 0xFFF != reply.value & 0xFFF:
            mismatches.append(f"R7 echo: real 0x{real.value & 0xFFF:03X}, "
                              f"model 0x{reply.value & 0xFFF:03X}")
    elif real.type == "R3":
        for name, bit in (("busy (power-up done)", 31), ("CCS", 30)):
            r, m = (real.value >> bit) & 1, (reply.value >> bit) & 1
            if bit == 30 and not (real.value >> 31) & 1:
                continue  # CCS is valid only when bit 31 is set (§5.1)
            if r != m:
                mismatches.append(f"OCR {name}: real {r}, model {m}")
        row.notes.append(f"OCR window real 0x{real.value & 0xFFFFFF:06X} (card-specific, reported)")
    elif real.type == "R2":
        row.notes.append("register contents are card-specific: reported, not judged")
        if not real.crc_ok:
            mismatches.append("the real R2 has a bad CRC7")
        row.verdict = "differ" if mismatches else "reported"
        row.notes.extend(mismatches)
        return
    if not real.crc_ok:
        row.notes.append("real response CRC7 is bad")
    row.verdict = "differ" if mismatches else "agree"
    row.notes.extend(mismatches)


def _compare_spi(ex: Exchange, reply: Reply, card: Card, row: ReplayRow) -> None:
    model_bytes = card.spi_response(reply)
    row.model = model_bytes.hex(" ")
    if ex.spi_r1 is None:
        row.verdict = "differ"
        row.notes.append("the real card sent no R1")
        return
    mismatches = []
    if ex.spi_r1 != model_bytes[0]:
        mismatches.append(f"R1: real 0x{ex.spi_r1:02X}, model 0x{model_bytes[0]:02X}")
    cmd = reply.command
    kind = cmd.spi if cmd is not None and not reply.rejected else SpiResp.R1
    if kind is SpiResp.R7 and ex.spi_extra[-2:] != model_bytes[-2:]:
        mismatches.append(
            f"R7 echo: real {ex.spi_extra[-2:].hex()}, model {model_bytes[-2:].hex()}"
        )
    if kind is SpiResp.R3 and len(ex.spi_extra) >= 1:
        r, m = ex.spi_extra[0] & 0xC0, model_bytes[1] & 0xC0
        if r & 0x80 and r != m:
            mismatches.append(f"OCR busy/CCS: real 0x{r:02X}, model 0x{m:02X}")
        row.notes.append(f"OCR real {ex.spi_extra[:4].hex()} (card-specific, reported)")
    row.verdict = "differ" if mismatches else "agree"
    row.notes.extend(mismatches)


def replay_exchanges(
    items: Iterable[Exchange], *, mode: str = "sd", image: str | Path | None = None,
    options: CardOptions | None = None,
) -> ReplayReport:
    """Run the captured host's commands through a model card and compare the answers.

    ``image``: backing image for the model card (default: a temporary 4 GiB sparse
    SDHC image, deleted afterwards; the capture's data contents are not judged)."""
    return asyncio.run(_replay(list(items), mode, image, options))


async def _replay(
    items: list[Exchange], mode: str, image: str | Path | None, options: CardOptions | None
) -> ReplayReport:
    with tempfile.TemporaryDirectory(prefix="sdscope-replay-") as tmp:
        path = Path(image) if image is not None else Path(tmp) / "model.img"
        if image is None:
            with open(path, "wb") as f:
                f.truncate(_model_capacity(items))
        storage = Storage.open(path)
        card = Card(storage, options)
        try:
            if mode == "spi":
                card.spi = True
            return await _run(items, mode, card)
        finally:
            card.power_off()
            storage.close()


def _model_capacity(items: list[Exchange]) -> int:
    """Size the model like the captured card: from its CSD when the capture holds one,
    else SDSC for a capture of a whole v1-style initialisation (CMD0 but no CMD8), and
    SDHC (today's common card) for everything else, snippets included."""
    for ex in items:
        if ex.command.index == 9 and not ex.command.app:
            raw = None
            if ex.response is not None and ex.response.type == "R2":
                raw = ex.response.value
            elif ex.read_data is not None and len(ex.read_data) == 16:
                raw = int.from_bytes(ex.read_data, "big")
            if raw is not None:
                try:
                    return max(regs.csd_capacity(raw), 4 * 1024 * 1024)
                except ValueError:
                    pass
    starts_at_reset = bool(items) and items[0].command.index == 0
    v1_host = starts_at_reset and not any(
        ex.command.index == 8 and not ex.command.app for ex in items
    )
    return 512 * 1024**2 if v1_host else 4 * 1024**3


async def _run(items: list[Exchange], mode: str, card: Card) -> ReplayReport:
    report = ReplayReport(mode)
    host = _ModelHost(card)
    synced = False
    for ex in items:
        cmd = ex.command
        row = ReplayRow(cmd.start / 1e12, cmd.name, cmd.arg, "", "", "skipped")
        if ex.response is not None:
            row.real = _describe(ex.response.type, ex.response.value)
        elif ex.spi_r1 is not None:
            row.real = (bytes([ex.spi_r1]) + ex.spi_extra).hex(" ")
        else:
            row.real = "none"
        report.rows.append(row)
        command = lookup(cmd.index, cmd.app)
        addressed = mode == "sd" and command is not None and command.addressed
        checked = mode == "sd" or cmd.index in (0, 8) or card.spi_crc_on
        if not cmd.crc_ok and checked:
            row.notes.append("command CRC7 bad in the capture: the card ignores it")
            card.execute(cmd.index, cmd.arg, crc_ok=False)
            continue
        if ex is items[-1] and ex.response is None and ex.spi_r1 is None and _expects_response(
            cmd, mode
        ):
            row.notes.append("the capture ends before the response")
            continue
        if mode == "spi" and not synced:
            if ex.spi_r1 is not None and not ex.spi_r1 & 0x01 and card.state is S.IDLE \
                    and cmd.index not in (0, 1, 41, 58):
                host.bring_to_spi_tran()
                row.notes.append("model initialised first (capture starts mid-session)")
            synced = True
        if mode == "sd" and not synced:
            target = _expected_state(ex)
            if target is not None and target is not card.state:
                host.bring_to(target, cmd.arg >> 16 if addressed else None)
                row.notes.append(
                    f"model brought to {target.label} first (capture starts mid-session)"
                )
            if ex.command.app and not card.expect_acmd:
                card.execute(55, card.rca << 16)
            synced = True
        if addressed and card.rca != cmd.arg >> 16 and card.state is not S.IDLE:
            card.rca = cmd.arg >> 16  # follow the real card's RCA (card-specific)
        reply = host.send(cmd.index, cmd.arg)
        if mode == "sd":
            _compare_sd(ex, reply, row)
            if reply.resp is Resp.R6 and ex.response is not None:
                card.rca = ex.response.value >> 16
        else:
            _compare_spi(ex, reply, card, row)
        await _finish_data_phase(card, reply, ex)
    return report


async def _finish_data_phase(card: Card, reply: Reply, ex: Exchange) -> None:
    """Single-block transfers end by themselves on a real bus: let the model's end too
    (multi-block ones wait for the captured CMD12)."""
    if reply.data is DataDir.READ and card.read_phase is not None and card.read_phase.count == 1:
        result = await card.read_block()
        if result.ok:
            card.block_sent()
    elif reply.data is DataDir.WRITE and card.write_phase is not None \
            and card.write_phase.count == 1:
        length = card.write_phase.length
        data = ex.write_data if ex.write_data is not None and len(ex.write_data) == length \
            else bytes(length)
        card.accept_block(data)
        await card.wait_ready()
