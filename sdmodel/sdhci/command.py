"""One command on the CMD line as the controller sees it: send, wait for the response,
check it, and say what goes into the Response register (HCS 2.2.6, 2.2.7; reference B.2
"Command 0x0E", "Response registers", B.3 rules 6-7).

Checks, in the order a controller applies them:
- no response start bit within N_CR max (64 clocks) -> CMD_TIMEOUT;
- a response of the other length (48 vs 136 bits) -> CMD_END_BIT (the end bit is not
  where the host expects it);
- CRC check enabled and the CRC7 wrong -> CMD_CRC: R3 carries all ones instead of a CRC
  (§4.9.3), an R2's own CRC7 is checked over its register bits 127:8;
- index check enabled and the index field differs from the command index -> CMD_INDEX
  (R2/R3 carry 111111).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdmodel.commands import Resp
from sdmodel.registers import register_crc_ok
from sdmodel.sdbus import NCR_MAX, SdBus
from sdmodel.sdhci.flags import AutoCmdError, ErrorInt, RespSelect

__all__ = ["Exchange", "exchange", "auto_cmd_errors"]

R136_BITS = 136


@dataclass(frozen=True)
class Exchange:
    errors: ErrorInt
    # For the Response register: the R48 payload (bits 39:8), or R2 bits 127:8 (120 bits);
    # None when nothing valid was received.
    response: int | None = None
    busy: bool = False  # the card holds DAT0 busy after the response (R1b)


async def exchange(bus: SdBus, index: int, arg: int, resp: RespSelect, *,
                   crc_check: bool, index_check: bool) -> Exchange:
    sent = await bus.command(index, arg)
    if resp is RespSelect.NONE:
        return Exchange(ErrorInt(0))
    token = sent.response
    late = token is not None and token.start - sent.command.end > NCR_MAX * token.period
    if token is None or late:
        # The host waits N_CR max clocks for a start bit, then gives up.
        bus.idle_clocks(NCR_MAX, reason="no response")
        return Exchange(ErrorInt.CMD_TIMEOUT)
    received_long = Resp(token.type).bits == R136_BITS
    if received_long != (resp is RespSelect.R136):
        return Exchange(ErrorInt.CMD_END_BIT)
    errors = ErrorInt(0)
    if crc_check and not (token.crc_ok and Resp(token.type).has_crc
                          and (not received_long or register_crc_ok(token.value))):
        errors |= ErrorInt.CMD_CRC
    if index_check and token.index != index:
        errors |= ErrorInt.CMD_INDEX
    value = token.value >> 8 if received_long else token.value & 0xFFFFFFFF
    return Exchange(errors, value, sent.reply.busy)


# Auto CMD Error Status bit for each command-line error (HCS 2.2.23).
_AUTO_CMD_BITS = {
    ErrorInt.CMD_TIMEOUT: AutoCmdError.TIMEOUT,
    ErrorInt.CMD_CRC: AutoCmdError.CRC,
    ErrorInt.CMD_END_BIT: AutoCmdError.END_BIT,
    ErrorInt.CMD_INDEX: AutoCmdError.INDEX,
}


def auto_cmd_errors(errors: ErrorInt) -> AutoCmdError:
    out = AutoCmdError(0)
    for error, bit in _AUTO_CMD_BITS.items():
        if errors & error:
            out |= bit
    return out
