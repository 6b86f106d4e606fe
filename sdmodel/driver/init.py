"""Card initialisation in Linux's order (reference §8: ``mmc_rescan_try_freq``,
``mmc_attach_sd``, ``mmc_sd_init_card``, ``mmc_sd_setup_card``), without the SDIO/MMC
probes and without UHS-I:

power on, 400 kHz (74 clocks), CMD0, CMD8, ACMD41 inquiry, CMD0, CMD8 again, ACMD41 with
HCS until the card is ready, CMD2, CMD3, CMD9, CMD7, ACMD51 (SCR), ACMD13 (SD Status),
CMD6 query, CMD6 switch to High Speed when both sides can, the clock for the new speed,
ACMD6 to 4-bit when both sides can, CMD16 512 on SDSC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sdmodel.capacity import BLOCK_SIZE
from sdmodel.driver.card_info import CardInfo
from sdmodel.driver.errors import DriverError
from sdmodel.driver.issue import Issuer
from sdmodel.driver.requests import WRITE_TIMEOUT_S
from sdmodel.driver.slot import BusError, Slot, Transfer
from sdmodel.registers import (
    OCR_BUSY,
    OCR_CCS,
    SCR,
    SWITCH_STATUS,
    card_status_from_r6_status,
    csd_capacity,
    current_state,
    decode_csd,
)
from sdmodel.units import format_size

__all__ = [
    "InitOptions",
    "initialise",
    "IDENT_HZ",
    "DEFAULT_SPEED_HZ",
    "HIGH_SPEED_HZ",
    "HOST_OCR_WINDOW",
]

IDENT_HZ = 400_000  # identification clock (§4.2; Linux f_init)
DEFAULT_SPEED_HZ = 25_000_000  # CSD TRAN_SPEED 0x32 (§5.3.2)
HIGH_SPEED_HZ = 50_000_000  # after CMD6 group 1 function 1 (§4.3.10)
HOST_OCR_WINDOW = 0x00300000  # 3.2-3.4 V: what a 3.3 V slot offers (Linux 3 << (bit - 1))
ACMD41_HCS = 1 << 30  # §4.2.3.1, only after a v2 card answered CMD8
ACMD41_POLL_S = 0.010  # Linux mmc_send_app_op_cond: 10 ms between polls
ACMD41_POLLS = 100  # ... for 1 s (kernels before the 2024 change)
CMD8_ARG = 0x1AA  # VHS 0001b = 2.7-3.6 V, check pattern 0xAA (§4.3.13)
SWITCH_QUERY = 0x00FFFFF0  # CMD6 mode 0, every group "no change" (Linux mmc_read_switch)
SWITCH_HIGH_SPEED = 0x80FFFFF1  # CMD6 mode 1, group 1 function 1 (Linux mmc_sd_switch_hs)
ACMD6_4BIT = 0b10  # §4.3.9 SET_BUS_WIDTH
CCC_SWITCH = 1 << 10  # CSD CCC class 10: CMD6 supported
SCR_BUS_4BIT = 1 << 2  # SD_BUS_WIDTHS bit 50 = field bit 2 (§5.6)
SCR_CMD23 = 1 << 1  # CMD_SUPPORT bit 33 = field bit 1 (§5.6)
SCR_STRUCTURE_V1 = 0  # Linux rejects any other SCR structure
SWITCH_HS = 1 << 1  # GROUP1_SUPPORT bit for function 1 (High Speed)


@dataclass(frozen=True)
class InitOptions:
    bus_width: int  # 1 or 4: the widest the host may use
    high_speed: bool  # the host may switch to High Speed
    max_clock_hz: float | None = None  # the host's f_max: caps the clock after init

    def clock_for(self, high_speed: bool) -> float:
        """The transfer clock: the card's mode clamped to f_max (Linux ``mmc_set_clock``)."""
        target = HIGH_SPEED_HZ if high_speed else DEFAULT_SPEED_HZ
        return target if self.max_clock_hz is None else min(target, self.max_clock_hz)


def _register_read(block_size: int) -> Transfer:
    return Transfer(read=True, blocks=1, block_size=block_size)


async def _send_if_cond(issuer: Issuer, log: Callable[[str], None]) -> bool:
    """CMD8; True for a v2 card. A v1 card (or MMC) stays silent: a CMD timeout, not
    an error (Linux ``mmc_send_if_cond`` does not retry it)."""
    try:
        r7 = (await issuer.cmd(8, CMD8_ARG, retries=0)).response
    except BusError as error:
        if not error.timeout:
            raise
        log("CMD8: no response, a v1.x card: HCS stays 0")
        return False
    if r7 & 0xFFF != CMD8_ARG:
        raise DriverError(f"CMD8 SEND_IF_COND: R7 0x{r7:08X} does not echo 0x{CMD8_ARG:03X}")
    return True


async def _op_cond(issuer: Issuer, arg: int, log: Callable[[str], None]) -> int:
    """ACMD41 until the OCR busy bit says power-up is done (§4.2.3.1)."""
    for poll in range(1, ACMD41_POLLS + 1):
        ocr = (await issuer.acmd(41, arg)).response
        if ocr & OCR_BUSY:
            log(f"ACMD41 0x{arg:08X}: ready after {poll} poll(s), OCR 0x{ocr:08X}")
            return ocr
        await issuer.idle(ACMD41_POLL_S, "ACMD41 poll interval")
    raise DriverError(f"ACMD41 SD_SEND_OP_COND: card still busy after {ACMD41_POLLS} polls "
                      f"({ACMD41_POLLS * ACMD41_POLL_S:g} s)")


async def _switch_high_speed(issuer: Issuer, slot: Slot, options: InitOptions, scr: dict[str, int],
                             csd: dict[str, int], log: Callable[[str], None]) -> bool:
    """CMD6 query and, when High Speed is offered and wanted, the switch (§4.3.10)."""
    if scr["SD_SPEC"] < 1 or not csd["CCC"] & CCC_SWITCH:
        log("CMD6: not supported by the card (SD_SPEC 1.0 or no class 10)")
        return False
    query = await issuer.cmd(6, SWITCH_QUERY, transfer=_register_read(64))
    support = SWITCH_STATUS.decode(int.from_bytes(query.data, "big"))["GROUP1_SUPPORT"]
    if not support & SWITCH_HS:
        log("CMD6: the card offers no High Speed")
        return False
    if not (options.high_speed and slot.supports_high_speed):
        log("CMD6: High Speed offered; the host stays at default speed")
        return False
    switched = await issuer.cmd(6, SWITCH_HIGH_SPEED, transfer=_register_read(64))
    result = SWITCH_STATUS.decode(int.from_bytes(switched.data, "big"))["GROUP1_RESULT"]
    if result != 1:
        log(f"CMD6: problem switching to High Speed (group 1 result {result:#x})")
        return False
    log("CMD6: switched to High Speed")
    return True


async def initialise(slot: Slot, issuer: Issuer, options: InitOptions,
                     log: Callable[[str], None]) -> CardInfo:
    await slot.setup()
    if not slot.card_present:
        raise DriverError("init: no card in the slot")
    slot.power_on()
    hz = await slot.set_clock(IDENT_HZ)
    log(f"power on 3.3 V, clock {hz / 1e3:g} kHz")
    issuer.rca = 0

    # mmc_attach_sd: probe, then ask the card's voltage window (ACMD41 inquiry).
    await issuer.cmd(0)
    await _send_if_cond(issuer, log)
    card_ocr = (await issuer.acmd(41, 0)).response
    window = card_ocr & HOST_OCR_WINDOW
    if not window:
        raise DriverError(f"ACMD41: the card's voltage window (OCR 0x{card_ocr:08X}) "
                          "does not include 3.3 V")

    # mmc_sd_get_cid: start over, then power up with HCS if the card is v2.
    await issuer.cmd(0)
    v2 = await _send_if_cond(issuer, log)
    ocr = await _op_cond(issuer, window | (ACMD41_HCS if v2 else 0), log)
    high_capacity = bool(ocr & OCR_CCS)
    cid = (await issuer.cmd(2)).response
    r6 = (await issuer.cmd(3)).response
    issuer.rca = r6 >> 16
    status = card_status_from_r6_status(r6 & 0xFFFF)
    state = current_state(status)
    log(f"CMD3: RCA 0x{issuer.rca:04X} (card was in {state.label})")
    csd = (await issuer.cmd(9, issuer.rca << 16)).response
    capacity = csd_capacity(csd)
    log(f"CMD9: {format_size(capacity)}, {capacity // BLOCK_SIZE} blocks, "
        f"{'block' if high_capacity else 'byte'} addressing")
    await issuer.cmd(7, issuer.rca << 16, timeout_s=WRITE_TIMEOUT_S)  # R1b busy

    # mmc_sd_setup_card: SCR, SD Status, switch capabilities (all at 1 bit).
    scr_raw = int.from_bytes((await issuer.acmd(51, transfer=_register_read(8))).data, "big")
    scr = SCR.decode(scr_raw)
    if scr["SCR_STRUCTURE"] != SCR_STRUCTURE_V1:
        raise DriverError(f"ACMD51 SEND_SCR: unknown SCR structure {scr['SCR_STRUCTURE']}")
    cmd23 = bool(scr["CMD_SUPPORT"] & SCR_CMD23)
    log(f"ACMD51: SCR 0x{scr_raw:016X} (bus widths {scr['SD_BUS_WIDTHS']:#06b}, "
        f"CMD23 {'yes' if cmd23 else 'no'})")
    sd_status = (await issuer.acmd(13, transfer=_register_read(64))).data
    high_speed = await _switch_high_speed(issuer, slot, options, scr, decode_csd(csd), log)

    # mmc_sd_init_card: timing, clock, bus width.
    slot.set_host_control(high_speed=high_speed)
    hz = await slot.set_clock(options.clock_for(high_speed))
    bus_width = 1
    if options.bus_width == 4 and scr["SD_BUS_WIDTHS"] & SCR_BUS_4BIT:
        await issuer.acmd(6, ACMD6_4BIT)
        slot.set_host_control(bus_4bit=True)
        bus_width = 4
    log(f"clock {hz / 1e6:g} MHz, {bus_width}-bit bus")
    if not high_capacity:
        await issuer.cmd(16, BLOCK_SIZE)
    return CardInfo(
        rca=issuer.rca, ocr=ocr, cid=cid, csd=csd, capacity=capacity, scr=scr_raw,
        sd_status=sd_status, high_capacity=high_capacity, high_speed=high_speed,
        bus_width=bus_width, cmd23=cmd23, clock_hz=hz,
    )
