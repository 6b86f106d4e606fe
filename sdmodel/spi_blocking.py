"""A blocking SPI SD card for real, blocking SPI drivers (Adafruit, elm-chan style).

The asynchronous model (Storage + Card + SpiCard) runs on its own event-loop thread; the
driver's thread calls ``select`` and ``exchange``, each executed on that loop, so storage
work progresses between bytes and a slow image shows up as a long run of 0xFF before a
read token or of 0x00 busy bytes, exactly like a slow card (design.md, Part C).

    with BlockingSpiCard("card.img", acmd41_busy_polls=2) as card:
        card.select(True)
        miso = card.exchange(b"\\xff" * 10)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from sdmodel.card import Card, CardOptions
from sdmodel.spi import POLL_S, SpiCard
from sdmodel.storage import CLOSE_TIMEOUT_S, Storage, StorageOptions

__all__ = ["BlockingSpiCard", "card_options"]

log = logging.getLogger("sdmodel.spi")
T = TypeVar("T")
_CARD_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(CardOptions))


def card_options(**values: Any) -> CardOptions:
    """``CardOptions`` from keyword arguments; an unknown name is a TypeError naming it."""
    unknown = sorted(set(values) - set(_CARD_OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown card option(s) {', '.join(unknown)}; "
                        f"card options are: {', '.join(_CARD_OPTION_NAMES)}")
    return CardOptions(**values)


class BlockingSpiCard:
    """An SD card in SPI mode behind blocking ``select`` / ``exchange`` calls.

    ``storage_options`` open the image; every other keyword is a :class:`CardOptions`
    field. ``poll_s`` bounds how long one byte waits for storage before the card answers
    0xFF / 0x00 for it (a spinning driver then spins slowly instead of burning CPU).
    """

    def __init__(self, image_path: str | os.PathLike[str], *,
                 storage_options: StorageOptions | None = None, poll_s: float = POLL_S,
                 **card_option_values: Any) -> None:
        options = card_options(**card_option_values)
        self.poll_s = poll_s
        self._closed = False
        self.storage = Storage.open(image_path, storage_options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                         name=f"sdscope-spi-card:{self.storage.path.name}")
        self._thread.start()
        try:
            self.card, self.spi = self._call(self._build(options))
        except BaseException:
            self.close()
            raise

    async def _build(self, options: CardOptions) -> tuple[Card, SpiCard]:
        card = Card(self.storage, options)
        return card, SpiCard(card)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.storage.path}: the SPI card is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # --- the SPI bus ---------------------------------------------------------------------

    def select(self, asserted: bool) -> None:
        """Drive CS# (``asserted`` = low)."""
        self._call(self._select(asserted))

    async def _select(self, asserted: bool) -> None:
        self.spi.select(asserted)

    def exchange(self, mosi: bytes | bytearray | memoryview) -> bytes:
        """Send ``mosi``, return the byte the card shifted out for each byte sent."""
        return self._call(self.spi.transfer(bytes(mosi), poll_s=self.poll_s))

    # --- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the image and stop the model thread; waits at most about 1 s for I/O
        stuck in a system call (``Storage.close``). Idempotent."""
        if self._closed:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._closed = True
        try:
            future.result(timeout=CLOSE_TIMEOUT_S + 0.5)
        except TimeoutError:
            log.warning("%s: model thread did not shut down in time", self.storage.path)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=0.5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        spi = getattr(self, "spi", None)
        if spi is not None:
            spi.close()
        self.storage.close()
        await asyncio.sleep(0)  # let the futures the storage just settled reach their tasks
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlockingSpiCard {str(self.storage.path)!r}{' closed' if self._closed else ''}>"
