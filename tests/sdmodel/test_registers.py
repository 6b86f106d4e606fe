"""Register tables (sdmodel.registers) against the spec and the real cards in the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdmodel.crc import crc7
from sdmodel.errors import ImageError
from sdmodel.registers import (
    ALL_REGISTERS,
    CARD_STATUS,
    CARD_STATUS_CLASSES,
    CID,
    CSD_V1,
    CSD_V2,
    ERROR_BITS,
    OCR,
    OCR_BUSY,
    OCR_CCS,
    OCR_S18A,
    OCR_VDD_WINDOW_2V7_3V6,
    R6_STATUS,
    SCR,
    SD_STATUS,
    SPI_DATA_ERROR_TOKEN,
    SPI_R1,
    SPI_R2_STATUS,
    STATUS_CLEAR_A,
    STATUS_CLEAR_B,
    STATUS_CLEAR_C,
    SWITCH_STATUS,
    CardStatus,
    Field,
    Register,
    build_csd,
    build_scr,
    build_sd_status,
    build_switch_status,
    card_status_from_r6_status,
    card_status_of_response,
    crc7_register,
    csd_capacity,
    csd_table,
    current_state,
    decode_csd,
    default_cid,
    parse_switch_arg,
    r6_status_from_card_status,
    register_crc_ok,
    spi_data_error_token_from_card_status,
    spi_r1_from_card_status,
    spi_r2_byte2_from_card_status,
    switch_results,
)
from sdmodel.states import CardState

REGISTERS = list(ALL_REGISTERS.values())
GIB = 1 << 30

# Real cards, reference Part 1 §6.3 / §6.2.
XMORE_CSD = bytes.fromhex("005E00325F5983D2EDB77F8F964000F7")
REAL_CID = bytes.fromhex("09415041465344491026 78067B008775".replace(" ", ""))
CSD_8GIB_HEAD = bytes.fromhex("400E00325B5900003FFF7F800A4000")
SUGGESTED_SCR = bytes.fromhex("02B5800200000000")

S = CardStatus


# --------------------------------------------------------------------------- table integrity


def test_all_registers_are_keyed_by_their_name() -> None:
    assert set(ALL_REGISTERS) == {
        "OCR", "CID", "CSD_V1", "CSD_V2", "SCR", "SD_STATUS", "CARD_STATUS", "R6_STATUS",
        "SWITCH_STATUS", "SPI_R1", "SPI_R2_STATUS", "SPI_DATA_ERROR_TOKEN",
    }
    assert all(reg.name == name for name, reg in ALL_REGISTERS.items())


@pytest.mark.parametrize("reg", REGISTERS, ids=lambda r: r.name)
def test_fields_do_not_overlap_and_stay_inside_the_register(reg: Register) -> None:
    used: set[int] = set()
    for f in reg.fields:
        bits = set(range(f.lsb, f.msb + 1))
        assert not bits & used, f"{reg.name}.{f.name} overlaps another field"
        assert max(bits) < reg.width
        used |= bits
    assert len({f.name for f in reg.fields}) == len(reg.fields)


@pytest.mark.parametrize("reg", REGISTERS, ids=lambda r: r.name)
def test_every_field_has_meaning_and_section(reg: Register) -> None:
    assert reg.title and reg.section.startswith("§")
    for f in reg.fields:
        assert f.meaning.strip(), f.name
        assert f.section.startswith("§"), f.name


@pytest.mark.parametrize("reg", REGISTERS, ids=lambda r: r.name)
def test_fields_are_listed_from_the_most_significant_bit_down(reg: Register) -> None:
    msbs = [f.msb for f in reg.fields]
    assert msbs == sorted(msbs, reverse=True)


@pytest.mark.parametrize(
    "fields",
    [
        (Field("A", 7, 4, "a", "§x"), Field("B", 4, 0, "b", "§x")),  # overlap at bit 4
        (Field("A", 8, 4, "a", "§x"),),  # outside an 8-bit register
        (Field("A", 3, 0, "a", "§x"), Field("B", 7, 4, "b", "§x")),  # out of order
        (Field("A", 7, 4, "a", "§x"), Field("A", 3, 0, "b", "§x")),  # duplicate name
    ],
)
def test_register_rejects_bad_tables(fields: tuple[Field, ...]) -> None:
    with pytest.raises(ValueError):
        Register("BAD", 8, "bad", "§x", fields)


def test_cid_and_csd_carry_crc_and_end_bit() -> None:
    for reg in (CID, CSD_V1, CSD_V2):
        assert (reg.field("CRC").msb, reg.field("CRC").lsb) == (7, 1)
        assert (reg.field("ALWAYS_1").msb, reg.field("ALWAYS_1").lsb) == (0, 0)


# --------------------------------------------------------------------------- round trips


def _field_values(reg: Register) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(
        {f.name: st.integers(0, (1 << f.width) - 1) for f in reg.fields}
    )


@pytest.mark.parametrize("reg", REGISTERS, ids=lambda r: r.name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_encode_then_decode_gives_the_fields_back(reg: Register, data: st.DataObject) -> None:
    values = data.draw(_field_values(reg))
    raw = reg.encode(values)
    assert reg.decode(raw) == values
    assert reg.from_bytes(reg.to_bytes(raw)) == raw


@pytest.mark.parametrize("reg", REGISTERS, ids=lambda r: r.name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_decode_then_encode_gives_the_defined_bits_back(
    reg: Register, data: st.DataObject
) -> None:
    raw = data.draw(st.integers(0, (1 << reg.width) - 1))
    assert reg.encode(reg.decode(raw)) == raw & reg.defined_mask
    assert len(reg.to_bytes(raw)) == reg.width // 8


@pytest.mark.parametrize("reg", REGISTERS, ids=lambda r: r.name)
def test_explain_lists_every_field_with_its_text(reg: Register) -> None:
    raw = reg.defined_mask
    rows = reg.explain(raw)
    assert [row.field for row in rows] == list(reg.fields)
    assert all(row.text == row.field.describe(row.value) for row in rows)


def test_field_put_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="C_SIZE is 12 bit"):
        CSD_V1.field("C_SIZE").put(0, 4096)
    with pytest.raises(ValueError):
        CSD_V1.field("C_SIZE").put(0, -1)


def test_unknown_field_names_raise_key_error_naming_the_register() -> None:
    with pytest.raises(KeyError, match="CSD_V2 has no field 'C_SIZE_MULT'"):
        CSD_V2.field("C_SIZE_MULT")
    with pytest.raises(KeyError, match="OCR has no field"):
        OCR.encode(HCS=1)


def test_encode_merges_mapping_and_keywords() -> None:
    assert OCR.encode({"BUSY": 1}, CCS=1) == 0xC0000000


@pytest.mark.parametrize("data", [bytes(15), bytes(17)])
def test_from_bytes_rejects_the_wrong_length(data: bytes) -> None:
    with pytest.raises(ValueError, match="CID is 16 bytes"):
        CID.from_bytes(data)


def test_decode_rejects_values_wider_than_the_register() -> None:
    with pytest.raises(ValueError):
        OCR.decode(1 << 32)


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("reg", "name", "value", "text"),
    [
        (CSD_V1, "TAAC", 0x5E, "5 ms"),
        (CSD_V2, "TAAC", 0x0E, "1 ms"),
        (CSD_V1, "TAAC", 0x26, "1.5 ms"),
        (CSD_V1, "TAAC", 0x00, "0x00 (reserved)"),
        (CSD_V1, "TRAN_SPEED", 0x32, "25 Mbit/s"),
        (CSD_V1, "TRAN_SPEED", 0x5A, "50 Mbit/s"),
        (CSD_V1, "TRAN_SPEED", 0x0B, "100 Mbit/s"),
        (CSD_V1, "TRAN_SPEED", 0x2B, "200 Mbit/s"),
        (CSD_V1, "C_SIZE_MULT", 6, "×256"),
        (CSD_V1, "READ_BL_LEN", 10, "1024 B"),
        (CSD_V1, "READ_BL_LEN", 3, "3 (reserved)"),
        (CSD_V2, "CCC", 0x5B5, "class 0 basic, class 2 block read, class 4 block write, "
         "class 5 erase, class 7 lock card, class 8 application-specific, class 10 switch"),
        (CARD_STATUS, "CURRENT_STATE", 4, "tran"),
        (CARD_STATUS, "CURRENT_STATE", 9, "9 (reserved)"),
        (CID, "OID", 0x4150, '"AP"'),
        (CID, "PRV", 0x10, "1.0"),
        (CID, "MDT", 0x087, "2008-07"),
        (CID, "MID", 0x09, "0x09"),
        (OCR, "VDD_WINDOW", 0b11 << 6, "3.3-3.4 V, 3.4-3.5 V"),
        (SCR, "SD_BUS_WIDTHS", 0, "none"),
        (SWITCH_STATUS, "MAX_CURRENT", 100, "100 mA"),
        (SWITCH_STATUS, "GROUP1_RESULT", 0xF, "error: invalid argument"),
    ],
)
def test_describe_renders_values_like_the_spec(
    reg: Register, name: str, value: int, text: str
) -> None:
    assert reg.field(name).describe(value) == text


def test_current_state_names_come_from_card_state() -> None:
    names = CARD_STATUS.field("CURRENT_STATE").values
    assert names is not None
    assert dict(names) == {s.value: s.label for s in CardState if s is not CardState.INA}


# --------------------------------------------------------------------------- OCR


@pytest.mark.parametrize(
    ("raw", "busy", "ccs", "s18a"),
    [(0x00FF8000, 0, 0, 0), (0x80FF8000, 1, 0, 0), (0xC0FF8000, 1, 1, 0),
     (0xC1FF8000, 1, 1, 1)],
)
def test_typical_ocr_values_decode(raw: int, busy: int, ccs: int, s18a: int) -> None:
    f = OCR.decode(raw)
    assert (f["BUSY"], f["CCS"], f["S18A"], f["VDD_WINDOW"]) == (busy, ccs, s18a, 0x1FF)


def test_ocr_constants_match_the_table() -> None:
    assert OCR_VDD_WINDOW_2V7_3V6 == OCR.field("VDD_WINDOW").mask
    assert OCR_BUSY | OCR_CCS | OCR_VDD_WINDOW_2V7_3V6 == 0xC0FF8000
    assert OCR_S18A == 1 << 24


# --------------------------------------------------------------------------- CID


def test_real_cid_decodes_as_the_reference_says() -> None:
    raw = CID.from_bytes(REAL_CID)
    assert CID.decode(raw) == {
        "MID": 0x09, "OID": 0x4150, "PNM": int.from_bytes(b"AFSDI", "big"), "PRV": 0x10,
        "PSN": 0x2678067B, "MDT": 0x087, "CRC": 0x3A, "ALWAYS_1": 1,
    }
    texts = {row.field.name: row.text for row in CID.explain(raw)}
    assert (texts["OID"], texts["PNM"], texts["PRV"], texts["MDT"]) == (
        '"AP"', '"AFSDI"', "1.0", "2008-07")
    assert register_crc_ok(raw)


def test_default_cid_is_reproducible_and_crc_correct() -> None:
    raw = default_cid(psn=0x12345678, year=2023, month=11)
    assert raw == default_cid(psn=0x12345678, year=2023, month=11)
    f = CID.decode(raw)
    assert f["MID"] == 0x1D and f["PSN"] == 0x12345678
    assert CID.field("OID").describe(f["OID"]) == '"SS"'
    assert CID.field("PNM").describe(f["PNM"]) == '"SDSCP"'
    assert CID.field("MDT").describe(f["MDT"]) == "2023-11"
    assert register_crc_ok(raw)


@pytest.mark.parametrize(
    "kwargs", [{"oid": "S"}, {"pnm": "TOOLONG"}, {"pnm": "SDSCé"}, {"month": 13},
               {"year": 1999}, {"mid": 0x100}],
)
def test_default_cid_rejects_bad_identity(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        default_cid(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CRC7 of registers


def test_crc7_register_fills_crc_and_end_bit() -> None:
    raw = CID.from_bytes(REAL_CID)
    assert crc7_register(raw & ~0xFF) == raw
    assert (raw & 0xFF) == (crc7(REAL_CID[:15]) << 1) | 1


@pytest.mark.parametrize("bit", [0, 1, 8, 64, 127])
def test_register_crc_ok_detects_a_flipped_bit(bit: int) -> None:
    raw = CSD_V1.from_bytes(XMORE_CSD)
    assert register_crc_ok(raw)
    assert not register_crc_ok(raw ^ (1 << bit))


# --------------------------------------------------------------------------- CSD decode


def test_xmore_csd_decodes_every_field_of_the_worked_example() -> None:
    raw = CSD_V1.from_bytes(XMORE_CSD)
    assert csd_table(raw) is CSD_V1
    assert decode_csd(raw) == {
        "CSD_STRUCTURE": 0, "TAAC": 0x5E, "NSAC": 0, "TRAN_SPEED": 0x32, "CCC": 0x5F5,
        "READ_BL_LEN": 9, "READ_BL_PARTIAL": 1, "WRITE_BLK_MISALIGN": 0,
        "READ_BLK_MISALIGN": 0, "DSR_IMP": 0, "C_SIZE": 3915, "VDD_R_CURR_MIN": 5,
        "VDD_R_CURR_MAX": 5, "VDD_W_CURR_MIN": 5, "VDD_W_CURR_MAX": 5, "C_SIZE_MULT": 6,
        "ERASE_BLK_EN": 1, "SECTOR_SIZE": 127, "WP_GRP_SIZE": 15, "WP_GRP_ENABLE": 1,
        "R2W_FACTOR": 5, "WRITE_BL_LEN": 9, "WRITE_BL_PARTIAL": 0, "FILE_FORMAT_GRP": 0,
        "COPY": 0, "PERM_WRITE_PROTECT": 0, "TMP_WRITE_PROTECT": 0, "FILE_FORMAT": 0,
        "WP_UPC": 0, "CRC": 0x7B, "ALWAYS_1": 1,
    }
    assert csd_capacity(raw) == 513_277_952
    assert register_crc_ok(raw)


def test_8gib_v2_csd_decodes_with_the_fixed_values() -> None:
    raw = crc7_register(int.from_bytes(CSD_8GIB_HEAD + b"\x00", "big"))
    assert csd_table(raw) is CSD_V2
    f = decode_csd(raw)
    assert (f["CSD_STRUCTURE"], f["TAAC"], f["NSAC"], f["TRAN_SPEED"], f["CCC"]) == (
        1, 0x0E, 0, 0x32, 0x5B5)
    assert (f["READ_BL_LEN"], f["C_SIZE"], f["SECTOR_SIZE"], f["R2W_FACTOR"]) == (
        9, 0x3FFF, 0x7F, 2)
    assert (f["WRITE_BL_LEN"], f["ERASE_BLK_EN"], f["WP_GRP_ENABLE"]) == (9, 1, 0)
    assert csd_capacity(raw) == 8 * GIB


@pytest.mark.parametrize("structure", [2, 3])
def test_csd_structure_beyond_v2_is_refused(structure: int) -> None:
    with pytest.raises(ValueError, match=f"CSD_STRUCTURE {structure}"):
        csd_table(structure << 126)


# --------------------------------------------------------------------------- CSD builder


@pytest.mark.parametrize(
    ("size", "version", "c_size", "mult", "bl", "exposed"),
    [
        (1 * GIB, 1, 4095, 7, 9, 1 * GIB),
        (2 * GIB, 1, 4095, 7, 10, 2 * GIB),
        (100_000_000, 1, 3050, 4, 9, 99_975_168),
        (2048, 1, 0, 0, 9, 2048),
        (8 << 20, 1, 4095, 0, 9, 8 << 20),  # 4096 units of 2 KiB exactly
        ((8 << 20) + 2048, 1, 2047, 1, 9, 8 << 20),  # 4097 units of 2 KiB: next unit
        (513_277_952, 1, 3915, 6, 9, 513_277_952),
        (2 * GIB + 512 * 1024, 2, 4096, None, 9, 2 * GIB + 512 * 1024),
        (8 * GIB, 2, 0x3FFF, None, 9, 8 * GIB),
        (8 * GIB + 1000, 2, 0x3FFF, None, 9, 8 * GIB),
        (64 * GIB, 2, 0x1FFFF, None, 9, 64 * GIB),
        (2 << 40, 2, 0x3FFFFF, None, 9, 2 << 40),
    ],
)
def test_build_csd_picks_geometry_as_the_reference_says(
    size: int, version: int, c_size: int, mult: int | None, bl: int, exposed: int
) -> None:
    info = build_csd(size)
    assert (info.version, info.c_size, info.c_size_mult, info.read_bl_len) == (
        version, c_size, mult, bl)
    assert info.exposed_bytes == exposed <= size
    assert csd_capacity(info.raw) == info.exposed_bytes
    assert register_crc_ok(info.raw)
    f = decode_csd(info.raw)
    assert f["C_SIZE"] == c_size and f["READ_BL_LEN"] == f["WRITE_BL_LEN"] == bl


def test_build_csd_reproduces_the_verified_8gib_csd() -> None:
    data = CSD_V2.to_bytes(build_csd(8 * GIB).raw)
    assert data[:15] == CSD_8GIB_HEAD
    assert data[15] == (crc7(CSD_8GIB_HEAD) << 1) | 1


def test_v1_csd_uses_the_documented_fixed_values() -> None:
    f = decode_csd(build_csd(GIB).raw)
    assert (f["TAAC"], f["NSAC"], f["TRAN_SPEED"], f["CCC"]) == (0x26, 0, 0x32, 0x5F5)
    assert (f["READ_BL_PARTIAL"], f["ERASE_BLK_EN"], f["SECTOR_SIZE"]) == (1, 1, 0x7F)
    assert (f["WP_GRP_SIZE"], f["WP_GRP_ENABLE"], f["R2W_FACTOR"]) == (0x7F, 1, 2)
    assert (f["COPY"], f["PERM_WRITE_PROTECT"], f["TMP_WRITE_PROTECT"]) == (0, 0, 0)


def test_version_switches_just_above_2_gib() -> None:
    assert build_csd(2 * GIB).version == 1
    assert build_csd(2 * GIB + 512).version == 2


@pytest.mark.parametrize("size", [64 * GIB, 2 << 40])
def test_sdxc_sizes_give_c_size_of_at_least_0xffff(size: int) -> None:
    assert build_csd(size).c_size >= 0xFFFF


def test_legacy_4gb_option_gives_a_v1_csd_with_2048_byte_blocks() -> None:
    info = build_csd(4 * GIB, legacy_4gb=True)
    assert (info.version, info.c_size, info.c_size_mult, info.read_bl_len) == (1, 4095, 7, 11)
    assert csd_capacity(info.raw) == 4 * GIB
    assert build_csd(2 * GIB, legacy_4gb=True).read_bl_len == 10
    assert build_csd(4 * GIB + 512, legacy_4gb=True).version == 2


@pytest.mark.parametrize("size", [GIB, 8 * GIB])
def test_build_csd_options_set_speed_and_write_protect(size: int) -> None:
    f = decode_csd(build_csd(size, high_speed=True, perm_wp=True, tmp_wp=True).raw)
    assert (f["TRAN_SPEED"], f["PERM_WRITE_PROTECT"], f["TMP_WRITE_PROTECT"]) == (0x5A, 1, 1)


@pytest.mark.parametrize("size", [0, 1024, 2047, (2 << 40) + 512])
def test_build_csd_refuses_sizes_no_card_can_have(size: int) -> None:
    with pytest.raises(ImageError):
        build_csd(size)


# --------------------------------------------------------------------------- SCR


def test_suggested_scr_is_reproducible_and_decodes() -> None:
    raw = build_scr(data_stat_after_erase=1)
    assert SCR.to_bytes(raw) == SUGGESTED_SCR
    f = SCR.decode(raw)
    assert (f["SCR_STRUCTURE"], f["SD_SPEC"], f["SD_SPEC3"], f["SD_SECURITY"]) == (0, 2, 1, 3)
    assert SCR.field("SD_BUS_WIDTHS").describe(f["SD_BUS_WIDTHS"]) == "1 bit, 4 bit"
    assert SCR.field("CMD_SUPPORT").describe(f["CMD_SUPPORT"]) == "CMD23 set block count"


def test_build_scr_sets_cmd20_and_spec_fields() -> None:
    f = SCR.decode(build_scr(cmd20=True, cmd23=False, spec4=1, specx=2))
    assert (f["CMD_SUPPORT"], f["SD_SPEC4"], f["SD_SPECX"]) == (0b0001, 1, 2)


# --------------------------------------------------------------------------- SD Status


def test_sd_status_carries_bus_width_speed_class_and_au_size() -> None:
    data = build_sd_status(bus_width_4=True, speed_class=4, au_size=9, erase_size=2,
                           erase_timeout=3, erase_offset=1, discard=True)
    assert len(data) == 64 and data[0] == 0x80
    f = SD_STATUS.decode(SD_STATUS.from_bytes(data))
    assert (f["SPEED_CLASS"], f["AU_SIZE"], f["SD_CARD_TYPE"]) == (2, 9, 0)
    assert (f["ERASE_SIZE"], f["ERASE_TIMEOUT"], f["ERASE_OFFSET"]) == (2, 3, 1)
    assert f["DISCARD_SUPPORT"] == 1
    # Linux mmc_read_ssr: AU_SIZE is the high nibble of byte 10 (bit 428).
    assert data[10] >> 4 == 9


def test_sd_status_in_1_bit_mode_and_rejects_unknown_speed_class() -> None:
    assert build_sd_status(bus_width_4=False)[0] == 0x00
    with pytest.raises(ValueError, match="speed class"):
        build_sd_status(bus_width_4=True, speed_class=8)


# --------------------------------------------------------------------------- card status


def test_card_status_flags_match_the_table() -> None:
    for flag in CardStatus:
        assert CARD_STATUS.field(str(flag.name)).mask == flag
    single = [f for f in CARD_STATUS.fields if f.width == 1]
    assert {f.name for f in single} == {str(flag.name) for flag in CardStatus}


@pytest.mark.parametrize(
    ("clear", "mask"),
    [("A", STATUS_CLEAR_A | S.FX_EVENT), ("B", STATUS_CLEAR_B), ("C", STATUS_CLEAR_C)],
)
def test_clear_condition_masks_match_the_table(clear: str, mask: int) -> None:
    fields = [CARD_STATUS.field(n) for n, (_, c) in CARD_STATUS_CLASSES.items() if c == clear]
    if clear == "B":
        fields.append(CARD_STATUS.field("CURRENT_STATE"))
    assert sum(f.mask for f in fields) == mask


def test_error_bits_are_every_e_type_bit() -> None:
    assert ERROR_BITS == 0xFDF98008
    assert ERROR_BITS & S.READY_FOR_DATA == 0 and ERROR_BITS & S.ILLEGAL_COMMAND


# --------------------------------------------------------------------------- R6


def test_real_r6_status_is_ident_and_ready_for_data() -> None:
    token = bytes.fromhex("03B368050019")  # reference §2.2
    status = int.from_bytes(token[3:5], "big")
    assert status == 0x0500
    f = R6_STATUS.decode(status)
    assert f["CURRENT_STATE"] == CardState.IDENT and f["READY_FOR_DATA"] == 1
    assert sum(f.values()) == CardState.IDENT + 1


@pytest.mark.parametrize(
    ("card_status", "r6"),
    [
        (S.COM_CRC_ERROR, 0x8000),
        (S.ILLEGAL_COMMAND, 0x4000),
        (S.ERROR, 0x2000),
        (S.OUT_OF_RANGE | S.ERASE_RESET | S.CARD_ECC_FAILED, 0x0000),  # not carried
        (2 << 9 | S.READY_FOR_DATA | S.APP_CMD | S.AKE_SEQ_ERROR, 0x0528),
    ],
)
def test_r6_status_maps_bits_23_22_19_and_12_to_0(card_status: int, r6: int) -> None:
    assert r6_status_from_card_status(card_status) == r6


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFFFFFF))
def test_r6_status_round_trips_the_bits_it_carries(cs: int) -> None:
    carried = S.COM_CRC_ERROR | S.ILLEGAL_COMMAND | S.ERROR | 0x1FFF
    assert card_status_from_r6_status(r6_status_from_card_status(cs)) == cs & carried


# --------------------------------------------------------------------------- SPI


@pytest.mark.parametrize(
    ("card_status", "idle", "r1"),
    [
        (0, False, 0x00),
        (0, True, 0x01),
        (S.ILLEGAL_COMMAND, True, 0x05),
        (S.ERASE_RESET, False, 0x02),
        (S.COM_CRC_ERROR, False, 0x08),
        (S.ERASE_SEQ_ERROR, False, 0x10),
        (S.ADDRESS_ERROR, False, 0x20),
        (S.OUT_OF_RANGE, False, 0x40),
        (S.BLOCK_LEN_ERROR, False, 0x40),
        (S.WP_VIOLATION | S.READY_FOR_DATA | S.APP_CMD | 4 << 9, False, 0x00),
    ],
)
def test_spi_r1_from_card_status(card_status: int, idle: bool, r1: int) -> None:
    assert spi_r1_from_card_status(card_status, idle) == r1
    assert SPI_R1.decode(r1)["ALWAYS_0"] == 0


@pytest.mark.parametrize(
    ("card_status", "byte2"),
    [
        (S.OUT_OF_RANGE, 0x80),
        (S.CSD_OVERWRITE, 0x80),
        (S.ERASE_PARAM, 0x40),
        (S.WP_VIOLATION, 0x20),
        (S.CARD_ECC_FAILED, 0x10),
        (S.CC_ERROR, 0x08),
        (S.ERROR, 0x04),
        (S.WP_ERASE_SKIP, 0x02),
        (S.LOCK_UNLOCK_FAILED, 0x02),
        (S.CARD_IS_LOCKED, 0x01),
        (S.ILLEGAL_COMMAND | S.ADDRESS_ERROR | S.READY_FOR_DATA, 0x00),  # R1's business
    ],
)
def test_spi_r2_second_byte_from_card_status(card_status: int, byte2: int) -> None:
    assert spi_r2_byte2_from_card_status(card_status) == byte2
    assert SPI_R2_STATUS.decode(byte2)


@pytest.mark.parametrize(
    ("card_status", "token"),
    [(S.OUT_OF_RANGE, 0x08), (S.CARD_IS_LOCKED, 0x10), (S.CARD_ECC_FAILED, 0x04),
     (S.CC_ERROR, 0x02), (S.ERROR, 0x01), (S.WP_VIOLATION, 0x00)],
)
def test_spi_data_error_token_from_card_status(card_status: int, token: int) -> None:
    assert spi_data_error_token_from_card_status(card_status) == token
    assert SPI_DATA_ERROR_TOKEN.decode(token)["ALWAYS_0"] == 0


# --------------------------------------------------------------------------- CMD6

HS_CARD = {"current_functions": [0] * 6, "supported": [0b11, 0, 0, 0, 0, 0],
           "max_current_ma": 100}


def test_parse_switch_arg_lists_group_1_first() -> None:
    assert parse_switch_arg(0x80FFFFF1) == [1, 0xF, 0xF, 0xF, 0xF, 0xF]
    assert parse_switch_arg(0x00654321) == [1, 2, 3, 4, 5, 6]


def test_linux_hs_query_matches_the_typical_status() -> None:
    status = build_switch_status(mode=0, arg=0x00FFFFF0, **HS_CARD)  # type: ignore[arg-type]
    assert len(status) == 64
    assert status[0:2] == b"\x00\x64"
    assert status[2:12] == b"\x80\x01" * 5
    assert status[12:14] == b"\x80\x03" and status[13] & 0x02
    assert status[16] & 0xF == 0 and status[16] == 0 and status[17] == 0
    assert status[18:] == bytes(46)


def test_hs_switch_reports_function_1_in_group_1() -> None:
    status = build_switch_status(mode=1, arg=0x80FFFFF1, **HS_CARD)  # type: ignore[arg-type]
    assert status[16] & 0xF == 1
    assert SWITCH_STATUS.decode(SWITCH_STATUS.from_bytes(status))["MAX_CURRENT"] == 100


def test_unsupported_function_gives_0xf_and_zero_current() -> None:
    status = build_switch_status(mode=1, arg=0x80FFFFF3, **HS_CARD)  # type: ignore[arg-type]
    f = SWITCH_STATUS.decode(SWITCH_STATUS.from_bytes(status))
    assert f["GROUP1_RESULT"] == 0xF and f["MAX_CURRENT"] == 0


def test_group_given_as_0xf_reports_its_current_function() -> None:
    assert switch_results(0x00FFFFFF, [1, 0, 0, 2, 0, 0], [0b11, 0, 0, 0b111, 0, 0]) == [
        1, 0, 0, 2, 0, 0]
    assert switch_results(0x00FF0FFF, [1, 0, 0, 2, 0, 0], [0b11, 0, 0, 0b111, 0, 0]) == [
        1, 0, 0, 0, 0, 0]


def test_version_1_status_carries_busy_bits() -> None:
    status = build_switch_status(mode=0, arg=0x00FFFFF1, version=1, busy=[0b10, 0, 0, 0, 0, 0],
                                 **HS_CARD)  # type: ignore[arg-type]
    f = SWITCH_STATUS.decode(SWITCH_STATUS.from_bytes(status))
    assert (f["DATA_STRUCTURE_VERSION"], f["GROUP1_BUSY"], f["GROUP6_BUSY"]) == (1, 0b10, 0)
    assert status[17] == 1 and status[28:30] == b"\x00\x02"


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": 2}, {"version": 2}, {"busy": [1, 0, 0, 0, 0, 0]},
     {"current_functions": [0] * 5}],
)
def test_build_switch_status_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"mode": 0, "arg": 0x00FFFFF0, **HS_CARD, **kwargs}
    with pytest.raises(ValueError):
        build_switch_status(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "value", "status"), [
    ("R1", 0x0000_0920, 0x0000_0920),
    ("R1b", 0x0000_0900, 0x0000_0900),
    ("R6", 0xB368_0500, 0x0000_0500),  # RCA in 31:16, status bits 15:0 (§4.9.5)
    ("R6", 0x0001_E000, 0x00C8_0000),  # bits 15:13 stand for card status 23, 22, 19
    ("R3", 0x80FF_8000, None),
    ("R7", 0x0000_01AA, None),
])
def test_card_status_of_a_response(kind: str, value: int, status: int | None) -> None:
    assert card_status_of_response(kind, value) == status


def test_current_state_reads_bits_12_to_9_and_refuses_reserved_codes() -> None:
    assert current_state(0x0000_0920) is CardState.TRAN
    with pytest.raises(ValueError):
        current_state(12 << 9)
