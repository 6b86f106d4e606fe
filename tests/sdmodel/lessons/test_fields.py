""""Explain this field": register fields by name from the declarative tables, and the
assets folder the lessons come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdmodel.lessons import (
    AssetsError,
    FieldError,
    assets_dir,
    captures_dir,
    explain_field,
    field_refs,
    lessons_dir,
    lookup_field,
)
from sdmodel.lessons.assets import ASSETS_ENV


@pytest.mark.parametrize("register, field, value, text", [
    ("CSD", "C_SIZE", 8191, "Card-Specific Data, version 2.0 (SDHC/SDXC): CSD.C_SIZE "
     "(bits 69:48, §5.3.3): device size: (C_SIZE+1) × 512 KiB; value 8191 (0x1FFF) = 8191"),
    ("OCR", "CCS", 1, "Operation Conditions Register: OCR.CCS (bit 30, §5.1): card capacity "
     "status, valid when BUSY = 1; value 1 (0x1) = SDHC/SDXC (block addressing)"),
    ("CARD_STATUS", "CURRENT_STATE", 4, "CARD_STATUS.CURRENT_STATE (bits 12:9, §4.10.1): "
     "card state when the command was received [S X, clear B]; value 4 (0x4) = tran"),
    ("CID", "MDT", 0x181, "value 385 (0x181) = 2024-01"),
    ("INT_STATUS", "BUF_RD_READY", None, "INT_STATUS.BUF_RD_READY (bit 5"),
])
def test_a_field_is_explained_from_its_table(register: str, field: str, value: int | None,
                                             text: str) -> None:
    assert text in explain_field(register, field, value)


def test_csd_means_both_versions_until_a_value_picks_one() -> None:
    assert [info.bits for info in lookup_field("CSD", "C_SIZE")] == ["73:62", "69:48"]
    assert explain_field("CSD", "C_SIZE").count("\n") == 1
    assert "version 1.0" in explain_field("CSD", "C_SIZE_MULT", 7)


@pytest.mark.parametrize("register, field, message", [
    ("CSX", "C_SIZE", "unknown register 'CSX' (one of OCR, CID"),
    ("CSD", "C_SIZ", "register CSD has no field 'C_SIZ' (fields: ALWAYS_1, CCC"),
    ("INT_STATUS", "BUF_READY", "register INT_STATUS has no field 'BUF_READY' (fields: "
     "CMD_COMPLETE"),
])
def test_an_unknown_register_or_field_names_what_exists(register: str, field: str,
                                                        message: str) -> None:
    with pytest.raises(FieldError) as caught:
        lookup_field(register, field)
    assert str(caught.value).startswith(message)


def test_field_references_in_lesson_text() -> None:
    text = "See {CSD.C_SIZE} and {INT_STATUS.XFER_COMPLETE}, not {lower.case} or {CSD}."
    assert field_refs(text) == [("CSD", "C_SIZE"), ("INT_STATUS", "XFER_COMPLETE")]


def test_assets_are_found_beside_the_packages() -> None:
    assert (lessons_dir() / "01-identification.toml").is_file()
    assert (captures_dir() / "imx6_working_snippet.sr").is_file()
    assert assets_dir() == Path(__file__).resolve().parents[3] / "assets"


def test_the_assets_folder_can_be_moved_and_a_missing_one_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    assert lessons_dir() == tmp_path / "lessons"
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path / "gone"))
    with pytest.raises(AssetsError, match=f"assets folder {tmp_path / 'gone'} "):
        assets_dir()
