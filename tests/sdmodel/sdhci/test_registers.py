"""SDHCI register file: the declarative table, byte lanes, access types, interrupt status /
enable / signal enable, slot bits, power, clock and software reset (HCS v3.00 chapter 2;
reference B.1, B.2, B.3 rules 1-4, 13, 14).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from sdmodel.sdhci.registers import (
    REG,
    REGISTERS,
    AutoCmdError,
    ClockControl,
    ErrorInt,
    HostControl,
    NormalInt,
    Offset,
    PowerControl,
    PresentState,
    RespSelect,
    SoftwareReset,
    capabilities_value,
    clock_divider,
    data_timeout_ps,
    make_block_size,
    make_command,
    sd_clock_hz,
)
from sdmodel.tokens import IdleToken
from sdmodel.trace import IrqEvent, RegisterEvent

if TYPE_CHECKING:
    from conftest import Host


MakeHost = Callable[..., "Host"]
BASE_HZ = 50_000_000
US = 1_000_000  # picoseconds


# --- the table (B.1, B.2) -----------------------------------------------------------------


def test_every_register_sits_at_its_offset_in_address_order() -> None:
    assert [r.name for r in REGISTERS] == [o.name for o in Offset]
    assert all(r.offset == Offset[r.name] for r in REGISTERS)
    assert all(a.end <= b.offset for a, b in zip(REGISTERS, REGISTERS[1:], strict=False))
    assert REG["RESPONSE"].width == 16 and REG["CAPABILITIES"].width == 4


@pytest.mark.parametrize(("register", "flags"), [
    ("INT_STATUS", NormalInt), ("INT_ENABLE", NormalInt), ("SIGNAL_ENABLE", NormalInt),
    ("ERR_INT_STATUS", ErrorInt), ("ERR_SIGNAL_ENABLE", ErrorInt),
    ("PRESENT_STATE", PresentState), ("SOFTWARE_RESET", SoftwareReset),
    ("AUTO_CMD_STATUS", AutoCmdError), ("SET_INT_ERROR", ErrorInt),
])
def test_the_field_table_covers_every_linux_bit(register: str, flags: type) -> None:
    defined = REG[register].mask_of(*{f.access for f in REG[register].fields})
    expected = sum(int(f) for f in flags)
    if register in ("INT_ENABLE", "SIGNAL_ENABLE"):
        expected &= ~NormalInt.ERROR  # bit 15 of the enables is fixed 0 (B.2)
    assert defined == expected


@pytest.mark.parametrize(("index", "kind", "data", "value"), [
    (0, "none", False, 0x0000), (2, "R2", False, 0x0209), (3, "R1", False, 0x031A),
    (7, "R1b", False, 0x071B), (8, "R1", False, 0x081A), (9, "R2", False, 0x0909),
    (12, "R1b", False, 0x0C1B), (13, "R1", False, 0x0D1A), (17, "R1", True, 0x113A),
    (18, "R1", True, 0x123A), (24, "R1", True, 0x183A), (25, "R1", True, 0x193A),
    (55, "R1", False, 0x371A), (41, "R3", False, 0x2902), (51, "R1", True, 0x333A),
])
def test_make_command_gives_the_values_linux_writes(index: int, kind: str, data: bool,
                                                    value: int) -> None:
    flags = {"none": (RespSelect.NONE, False, False), "R1": (RespSelect.R48, True, True),
             "R1b": (RespSelect.R48_BUSY, True, True), "R2": (RespSelect.R136, True, False),
             "R3": (RespSelect.R48, False, False)}[kind]
    resp, crc, idx = flags
    assert make_command(index, resp, data=data, crc_check=crc, index_check=idx) == value


def test_make_block_size_is_linux_make_blksz() -> None:
    assert make_block_size(512) == 0x7200  # SDHCI_MAKE_BLKSZ(7, 512)
    assert make_block_size(8, 0) == 0x0008


def test_explain_names_each_field_value() -> None:
    explained = {f.name: text for f, _, text in REG["TRANSFER_MODE"].explain(0x0036)}
    assert explained == {"DMA_ENABLE": "clear", "BLOCK_COUNT_ENABLE": "set",
                         "AUTO_CMD": "Auto CMD12", "DIRECTION": "read",
                         "MULTI_BLOCK": "multiple"}
    command = {f.name: value for f, value, _ in REG["COMMAND"].explain(0x123A)}
    assert command["COMMAND_INDEX"] == 18 and command["RESPONSE_TYPE"] == 2
    with pytest.raises(ValueError, match="TRANSFER_MODE is 16 bits"):
        REG["TRANSFER_MODE"].explain(0x10000)


def test_capabilities_advertise_what_the_model_does(make_host: MakeHost) -> None:
    h = make_host()
    caps = h.rd(Offset.CAPABILITIES)
    assert caps == 0x01603281
    explained = {f.name: text for f, _, text in REG["CAPABILITIES"].explain(caps)}
    assert {k: explained[k] for k in ("TIMEOUT_CLOCK", "TIMEOUT_UNIT", "BASE_CLOCK",
                                      "MAX_BLOCK")} == {
        "TIMEOUT_CLOCK": "0x01", "TIMEOUT_UNIT": "MHz", "BASE_CLOCK": "0x32",
        "MAX_BLOCK": "512 bytes"}
    assert [explained[k] for k in ("SDMA", "HIGH_SPEED", "VOLTAGE_33")] == ["set"] * 3
    assert [explained[k] for k in ("ADMA2", "BUS_8BIT", "VOLTAGE_30", "VOLTAGE_18")] == [
        "clear"] * 4
    assert h.rd(Offset.CAPABILITIES_1) == h.rd(Offset.MAX_CURRENT) == 0
    assert h.rd(Offset.HOST_VERSION, 2) == 0x0002  # spec 3.00


@pytest.mark.parametrize(("base", "tmclk", "low_byte"),
                         [(50_000_000, 1_000_000, 0x81), (50_000_000, 32_000, 0x20),
                          (50_000_000, 50_000_000, 0xB2)])
def test_timeout_clock_is_encoded_in_khz_or_mhz(base: int, tmclk: int, low_byte: int) -> None:
    assert capabilities_value(base, tmclk) & 0xFF == low_byte


@pytest.mark.parametrize(("base", "tmclk"), [(50_500_000, 1_000_000), (50_000_000, 100),
                                             (50_000_000, 64_000_000), (300_000_000, 1_000)])
def test_unrepresentable_clocks_are_refused(base: int, tmclk: int) -> None:
    with pytest.raises(ValueError, match="clock must be"):
        capabilities_value(base, tmclk)


@pytest.mark.parametrize(("n", "bits", "hz"), [(63, 0x3F00, 396_825.4), (1, 0x0100, 25e6),
                                               (0, 0x0000, 50e6), (1023, 0xFFC0, 50e6 / 2046)])
def test_sd_clock_is_base_over_2n(n: int, bits: int, hz: float) -> None:
    assert clock_divider(n) == bits
    assert sd_clock_hz(bits | ClockControl.INT_EN | ClockControl.CARD_EN, BASE_HZ) == \
        pytest.approx(hz, rel=1e-6)


@pytest.mark.parametrize(("n", "tmclk", "expected_us"),
                         [(0, 1_000_000, 8_192), (1, 1_000_000, 16_384),
                          (7, 1_000_000, 1_048_576), (14, 1_000_000, 134_217_728),
                          (15, 1_000_000, 134_217_728), (0, 32_000, 256_000)])
def test_data_timeout_is_tmclk_times_2_pow_13_plus_n(n: int, tmclk: int, expected_us: int,
                                                     make_host: MakeHost) -> None:
    assert data_timeout_ps(n, tmclk) == expected_us * US
    h = make_host(timeout_clock_hz=tmclk)
    h.wr(Offset.TIMEOUT_CONTROL, 1, n)
    assert h.ctrl.data_timeout_ps() == expected_us * US


# --- access widths and access types ----------------------------------------------------------


def test_byte_and_word_accesses_hit_the_right_lanes(make_host: MakeHost) -> None:
    h = make_host()
    h.wr(Offset.BLOCK_SIZE, 4, 0x0003_7200)  # one write covers Block Size and Block Count
    assert (h.rd(Offset.BLOCK_SIZE, 2), h.rd(Offset.BLOCK_COUNT, 2)) == (0x7200, 3)
    assert (h.rd(0x05, 1), h.rd(0x06, 1), h.rd(0x07, 1)) == (0x72, 0x03, 0x00)
    h.wr(0x07, 1, 0x01)
    assert h.rd(Offset.BLOCK_COUNT, 2) == 0x0103
    h.wr(Offset.ARGUMENT, 2, 0xBEEF)
    h.wr(Offset.ARGUMENT + 2, 2, 0xDEAD)
    assert h.rd(Offset.ARGUMENT, 4) == 0xDEADBEEF
    h.wr(Offset.ARGUMENT + 1, 1, 0x00)
    assert h.rd(Offset.ARGUMENT, 4) == 0xDEAD00EF
    # 0x28..0x2B: Host Control (4-bit), Power (off), Block Gap (interrupt at gap), Wakeup
    h.wr(Offset.HOST_CONTROL, 4, 0x04_08_00_02)
    assert h.rd(Offset.HOST_CONTROL, 4) == 0x04_08_00_02
    assert (h.rd(Offset.WAKE_UP_CONTROL, 1), h.ctrl.bus.host_width) == (0x04, 4)
    events = [e for e in h.ctrl.trace.tokens if isinstance(e, RegisterEvent)]
    assert events[0].reg == "BLOCK_SIZE+BLOCK_COUNT" and events[0].new == 0x0003_7200


@pytest.mark.parametrize(("offset", "width", "written", "reads"), [
    (Offset.BLOCK_SIZE, 2, 0xFFFF, 0x7FFF),  # bit 15 reserved
    (Offset.TRANSFER_MODE, 2, 0xFFFF, 0x003F),  # v4 bits 8:6 reserved in 3.00
    (Offset.TIMEOUT_CONTROL, 1, 0xFF, 0x0F),
    (Offset.INT_ENABLE, 2, 0xFFFF, 0x01FF),  # bit 15 fixed 0
    (Offset.ERR_INT_ENABLE, 2, 0xFFFF, 0x03FF),
    (Offset.HOST_CONTROL2, 2, 0xFFFF, 0xC0FF),
    (Offset.CLOCK_CONTROL, 2, 0xFFFF, 0xFFC7),  # bit 1 = Internal Clock Stable (ROC)
    (Offset.BLOCK_GAP_CONTROL, 1, 0xFF, 0x0D),  # Continue Request clears itself
    (Offset.RESPONSE + 4, 4, 0xFFFFFFFF, 0),  # ROC
    (Offset.AUTO_CMD_STATUS, 2, 0xFFFF, 0),  # ROC
    (Offset.ADMA_ERROR, 1, 0xFF, 0),  # ROC
    (Offset.CAPABILITIES, 4, 0, 0x01603281),  # HWInit
    (Offset.HOST_VERSION, 2, 0xFFFF, 0x0002),  # HWInit
    (Offset.SLOT_INT_STATUS, 2, 0xFFFF, 0),  # RO
    (0x60, 2, 0xFFFF, 0),  # preset values: not in this controller
])
def test_writes_follow_the_access_type(offset: int, width: int, written: int, reads: int,
                                       make_host: MakeHost) -> None:
    h = make_host()
    h.wr(offset, width, written)
    assert h.rd(offset, width) == reads


@pytest.mark.parametrize(("offset", "width"),
                         [(0x01, 2), (0x02, 4), (0x00, 3), (0x100, 1), (0xFE, 4), (-1, 1)])
def test_misaligned_or_odd_accesses_are_refused(offset: int, width: int,
                                                make_host: MakeHost) -> None:
    h = make_host()
    with pytest.raises(ValueError, match="SDHCI"):
        h.rd(offset, width)
    with pytest.raises(ValueError, match="SDHCI"):
        h.wr(offset, width, 0)


def test_write_only_force_registers_read_zero_and_set_status(make_host: MakeHost) -> None:
    h = make_host()
    h.enable_interrupts()
    h.wr(Offset.SET_INT_ERROR, 2, ErrorInt.DATA_CRC)
    assert h.rd(Offset.SET_INT_ERROR, 2) == 0
    assert h.status() == ErrorInt.DATA_CRC << 16 | NormalInt.ERROR
    h.wr(Offset.SET_ACMD12_ERROR, 2, AutoCmdError.CRC)
    assert h.rd(Offset.AUTO_CMD_STATUS, 2) == AutoCmdError.CRC
    assert h.status() >> 16 == ErrorInt.DATA_CRC | ErrorInt.AUTO_CMD
    force = [e for e in h.ctrl.trace.tokens
             if isinstance(e, RegisterEvent) and e.reg == "SET_INT_ERROR"]
    assert force[0].new == ErrorInt.DATA_CRC  # the event shows what was written


# --- interrupt status, status enable, signal enable (B.3 rules 1-4) ---------------------------


def test_int_status_bits_are_write_one_to_clear(make_host: MakeHost) -> None:
    h = make_host()
    h.enable_interrupts()
    h.wr(Offset.SET_INT_ERROR, 2, ErrorInt.CMD_CRC | ErrorInt.DATA_TIMEOUT)
    h.ctrl.remove_card()
    h.ctrl.insert_card()
    both = NormalInt.CARD_INSERT | NormalInt.CARD_REMOVE | NormalInt.ERROR
    assert h.status() == (ErrorInt.CMD_CRC | ErrorInt.DATA_TIMEOUT) << 16 | both
    h.clear(0)
    assert h.status() == (ErrorInt.CMD_CRC | ErrorInt.DATA_TIMEOUT) << 16 | both
    h.clear(ErrorInt.CMD_CRC << 16 | NormalInt.ERROR)  # bit 15 is read-only
    assert h.status() == ErrorInt.DATA_TIMEOUT << 16 | both
    h.wr(Offset.ERR_INT_STATUS, 2, ErrorInt.DATA_TIMEOUT)
    h.wr(Offset.INT_STATUS, 1, NormalInt.CARD_INSERT)
    assert h.status() == NormalInt.CARD_REMOVE  # the error summary went with the last error


def test_disabled_status_bits_never_latch(make_host: MakeHost) -> None:
    h = make_host()
    h.enable_interrupts(normal=NormalInt.CARD_REMOVE, errors=0)
    h.wr(Offset.SET_INT_ERROR, 2, ErrorInt.DATA_CRC)
    h.ctrl.remove_card()
    h.ctrl.insert_card()
    assert h.status() == NormalInt.CARD_REMOVE
    h.enable_interrupts()  # enabling later does not bring the missed events back
    assert h.status() == NormalInt.CARD_REMOVE


def test_clearing_a_status_enable_drops_the_latched_bit(make_host: MakeHost) -> None:
    h = make_host()
    h.enable_interrupts()
    h.ctrl.remove_card()
    h.wr(Offset.INT_ENABLE, 2, 0)  # QEMU: norintsts &= norintstsen
    assert h.status() == 0 and not h.ctrl.irq


def test_signal_enable_masks_the_irq_line(make_host: MakeHost) -> None:
    h = make_host()
    h.wr(Offset.INT_ENABLE, 4, 0x03FF_01FF)
    h.wr(Offset.SET_INT_ERROR, 2, ErrorInt.DATA_TIMEOUT)
    h.ctrl.remove_card()
    assert h.status() != 0 and not h.ctrl.irq and h.rd(Offset.SLOT_INT_STATUS, 2) == 0
    h.wr(Offset.SIGNAL_ENABLE, 2, NormalInt.CARD_INSERT)  # not the latched CARD_REMOVE
    assert not h.ctrl.irq
    h.wr(Offset.ERR_SIGNAL_ENABLE, 2, ErrorInt.DATA_TIMEOUT)
    assert h.ctrl.irq and h.rd(Offset.SLOT_INT_STATUS, 2) == 1
    h.wr(Offset.ERR_SIGNAL_ENABLE, 2, 0)
    assert not h.ctrl.irq
    h.wr(Offset.SIGNAL_ENABLE, 2, NormalInt.CARD_REMOVE)
    assert h.ctrl.irq


def test_irq_edges_and_register_writes_are_in_the_trace(make_host: MakeHost) -> None:
    h = make_host()
    seen: list[object] = []
    h.ctrl.events.irq.connect(lambda level, status: seen.append((level, status)))
    h.ctrl.events.register.connect(lambda event: seen.append(event.reg))
    h.enable_interrupts()
    h.wr(Offset.SET_INT_ERROR, 2, ErrorInt.DATA_CRC)
    h.clear(h.status())
    tail = [t for t in h.ctrl.trace.tokens if isinstance(t, RegisterEvent | IrqEvent)][-5:]
    force, rise, read, clear, fall = tail
    assert isinstance(force, RegisterEvent) and force.access == "write"
    assert isinstance(rise, IrqEvent) and (rise.level, rise.status) == (1, 0x0020_8000)
    assert rise.bits == ("DATA_CRC",)
    assert isinstance(read, RegisterEvent) and (read.access, read.new) == ("read", 0x0020_8000)
    assert isinstance(clear, RegisterEvent) and (clear.old, clear.new) == (0x0020_8000, 0)
    assert clear.reg == "INT_STATUS+ERR_INT_STATUS"
    assert isinstance(fall, IrqEvent) and (fall.level, fall.status) == (0, 0)
    assert seen[-5:] == ["SET_INT_ERROR", (True, 0x0020_8000), "INT_STATUS+ERR_INT_STATUS",
                         "INT_STATUS+ERR_INT_STATUS", (False, 0)]


# --- slot: card detect, write protect, power, clock (B.2, B.3 rule 13) -------------------------


def test_card_removal_raises_card_remove_and_cuts_bus_power(make_host: MakeHost) -> None:
    h = make_host()
    h.power_on()
    assert h.card.card.powered and h.rd(Offset.PRESENT_STATE) == 0x01FF0000
    h.ctrl.remove_card()
    assert h.status() == NormalInt.CARD_REMOVE and h.ctrl.irq
    assert not h.ctrl.card_present and not h.card.card.powered
    assert h.rd(Offset.PRESENT_STATE) == 0x01FA0000  # QEMU's no-card value
    assert h.rd(Offset.POWER_CONTROL, 1) == PowerControl.VDD_33  # bus power off
    assert not h.rd(Offset.CLOCK_CONTROL, 2) & ClockControl.CARD_EN


def test_card_insertion_raises_card_insert(make_host: MakeHost) -> None:
    h = make_host()
    h.ctrl.remove_card()
    h.enable_interrupts()
    h.ctrl.insert_card()
    assert h.status() == NormalInt.CARD_INSERT
    assert h.rd(Offset.PRESENT_STATE) & PresentState.CARD_INSERTED


def test_card_detect_test_level_overrides_the_pin(make_host: MakeHost) -> None:
    h = make_host()
    h.enable_interrupts()
    h.wr(Offset.HOST_CONTROL, 1, HostControl.CD_SIGNAL_SELECT)  # test level 0: "no card"
    state = h.rd(Offset.PRESENT_STATE)
    assert not state & PresentState.CARD_INSERTED and state & PresentState.CARD_DETECT
    assert h.status() == NormalInt.CARD_REMOVE
    h.wr(Offset.HOST_CONTROL, 1, HostControl.CD_SIGNAL_SELECT | HostControl.CD_TEST_LEVEL)
    assert h.status() & NormalInt.CARD_INSERT


@pytest.mark.parametrize(("options", "writable"), [
    ({}, True), ({"write_protect": True}, False), ({"read_only": True}, False)])
def test_write_protect_pin_level_is_1_when_writable(options: dict[str, bool], writable: bool,
                                                    make_host: MakeHost) -> None:
    h = make_host(**options)
    assert bool(h.rd(Offset.PRESENT_STATE) & PresentState.WRITE_PROTECT) is writable


@pytest.mark.parametrize(("written", "reads"), [
    (PowerControl.VDD_33 | PowerControl.ON, 0x0F), (PowerControl.VDD_30 | PowerControl.ON, 0x0C),
    (PowerControl.VDD_18 | PowerControl.ON, 0x0A), (PowerControl.ON, 0x00)])
def test_bus_power_comes_on_only_at_3v3(written: int, reads: int, make_host: MakeHost) -> None:
    h = make_host()
    h.wr(Offset.POWER_CONTROL, 1, written)
    assert h.rd(Offset.POWER_CONTROL, 1) == reads


def test_bus_power_stays_off_without_a_card(make_host: MakeHost) -> None:
    h = make_host()
    h.ctrl.remove_card()
    h.wr(Offset.POWER_CONTROL, 1, PowerControl.VDD_33 | PowerControl.ON)
    assert h.rd(Offset.POWER_CONTROL, 1) == PowerControl.VDD_33


def test_bus_power_and_sd_clock_power_the_card_up_with_74_clocks(make_host: MakeHost) -> None:
    h = make_host()
    assert not h.card.card.powered  # Power Control resets to 0
    h.power_on()
    assert h.card.card.powered
    assert h.ctrl.bus.clock.hz == pytest.approx(BASE_HZ / 126)
    idle = [t for t in h.ctrl.bus.trace.tokens if isinstance(t, IdleToken)]
    assert [(t.reason, t.clocks) for t in idle] == [("power-up", 74)]
    h.clock(1)  # a clock change after power-up gives no second power-up
    assert h.ctrl.bus.clock.hz == 25e6
    assert len([t for t in h.ctrl.bus.trace.tokens if isinstance(t, IdleToken)]) == 1


def test_software_reset_all_restores_reset_values_but_keeps_capabilities(
        make_host: MakeHost) -> None:
    h = make_host()
    h.power_on()
    h.wr(Offset.BLOCK_SIZE, 4, 0x0001_7200)
    h.wr(Offset.HOST_CONTROL, 1, HostControl.BUS_4BIT)
    h.wr(Offset.SET_INT_ERROR, 2, ErrorInt.DATA_CRC)
    h.wr(Offset.SOFTWARE_RESET, 1, SoftwareReset.ALL)
    assert h.rd(Offset.SOFTWARE_RESET, 1) == 0  # nothing was in flight: done at once
    cleared = (Offset.BLOCK_SIZE, Offset.INT_STATUS, Offset.INT_ENABLE, Offset.SIGNAL_ENABLE,
               Offset.HOST_CONTROL)
    assert [h.rd(offset, 4) for offset in cleared] == [0] * 5
    assert (h.rd(Offset.CAPABILITIES), h.rd(Offset.HOST_VERSION, 2)) == (0x01603281, 2)
    assert h.rd(Offset.PRESENT_STATE) == 0x01FF0000  # the card is still detected
    assert not h.card.card.powered and h.ctrl.bus.host_width == 1 and not h.ctrl.irq
