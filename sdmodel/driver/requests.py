"""Block I/O on an initialised card: read, write and erase one request at a time, the
CMD13 polling Linux's mmc_blk does after writes, and recovery after a data error.

Multi-block transfers use CMD23 (SET_BLOCK_COUNT) when the SCR says the card supports it,
otherwise Auto CMD12 (reference §9, B.3 rule 12). Addresses are bytes on SDSC and blocks
on SDHC/SDXC (§4.3.14).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver.card_info import CardInfo
from sdmodel.driver.errors import CardRemovedError, CardStatusError, DriverError
from sdmodel.driver.issue import PS_PER_S, Issuer
from sdmodel.driver.slot import BusError, Completion, Transfer
from sdmodel.registers import CARD_STATUS, CardStatus, current_state
from sdmodel.sdhci.registers import SoftwareReset
from sdmodel.states import CardState

__all__ = [
    "BlockIO",
    "MAX_REQUEST_BLOCKS",
    "READ_TIMEOUT_S",
    "WRITE_TIMEOUT_S",
    "R1_REQUEST_ERRORS",
    "R1_ERASE_ERRORS",
    "erase_timeout_s",
]

MAX_REQUEST_BLOCKS = 1024  # Linux sdhci max_req_size 512 KiB
READ_TIMEOUT_S = 0.1  # Linux mmc_set_data_timeout for SD reads (reference Part C)
WRITE_TIMEOUT_S = 3.0  # ... and for SD writes
# Card-status bits that fail a block request (Linux mmc_blk CMD_ERRORS, §4.10.1).
R1_REQUEST_ERRORS = int(CardStatus.OUT_OF_RANGE | CardStatus.ADDRESS_ERROR
                        | CardStatus.BLOCK_LEN_ERROR | CardStatus.WP_VIOLATION
                        | CardStatus.CC_ERROR | CardStatus.ERROR)
R1_ERASE_ERRORS = R1_REQUEST_ERRORS | int(CardStatus.ERASE_SEQ_ERROR | CardStatus.ERASE_PARAM)
_STATE = CARD_STATUS.field("CURRENT_STATE")
_BUSY_POLL_FIRST_S = 32e-6  # Linux __mmc_poll_for_busy: sleep 32 us, doubling...
_BUSY_POLL_MAX_S = 32.768e-3  # ... up to 32 ms between CMD13s
_STOPPABLE = (CardState.DATA, CardState.RCV)  # CMD12 is legal only there (§4.8)


def _check_stop(done: Completion) -> None:
    """Errors found while executing (type X, §4.10.1) come back in the Auto CMD12
    response and are cleared by it: CMD13 would no longer see them (Linux mmc_blk checks
    the stop command's status)."""
    status = done.auto_response
    if status is not None and status & R1_REQUEST_ERRORS:
        raise CardStatusError("CMD12 STOP_TRANSMISSION (auto)", status, R1_REQUEST_ERRORS)


def erase_timeout_s(blocks: int) -> float:
    """250 ms per write block, at least 1 s (Linux ``mmc_sd_erase_timeout`` when the SD
    Status gives no ERASE_TIMEOUT; reference §10)."""
    return max(1.0, 0.25 * blocks)


@dataclass
class BlockIO:
    issuer: Issuer
    card: CardInfo
    log: Callable[[str], None]

    @property
    def _rca_arg(self) -> int:
        return self.card.rca << 16

    # --- requests --------------------------------------------------------------------------

    async def read(self, lba: int, count: int) -> bytes:
        """Blocks ``lba``..``lba + count - 1`` (``count`` <= MAX_REQUEST_BLOCKS)."""
        transfer = Transfer(read=True, blocks=count, auto_cmd12=count > 1 and not self.card.cmd23)
        index = 17 if count == 1 else 18
        if count > 1 and self.card.cmd23:
            await self.issuer.cmd(23, count, status_errors=R1_REQUEST_ERRORS)
        done = await self.issuer.cmd(index, self.card.address(lba), transfer=transfer,
                                     timeout_s=READ_TIMEOUT_S, status_errors=R1_REQUEST_ERRORS)
        _check_stop(done)
        return done.data

    async def write(self, lba: int, data: bytes) -> None:
        """``data`` (whole blocks) to ``lba`` on; then CMD13 until the card is back in tran."""
        count = len(data) // BLOCK_SIZE
        transfer = Transfer(read=False, blocks=count, data=data,
                            auto_cmd12=count > 1 and not self.card.cmd23)
        index = 24 if count == 1 else 25
        if count > 1 and self.card.cmd23:
            await self.issuer.cmd(23, count, status_errors=R1_REQUEST_ERRORS)
        done = await self.issuer.cmd(index, self.card.address(lba), transfer=transfer,
                                     timeout_s=WRITE_TIMEOUT_S, status_errors=R1_REQUEST_ERRORS)
        _check_stop(done)
        await self.wait_for_tran(WRITE_TIMEOUT_S, R1_REQUEST_ERRORS)

    async def erase(self, lba: int, count: int) -> None:
        """CMD32 first, CMD33 last block, CMD38 (R1b) and CMD13 until tran (§4.3.5)."""
        await self.issuer.cmd(32, self.card.address(lba), status_errors=R1_ERASE_ERRORS)
        await self.issuer.cmd(33, self.card.address(lba + count - 1),
                              status_errors=R1_ERASE_ERRORS)
        timeout = erase_timeout_s(count)
        await self.issuer.cmd(38, 0, timeout_s=timeout, status_errors=R1_ERASE_ERRORS)
        await self.wait_for_tran(timeout, R1_ERASE_ERRORS)

    # --- card state --------------------------------------------------------------------------

    async def status(self) -> int:
        return (await self.issuer.cmd(13, self._rca_arg)).response

    async def wait_for_tran(self, timeout_s: float, errors: int = 0) -> int:
        """CMD13 until READY_FOR_DATA and state tran (Linux ``mmc_blk_busy_cb``), with the
        growing pause of ``__mmc_poll_for_busy`` between polls; the last status."""
        clock = self.issuer.slot.controller.bus.clock
        deadline = clock.now + round(timeout_s * PS_PER_S)
        pause = _BUSY_POLL_FIRST_S
        seen = 0
        while True:
            status = await self.status()
            seen |= status
            if seen & errors:
                raise CardStatusError("CMD13 SEND_STATUS", seen, errors)
            if status & CardStatus.READY_FOR_DATA and _STATE.get(status) == CardState.TRAN:
                return status
            if clock.now >= deadline:
                state = current_state(status).label
                raise DriverError(f"CMD13 SEND_STATUS: card still in {state} after "
                                  f"{timeout_s:g} s (status 0x{status:08X})")
            await self.issuer.idle(pause, "CMD13 busy poll interval")
            pause = min(2 * pause, _BUSY_POLL_MAX_S)

    async def recover(self, error: Exception) -> None:
        """After a failed request: reset CMD and DAT (Linux ``sdhci_reset_for(REQUEST_
        ERROR)``), send CMD12 if the card is still sending or receiving, and wait until
        it is back in tran (Linux ``mmc_blk_fix_state``)."""
        slot = self.issuer.slot
        await slot.reset(SoftwareReset.CMD)
        await slot.reset(SoftwareReset.DATA)
        try:
            state = current_state(await self.status())
            if state in _STOPPABLE:
                self.log(f"recovery: card in {state.label}, CMD12 to stop it")
                await self.issuer.cmd(12, 0, timeout_s=WRITE_TIMEOUT_S)
            if state is not CardState.TRAN:
                await self.wait_for_tran(WRITE_TIMEOUT_S)
        except CardRemovedError:
            raise
        except (BusError, DriverError) as failed:
            raise DriverError(f"{error}; recovery failed: {failed}") from None
