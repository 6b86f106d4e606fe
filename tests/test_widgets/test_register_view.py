"""The register trees: card registers of a real simulated card decoded as
``sdmodel.registers`` decodes them, CSD v1/v2 by CSD_STRUCTURE, every SDHCI register,
highlighting of what changed since ``mark_step``, and the "explain this field" text."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sdmodel.registers import CARD_STATUS, CID, CSD_V1, CSD_V2, SCR, build_csd, csd_table
from sdmodel.sdhci.registers import REGISTERS
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.tokens import ResponseToken
from widgets.register_view import CARD_REGISTERS, GROUPS, RegisterView, field_help

MIB = 1 << 20
GIB = 1 << 30
TRAN = 4 << 9 | 1 << 8  # card status: CURRENT_STATE tran, READY_FOR_DATA (§4.10.1)


@pytest.fixture(scope="module", params=[64 * MIB, 4 * GIB], ids=["SDSC", "SDHC"])
def card_session(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    path = tmp_path_factory.mktemp("card") / "card.img"
    with path.open("wb") as f:
        f.truncate(request.param)

    async def run() -> Simulator:
        sim = Simulator(path, SimOptions())
        try:
            await sim.run("init; read 0 1")
        finally:
            await sim.aclose()
        return sim

    return asyncio.run(run())


def card_values(sim: Simulator) -> dict[str, int | bytes]:
    """What the host learnt: registers as the card sends them, status from the last R1."""
    card = sim.card
    status = [t.value for t in sim.trace if isinstance(t, ResponseToken) and t.type == "R1"]
    return {"OCR": card.ocr, "CID": card.cid, "CSD": card.current_csd(),
            "SCR": card.scr.to_bytes(8, "big"), "SD_STATUS": card.sd_status(),
            "CARD_STATUS": status[-1]}


@pytest.fixture
def view(qtbot: Any) -> RegisterView:
    view = RegisterView()
    qtbot.addWidget(view)
    return view


def test_groups_and_registers(view: RegisterView) -> None:
    assert [view.tree.topLevelItem(i).text(0) for i in range(2)] == list(GROUPS)
    assert view.registers("Card") == list(CARD_REGISTERS)
    assert view.registers("Host controller") == [r.name for r in REGISTERS]
    assert view.row_texts("CID")[1] == "—"  # nothing known yet


def test_card_registers_of_a_real_card_decode_as_the_tables_do(
        view: RegisterView, card_session: Simulator) -> None:
    values = card_values(card_session)
    view.set_card_registers(values)
    csd = card_session.card.current_csd()
    for key, table, raw in (("CID", CID, card_session.card.cid), ("CSD", csd_table(csd), csd),
                            ("SCR", SCR, card_session.card.scr),
                            ("CARD_STATUS", CARD_STATUS, values["CARD_STATUS"])):
        assert view.fields(key) == [f.name for f in table.fields]
        decoded = table.decode(raw)
        for f in table.fields:
            name, value_hex, text, meaning = view.row_texts(key, f.name)
            assert int(value_hex, 16) == decoded[f.name], (key, f.name)
            assert text == f.describe(decoded[f.name])
            assert name.startswith(f.name) and meaning.endswith(f"({f.section})")
    assert view.row_texts("CID", "PNM")[2] == '"SDSCP"'
    assert view.row_texts("CARD_STATUS", "CURRENT_STATE")[2] == "tran"
    assert view.row_texts("CSD")[1] == f"0x{csd:032X}"


@pytest.mark.parametrize("size, table, only", [
    (64 * MIB, CSD_V1, "C_SIZE_MULT"),
    (8 * GIB, CSD_V2, None),
])
def test_the_csd_tree_follows_csd_structure(view: RegisterView, size: int, table: Any,
                                            only: str | None) -> None:
    view.set_card_registers({"CSD": build_csd(size).raw})
    assert view.fields("CSD") == [f.name for f in table.fields]
    assert view.row_texts("CSD", "C_SIZE")[3].endswith(f"({table.section})")
    assert (only in view.fields("CSD")) == (only is not None)


def test_bytes_are_the_register_msb_first(view: RegisterView) -> None:
    view.set_card_registers({"SCR": bytes.fromhex("02B5800200000000")})
    assert view.row_texts("SCR", "SD_SPEC")[2] == "2.00 or later"
    assert view.row_texts("SCR", "SD_BUS_WIDTHS")[2] == "1 bit, 4 bit"


def test_every_sdhci_register_shows_its_fields(view: RegisterView,
                                               card_session: Simulator) -> None:
    controller = card_session.controller
    assert controller is not None
    view.set_controller_registers({r.name: controller.peek(r.name) for r in REGISTERS})
    for reg in REGISTERS:
        assert sorted(view.fields(reg.name)) == sorted(f.name for f in reg.fields)
        assert view.row_texts(reg.name)[1] == f"0x{controller.peek(reg.name):0{2 * reg.width}X}"
    assert view.row_texts("HOST_VERSION", "SPEC_VERSION")[1:3] == ["0x02", "3.00"]
    assert view.row_texts("INT_ENABLE", "CMD_COMPLETE")[3].endswith("[RW] (HCS 2.2.19)")


def test_nothing_is_highlighted_before_a_step_is_marked(view: RegisterView) -> None:
    view.set_card_registers({"CARD_STATUS": TRAN})
    view.set_card_registers({"CARD_STATUS": TRAN | 1 << 5})
    assert view.changed_fields() == set()


def test_fields_changed_since_mark_step_are_highlighted(view: RegisterView) -> None:
    view.set_card_registers({"CARD_STATUS": TRAN})
    view.set_controller_registers({"ARGUMENT": 0x100})
    view.mark_step()
    view.set_card_registers({"CARD_STATUS": 5 << 9 | 1 << 5})  # data, APP_CMD, not ready
    view.set_controller_registers({"ARGUMENT": 0x100})  # the same value: not a change
    assert view.changed_fields() == {("CARD_STATUS", "CURRENT_STATE"),
                                     ("CARD_STATUS", "READY_FOR_DATA"),
                                     ("CARD_STATUS", "APP_CMD")}
    changed, same = view.item("CARD_STATUS", "APP_CMD"), view.item("CARD_STATUS", "ERROR")
    assert changed.font(0).bold() and not same.font(0).bold()
    assert changed.background(2).color() != same.background(2).color()
    assert view.item("CARD_STATUS").font(0).bold()
    assert not view.item("ARGUMENT").font(0).bold()
    view.mark_step()
    assert view.changed_fields() == set()
    assert not changed.font(0).bold()


def test_a_register_first_seen_after_the_mark_is_a_change(view: RegisterView) -> None:
    view.mark_step()
    view.set_card_registers({"OCR": 0xC0FF8000})
    assert ("OCR", "CCS") in view.changed_fields()


@pytest.mark.parametrize("register, field, text", [
    ("CSD", "TAAC", "CSD.TAAC (bits 119:112, §5.3.2, §5.3.3): data read access time 1"),
    ("CSD", "C_SIZE", "CSD_V1.C_SIZE (bits 73:62, §5.3.2): device size: (C_SIZE+1) × "
                      "2^(C_SIZE_MULT+2) × 2^READ_BL_LEN bytes.\nCSD_V2.C_SIZE (bits 69:48, "
                      "§5.3.3): device size: (C_SIZE+1) × 512 KiB."),
    ("OCR", "CCS", "OCR.CCS (bit 30, §5.1): card capacity status, valid when BUSY = 1. "
                   "Values: 0 = SDSC (byte addressing), 1 = SDHC/SDXC (block addressing)."),
    ("ERR_INT_STATUS", "DATA_TIMEOUT", "ERR_INT_STATUS.DATA_TIMEOUT (bit 4 of 0x32, RW1C, "
                                       "HCS 2.2.18): no data start bit"),
    ("CARD_STATUS", "ILLEGAL_COMMAND", "CARD_STATUS.ILLEGAL_COMMAND (bit 22, §4.10.1)"),
])
def test_field_help(register: str, field: str, text: str) -> None:
    assert field_help(register, field).startswith(text)


@pytest.mark.parametrize("register, field, message", [
    ("CSX", "C_SIZE", "no register named 'CSX'"),
    ("CSD", "NOPE", "register CSD has no field 'NOPE'"),
    ("INT_STATUS", "NOPE", "register INT_STATUS has no field 'NOPE'"),
])
def test_field_help_of_an_unknown_field(register: str, field: str, message: str) -> None:
    with pytest.raises(KeyError, match=message):
        field_help(register, field)


def test_explain_adds_the_value_shown(view: RegisterView) -> None:
    view.set_card_registers({"CSD": build_csd(8 * GIB).raw})
    assert view.explain("CSD", "C_SIZE") == (
        "CSD_V2.C_SIZE (bits 69:48, §5.3.3): device size: (C_SIZE+1) × 512 KiB.\n"
        "Now: 0x003FFF = 16383.")
    assert view.item("CSD", "C_SIZE").toolTip(0) == field_help("CSD_V2", "C_SIZE")


@pytest.mark.parametrize("call, error", [
    (lambda v: v.set_card_registers({"CSR": 0}), KeyError),
    (lambda v: v.set_card_registers({"OCR": 1 << 32}), ValueError),
    (lambda v: v.set_controller_registers({"NOPE": 0}), KeyError),
    (lambda v: v.set_controller_registers({"HOST_CONTROL": 0x100}), ValueError),
])
def test_bad_values_are_refused(view: RegisterView, call: Any, error: type) -> None:
    with pytest.raises(error):
        call(view)


def test_clear_makes_every_register_unknown_and_unhighlighted(view: RegisterView) -> None:
    view.set_card_registers({"CARD_STATUS": TRAN})
    view.mark_step()
    view.set_card_registers({"CARD_STATUS": 5 << 9})
    view.clear()
    assert view.changed_fields() == set()
    assert view.row_texts("CARD_STATUS")[1] == "—"
    assert view.row_texts("CARD_STATUS", "CURRENT_STATE")[1:3] == ["—", ""]
    view.set_card_registers({"CARD_STATUS": TRAN})  # shown again after a clear
    assert view.row_texts("CARD_STATUS")[1] == f"0x{TRAN:08X}"
