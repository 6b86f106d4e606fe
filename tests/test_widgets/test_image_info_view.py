"""ImageInfoView shows what read_image_info found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdmodel.images import create_image, read_image_info
from widgets.image_info_view import ImageInfoView


def test_empty_view_says_no_image(qtbot: Any) -> None:
    view = ImageInfoView()
    qtbot.addWidget(view)
    assert view.rows() == {"Image": "no image loaded"}
    assert view.partition_rows() == []


def test_demo_card_facts_and_partition(qtbot: Any, demo_image: Path) -> None:
    view = ImageInfoView()
    qtbot.addWidget(view)
    view.set_info(read_image_info(demo_image))
    rows = view.rows()
    assert rows["Image"] == str(demo_image)
    assert rows["Size"] == "64 MiB (67,108,864 bytes)"
    assert rows["Card type"] == "SDSC (byte addressing)"
    assert rows["Partition table"].startswith("MBR, 1 partition (signature 0x")
    assert view.partition_rows() == [
        ["1", "FAT16 (0x06)", "4 MiB", "60 MiB", 'FAT16 "SDSCOPE"', ""]
    ]
    assert view.warnings_text() == ""


def test_unreachable_tail_is_warned_about(qtbot: Any, tmp_path: Path) -> None:
    view = ImageInfoView()
    qtbot.addWidget(view)
    view.show()
    view.set_info(read_image_info(create_image(tmp_path / "odd.img", 4 * 1024**3 + 512)))
    assert "the last 512 bytes are not reachable" in view.warnings_text()
    view.set_info(None)
    assert view.warnings_text() == ""
