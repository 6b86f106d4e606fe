"""The slot side of the controller: card detect, write-protect pin, SD bus power and the
SD clock (HCS 2.2.9, 2.2.10, 2.2.11, 2.2.14; reference B.2, B.3 rule 13).

- Card detect: the pin, or the Host Control test level when Card Detect Signal Selection
  is set; a change raises Card Insertion / Card Removal. Removal switches bus power and the
  SD clock off (QEMU).
- Bus power stays off without a card or for a voltage other than 3.3 V (QEMU).
- The SD clock runs with Internal Clock Enable and SD Clock Enable; SDCLK = base / 2N.
  Internal Clock Stable follows Internal Clock Enable at once (QEMU).
- When bus power is on and SDCLK runs for the first time since, the card powers up and
  gets its 74 initial clocks (§6.4).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from sdmodel.sdbus import SdBus
from sdmodel.sdhci.flags import (
    ClockControl,
    HostControl,
    NormalInt,
    PowerControl,
    PresentState,
    sd_clock_hz,
)

__all__ = ["Slot", "POWER_UP_CLOCKS"]

POWER_UP_CLOCKS = 74
_VOLTAGE = 0b111 << 1  # Power Control 3:1, SD bus voltage select
_DAT_LEVELS = (PresentState.DAT0_LEVEL | PresentState.DAT1_LEVEL | PresentState.DAT2_LEVEL
               | PresentState.DAT3_LEVEL)


class Slot:
    def __init__(self, bus: SdBus, regs: MutableMapping[str, int],
                 signal: Callable[[int], None], base_clock_hz: int) -> None:
        self.bus = bus
        self.regs = regs  # the controller's register values (shared)
        self.signal = signal
        self.base_clock_hz = base_clock_hz
        self.card_in = True  # a card sits in the slot (the card-detect pin)
        self.detected = True  # card detect as the controller reports it
        self.powered = False
        self._needs_power_up = False
        bus.card.power_off()  # Power Control resets to 0: no bus power yet

    # --- card detect ------------------------------------------------------------------------

    def insert(self) -> None:
        if self.card_in:
            return
        self.card_in = True
        if self.powered:
            self._needs_power_up = True
            self._maybe_power_up()
        self.update_detect()

    def remove(self) -> None:
        if not self.card_in:
            return
        self.card_in = False
        self.bus.card.power_off()
        self.update_detect()

    def detect_level(self) -> bool:
        host = self.regs["HOST_CONTROL"]
        if host & HostControl.CD_SIGNAL_SELECT:
            return bool(host & HostControl.CD_TEST_LEVEL)
        return self.card_in

    def update_detect(self) -> None:
        level = self.detect_level()
        if level == self.detected:
            return
        self.detected = level
        if level:
            self.signal(NormalInt.CARD_INSERT)
            return
        self.regs["POWER_CONTROL"] &= ~PowerControl.ON
        self.regs["CLOCK_CONTROL"] &= ~ClockControl.CARD_EN
        self._set_power(False)
        self.signal(NormalInt.CARD_REMOVE)

    def write_protected(self) -> bool:
        """The write-protect tab: the card's switch, or a read-only image."""
        card = self.bus.card
        return card.options.write_protect or card.storage.read_only

    def present_bits(self) -> int:
        """The slot's bits of Present State: card detect, WP pin, DAT and CMD levels."""
        flags = (
            (PresentState.CARD_INSERTED, self.detected),
            (PresentState.CARD_STABLE, True),
            (PresentState.CARD_DETECT, self.card_in),
            (PresentState.WRITE_PROTECT, not (self.card_in and self.write_protected())),
            (_DAT_LEVELS, True),
            (PresentState.CMD_LEVEL, True),
        )
        bits = sum(int(flag) for flag, on in flags if on)
        if self.card_in and self.powered and self.bus.dat0_busy:
            bits &= ~PresentState.DAT0_LEVEL  # the card holds DAT0 low while busy
        return bits

    # --- power and clock ----------------------------------------------------------------------

    @property
    def clock_running(self) -> bool:
        on = ClockControl.INT_EN | ClockControl.CARD_EN
        return self.regs["CLOCK_CONTROL"] & on == on

    def clock_control(self) -> int:
        value = self.regs["CLOCK_CONTROL"]
        if value & ClockControl.INT_EN:
            value |= ClockControl.INT_STABLE
        return value

    def power_written(self) -> None:
        power = self.regs["POWER_CONTROL"]
        if power & _VOLTAGE != PowerControl.VDD_33 or not self.detected:
            power &= ~PowerControl.ON  # only 3.3 V is offered (Capabilities bit 24)
        self.regs["POWER_CONTROL"] = power
        self._set_power(bool(power & PowerControl.ON))

    def clock_written(self) -> None:
        if self.clock_running:
            self.bus.clock.set_frequency(sd_clock_hz(self.regs["CLOCK_CONTROL"],
                                                     self.base_clock_hz))
            self._maybe_power_up()

    def host_control_written(self) -> None:
        self.bus.host_width = 4 if self.regs["HOST_CONTROL"] & HostControl.BUS_4BIT else 1
        self.update_detect()

    def reset_all(self) -> None:
        """Software Reset ALL: bus power off, 1-bit bus; card detect re-read, no event."""
        self.bus.host_width = 1
        self._set_power(False)
        self.detected = self.detect_level()

    def _set_power(self, on: bool) -> None:
        if on == self.powered:
            return
        self.powered = on
        self._needs_power_up = on
        if on:
            self._maybe_power_up()
        else:
            self.bus.card.power_off()

    def _maybe_power_up(self) -> None:
        if self._needs_power_up and self.clock_running and self.card_in:
            self._needs_power_up = False
            self.bus.power_up(clocks=POWER_UP_CLOCKS)
