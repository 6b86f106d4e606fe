"""The command layer above the slot (Linux mmc core ``mmc_wait_for_cmd`` and
``mmc_wait_for_app_cmd``): retries after command-line errors, the CMD55 prefix of
application commands, and the host's own idle time.

Only commands without a data phase are retried here. After a CMD-line error the CMD
circuit is reset (HCS "Error Interrupt Recovery": error bits 3:0 -> reset CMD; an R1b
command also occupied DAT, so DAT is reset too). Errors of data commands go up to the
request layer, which knows how to bring the card back to tran first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sdmodel.commands import Resp, lookup
from sdmodel.driver.errors import DriverError
from sdmodel.driver.slot import BusError, Completion, Slot, Transfer
from sdmodel.registers import CardStatus
from sdmodel.sdhci.registers import SoftwareReset

__all__ = ["Issuer", "PS_PER_S"]

PS_PER_S = 1_000_000_000_000


class Issuer:
    def __init__(self, slot: Slot, *, retries: int, log: Callable[[str], None]) -> None:
        self.slot = slot
        self.retries = retries
        self.rca = 0  # 0 until CMD3 (CMD55 in idle carries RCA 0)
        self._log = log
        self.retried = 0  # command retries so far (for the request's record)

    async def cmd(self, index: int, arg: int = 0, *, transfer: Transfer | None = None,
                  timeout_s: float = 0.1, retries: int | None = None,
                  status_errors: int = 0) -> Completion:
        """One command; after a CMD-line error, reset and retry (no data phase only)."""
        return await self._retrying(
            lambda: self._once(index, arg, transfer=transfer, timeout_s=timeout_s,
                               status_errors=status_errors),
            retries if transfer is None else 0,
        )

    async def acmd(self, index: int, arg: int = 0, *, transfer: Transfer | None = None,
                   timeout_s: float = 0.1, retries: int | None = None,
                   status_errors: int = 0) -> Completion:
        """CMD55 with the RCA, then application command ``index``; retried as a pair."""

        async def pair() -> Completion:
            prefix = await self._once(55, self.rca << 16)
            if not prefix.response & CardStatus.APP_CMD:
                raise DriverError(f"CMD55 APP_CMD: the card did not take it (status "
                                  f"0x{prefix.response:08X}, APP_CMD clear)")
            return await self._once(index, arg, app=True, transfer=transfer,
                                    timeout_s=timeout_s, status_errors=status_errors)

        return await self._retrying(pair, retries if transfer is None else 0)

    async def idle(self, seconds: float, reason: str = "host wait") -> None:
        """Let ``seconds`` of simulated time pass on an idle bus (Linux ``mmc_delay``):
        while the card is busy programming, storage runs for the matching wall time
        (``time_scale``) or until it is done; then the bus shows idle clocks up to the
        target. Simulated time follows wall time only while storage is pending, so with
        nothing in flight no wall time is owed (a tiny time scale cannot stall a poll)."""
        bus = self.slot.controller.bus
        clock = bus.clock
        target = clock.now + round(seconds * PS_PER_S)
        programming = bus.card.busy_future
        if programming is not None:
            await clock.wait(programming, deadline=target)  # never cancels the work
        else:
            await asyncio.sleep(0)  # a turn of the loop, as any wait gives
        if clock.now < target:
            bus.idle_clocks(-(-(target - clock.now) // clock.period), reason)

    async def _retrying(self, attempt: Callable[[], Awaitable[Completion]],
                        retries: int | None) -> Completion:
        budget = self.retries if retries is None else retries
        tried = 0
        while True:
            try:
                return await attempt()
            except BusError as error:
                if error.on_data or tried == budget:
                    raise
                tried += 1
                self.retried += 1
                self._log(f"{error}; retry {tried} of {budget}")

    async def _once(self, index: int, arg: int, *, app: bool = False,
                    transfer: Transfer | None = None, timeout_s: float = 0.1,
                    status_errors: int = 0) -> Completion:
        try:
            return await self.slot.command(index, arg, app=app, transfer=transfer,
                                           timeout_s=timeout_s, status_errors=status_errors)
        except BusError as error:
            if not error.on_data:
                cmd = lookup(index, app)
                occupies_dat = transfer is not None or (cmd is not None and cmd.resp is Resp.R1B)
                await self.slot.reset(SoftwareReset.CMD)
                if occupies_dat:
                    await self.slot.reset(SoftwareReset.DATA)
            raise
