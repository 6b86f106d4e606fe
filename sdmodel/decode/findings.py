"""Protocol findings the decoder reports, and the card-state tracking behind them.

Each finding kind is declared once (code, severity, spec section, one-line summary);
the decoders fill in the specifics in the message. Only clear-cut violations are
findings: a bad CRC or end bit, a response missing or outside N_CR, a command the card
cannot accept in the state it is known to be in, a command while DAT0 signals busy, a
misplaced SPI data response, an error bit the card itself reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from sdmodel.commands import APP_COMMANDS, COMMANDS, Command
from sdmodel.registers import OCR_BUSY, CardStatus
from sdmodel.states import CardState
from sdmodel.tokens import FindingToken, Line

__all__ = ["FindingKind", "FINDINGS", "make_finding", "CardTracker", "allowed_while_busy"]


@dataclass(frozen=True)
class FindingKind:
    code: str
    severity: str  # "error" | "warning" | "info"
    section: str
    summary: str


_KINDS = (
    # CMD line, SD mode (§4.7.2 command format, §4.9 responses, §4.5 CRC)
    FindingKind("framing", "error", "§4.7.2",
                "bits on CMD that start like a token but are not one (end bit or CRC wrong)"),
    FindingKind("cmd_crc", "error", "§4.5", "command CRC7 wrong: the card ignores the command"),
    FindingKind("rsp_crc", "error", "§4.5", "response CRC7 wrong"),
    FindingKind("rsp_end_bit", "error", "§4.9", "response end bit is 0"),
    FindingKind("rsp_index", "warning", "§4.9.1",
                "response index field differs from the command index"),
    FindingKind("r3_framing", "warning", "§4.9.4", "R3 check bits or CRC field not all ones"),
    FindingKind("no_response", "error", "§4.12.1", "no response within N_CR = 64 clocks"),
    FindingKind("late_response", "error", "§4.12.1", "response after more than 64 clocks (N_CR)"),
    FindingKind("early_response", "warning", "§4.12.1",
                "response sooner than 2 clocks after the command (N_CR)"),
    FindingKind("unexpected_response", "warning", "§4.9",
                "a response no command asked for"),
    FindingKind("illegal_command", "error", "§4.8",
                "command not accepted in the state the card is in"),
    FindingKind("acmd_without_cmd55", "error", "§4.3.9",
                "application command index sent without CMD55 in front"),
    FindingKind("undefined_command", "info", "§4.7.4",
                "command index not defined for SD memory cards"),
    FindingKind("cmd_while_busy", "error", "§4.3.4",
                "command while the card signals busy on DAT0"),
    FindingKind("card_error", "warning", "§4.10.1", "the card reports an error in its status"),
    # DAT lines, SD mode (§3.6.1 data packets, §4.3.4 CRC status)
    FindingKind("data_crc", "error", "§4.5", "data block CRC16 wrong"),
    FindingKind("data_end_bit", "error", "§3.6.1", "data block end bit is 0"),
    FindingKind("crc_status", "error", "§4.3.4", "the card did not accept a written block"),
    FindingKind("crc_status_missing", "error", "§4.3.4",
                "no CRC status token after a written block"),
    FindingKind("unexpected_data", "warning", "§4.3.3", "data block without a data command"),
    FindingKind("unexpected_busy", "warning", "§4.3.4", "DAT0 low with no reason to be busy"),
    FindingKind("missing_lines", "warning", "§3.6.1",
                "4-bit data but DAT1-DAT3 are not in the capture"),
    FindingKind("block_aborted", "info", "§4.3.3", "data block cut short by CMD12"),
    FindingKind("truncated", "info", "", "the capture ends inside a token"),
    # Simulation only: what the host controller and the backing store report
    FindingKind("data_timeout", "error", "§4.6.2",
                "the host's data timeout expired before the card sent data or released busy"),
    FindingKind("storage_fault", "error", "design.md",
                "the backing store failed an operation (EIO, disk full, short read, ...)"),
    # SPI mode (§7.2, §7.3)
    FindingKind("spi_cmd_cut", "error", "§7.2", "CS# went high inside a command"),
    FindingKind("spi_no_data_token", "error", "§7.3.3",
                "no start-block token before the host moved on"),
    FindingKind("spi_data_error_token", "error", "§7.3.3",
                "the card sent a data error token instead of the block"),
    FindingKind("spi_unexpected_byte", "warning", "§7.3.3",
                "an unexpected byte while waiting for a data token"),
    FindingKind("spi_data_response_misplaced", "error", "§7.3.3.1",
                "data response not in the byte right after the 2 CRC bytes"),
    FindingKind("spi_no_data_response", "error", "§7.3.3.1",
                "no data response after a written block"),
)
FINDINGS = MappingProxyType({k.code: k for k in _KINDS})


def make_finding(
    code: str,
    start: int,
    end: int,
    message: str,
    *,
    period: int = 0,
    on: Line = Line.CMD,
    cls: type[FindingToken] = FindingToken,
) -> FindingToken:
    """A FindingToken of the declared kind ``code`` (severity from the table)."""
    kind = FINDINGS[code]
    return cls(start, max(end, start), period, code=code, message=message,
               severity=kind.severity, finding_line=on)


def allowed_while_busy(cmd: Command) -> bool:
    """Commands a card takes in prg (busy): CMD13, CMD0, CMD55, CMD7 (deselect), CMD15,
    and CMD12 during a multiple-block write (§4.8 matrix, §4.3.4)."""
    return (CardState.PRG in cmd.transitions or CardState.PRG in cmd.other_rca
            or (cmd.index == 12 and not cmd.app))


_STATE_SHIFT = 9  # CURRENT_STATE, card status 12:9 (§4.10.1)


def _state_of(status: int) -> CardState | None:
    try:
        return CardState((status >> _STATE_SHIFT) & 0xF)
    except ValueError:
        return None


class CardTracker:
    """The card state as far as the bus shows it (§4.8), for clear-cut legality checks.

    The state becomes known from CMD0, from CURRENT_STATE in R1/R1b/R6 (the state in which
    the card received the command) and from the OCR busy bit of R3; it follows the command
    table's transitions and is forgotten whenever the bus cannot show what happened.
    """

    def __init__(self, sees_data: bool) -> None:
        self.state: CardState | None = None
        self.rca: int | None = None
        self.sees_data = sees_data  # DAT lines decoded: data/busy ends are visible

    def check(self, cmd: Command | None, index: int, app: bool) -> tuple[str, str] | None:
        """(code, message) if the command is clearly illegal here, else None."""
        if cmd is None:
            if not app and index in APP_COMMANDS and index not in COMMANDS:
                return ("acmd_without_cmd55",
                        f"CMD{index} is only defined as ACMD{index}: CMD55 must come first")
            return ("undefined_command", f"CMD{index} is not an SD memory card command")
        if not cmd.sd:
            return ("undefined_command", f"{cmd.label} {cmd.name} exists in SPI mode only")
        state = self.state
        if state is None or state in cmd.transitions or state in cmd.other_rca:
            return None
        return ("illegal_command",
                f"{cmd.label} {cmd.name} is not accepted in state {state.label} (§4.8)")

    def command(self, cmd: Command | None, arg: int) -> None:
        """A command the card received (valid CRC)."""
        if cmd is None:
            return
        if cmd.index == 0 and not cmd.app:
            self.state = CardState.IDLE
            self.rca = None
            return
        self.state = self._after(cmd, arg, self.state)

    def _after(self, cmd: Command, arg: int, state: CardState | None) -> CardState | None:
        if state is None:
            return None
        if cmd.other_rca and self.rca is not None and (arg >> 16) != self.rca:
            nxt = cmd.other_rca.get(state, state)
        elif cmd.other_rca and self.rca is None:
            return None  # CMD7 to an unknown address: selected or not, the bus tells later
        else:
            nxt = cmd.transitions.get(state, state)
        if nxt in (CardState.DATA, CardState.RCV, CardState.PRG) and not self.sees_data:
            return None
        return nxt

    def status(self, cmd: Command | None, arg: int, status: int) -> None:
        """CURRENT_STATE from the R1/R1b/R6 status of ``cmd``."""
        received = _state_of(status)
        if cmd is None or received is None:
            self.state = None
            return
        if status & CardStatus.ILLEGAL_COMMAND and cmd.index != 55:
            self.state = received
            return
        self.state = self._after(cmd, arg, received)

    def rca_assigned(self, rca: int) -> None:
        self.rca = rca

    def ocr(self, ocr: int) -> None:
        """ACMD41's R3: ready once the busy bit (31) is set (§4.2.3.1)."""
        self.state = CardState.READY if ocr & OCR_BUSY else CardState.IDLE

    def data_done(self) -> None:
        """The last block of a read (or a register read) went by: data -> tran."""
        if self.state is CardState.DATA:
            self.state = CardState.TRAN

    def busy_done(self, more_blocks: bool) -> None:
        """Programming finished: prg -> tran, or back to rcv inside a CMD25."""
        if self.state in (CardState.PRG, CardState.RCV):
            self.state = CardState.RCV if more_blocks else CardState.TRAN

    def forget(self) -> None:
        self.state = None
