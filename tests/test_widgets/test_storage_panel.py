"""StoragePanel: each control emits its signal, bad input gives an inline error and no
signal, and ``apply_to`` drives a real FaultInjector."""

from __future__ import annotations

from typing import Any

import pytest

from sdmodel.storage import FaultInjector, FaultKind, Latency, parse_fault_spec
from widgets.qt import Qt
from widgets.storage_panel import StoragePanel


@pytest.fixture
def panel(qtbot: Any) -> StoragePanel:
    widget = StoragePanel()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def record(signal: Any) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def click(qtbot: Any, button: Any) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot: Any, edit: Any, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_fixed_latency_is_emitted_in_seconds(panel: StoragePanel) -> None:
    seen = record(panel.sigLatency)
    panel.latency_min.setValue(300.0)
    assert seen == [(Latency(0.3, 0.3),)]
    assert panel.latency_max.isHidden()
    assert panel.faults_text() == "latency 300 ms"


def test_random_latency_is_a_range(panel: StoragePanel, qtbot: Any) -> None:
    seen = record(panel.sigLatency)
    click(qtbot, panel.latency_random)
    panel.latency_max.setValue(50.0)
    panel.latency_min.setValue(10.0)
    assert seen[-1] == (Latency(0.01, 0.05),)
    assert not panel.latency_max.isHidden()
    assert panel.faults_text() == "latency 10 ms – 50 ms"


def test_random_latency_with_min_above_max_is_refused_inline(panel: StoragePanel,
                                                            qtbot: Any) -> None:
    click(qtbot, panel.latency_random)
    panel.latency_max.setValue(50.0)
    seen = record(panel.sigLatency)
    panel.latency_min.setValue(80.0)
    assert seen == []
    assert panel.error_text() == "random latency needs min <= max (min 80 ms, max 50 ms)"
    panel.latency_max.setValue(100.0)
    assert seen == [(Latency(0.08, 0.1),)]
    assert panel.error_text() == ""


def test_hang_and_release(panel: StoragePanel, qtbot: Any) -> None:
    seen = record(panel.sigHang)
    assert not panel.release_button.isEnabled()
    click(qtbot, panel.hang_button)
    assert seen == [(True,)] and panel.release_button.isEnabled()
    assert not panel.hang_button.isEnabled()
    assert panel.faults_text() == "hang"
    click(qtbot, panel.release_button)
    assert seen == [(True,), (False,)] and panel.hang_button.isEnabled()


@pytest.mark.parametrize("first, last, emitted", [
    ("100", "199", (100, 199)),
    ("7", "", (7, 7)),
    ("1,000", "1_001", (1000, 1001)),
    ("1999", "1999", (1999, 1999)),
])
def test_eio_range_is_emitted(panel: StoragePanel, qtbot: Any, first: str, last: str,
                              emitted: tuple[int, int]) -> None:
    panel.set_block_count(2000)
    seen = record(panel.sigEio)
    type_into(qtbot, panel.eio_first, first)
    type_into(qtbot, panel.eio_last, last)
    click(qtbot, panel.eio_add)
    assert seen == [emitted]
    assert panel.error_text() == ""
    assert panel.faults_text() == f"EIO {emitted[0]}" + (
        f"-{emitted[1]}" if emitted[1] != emitted[0] else "")


@pytest.mark.parametrize("first, last, error", [
    ("", "", "first LBA must be a block number (0, 1, 2...), not ''"),
    ("abc", "5", "first LBA must be a block number (0, 1, 2...), not 'abc'"),
    ("-1", "", "first LBA must be a block number (0, 1, 2...), not '-1'"),
    ("5", "x", "last LBA must be a block number (0, 1, 2...), not 'x'"),
    ("200", "100", "last LBA 100 is before first LBA 200"),
    ("1990", "2000", "LBA 2,000 is past the end of the card (last LBA 1,999)"),
])
def test_bad_eio_range_shows_an_inline_error(panel: StoragePanel, qtbot: Any, first: str,
                                             last: str, error: str) -> None:
    panel.set_block_count(2000)
    seen = record(panel.sigEio)
    type_into(qtbot, panel.eio_first, first)
    type_into(qtbot, panel.eio_last, last)
    click(qtbot, panel.eio_add)
    assert seen == []
    assert panel.error_text() == error
    assert panel.faults_text() == "none"


@pytest.mark.parametrize("text, budget, shown", [
    ("", None, "disk full"),
    ("0", 0, "disk full"),
    ("1MiB", 1024 * 1024, "disk full after 1 MiB"),
])
def test_disk_full_budget(panel: StoragePanel, qtbot: Any, text: str, budget: int | None,
                          shown: str) -> None:
    seen = record(panel.sigDiskFull)
    type_into(qtbot, panel.full_bytes, text)
    click(qtbot, panel.full_set)
    assert seen == [(budget,)]
    assert panel.faults_text() == shown


def test_bad_disk_full_size_is_refused_inline(panel: StoragePanel, qtbot: Any) -> None:
    seen = record(panel.sigDiskFull)
    type_into(qtbot, panel.full_bytes, "64M")
    qtbot.keyClick(panel.full_bytes, Qt.Key.Key_Return)
    assert seen == []
    assert panel.error_text().startswith("unknown size unit 'M' in '64M'")


def test_clear_all_faults(panel: StoragePanel, qtbot: Any) -> None:
    panel.latency_min.setValue(20.0)
    click(qtbot, panel.hang_button)
    seen = record(panel.sigClearFaults)
    click(qtbot, panel.clear_button)
    assert seen == [()]
    assert panel.faults_text() == "none"
    assert panel.latency_min.value() == 0.0 and panel.hang_button.isEnabled()


def test_durable_and_legacy_sync_switches(panel: StoragePanel, qtbot: Any) -> None:
    durable, legacy = record(panel.sigDurable), record(panel.sigLegacySync)
    click(qtbot, panel.durable)
    click(qtbot, panel.legacy_mode)
    click(qtbot, panel.async_mode)
    assert durable == [(True,)]
    assert legacy == [(True,), (False,)]


def test_showing_storage_options_emits_nothing(panel: StoragePanel) -> None:
    durable, legacy = record(panel.sigDurable), record(panel.sigLegacySync)
    panel.set_storage_options(durable=True, legacy_sync=True)
    assert panel.durable.isChecked() and panel.legacy_mode.isChecked()
    assert not panel.async_mode.isChecked()
    assert durable == legacy == []


def test_show_faults_reads_latency_and_hang(panel: StoragePanel) -> None:
    faults = FaultInjector()
    faults.latency = (0.1, 0.5)
    faults.hang()
    seen = record(panel.sigLatency)
    panel.show_faults(faults, [parse_fault_spec("eio:5-9:write")])
    assert seen == []
    assert panel.latency_random.isChecked()
    assert (panel.latency_min.value(), panel.latency_max.value()) == (100.0, 500.0)
    assert panel.faults_text() == "latency 100 ms – 500 ms · hang · eio:5-9:write"
    assert panel.release_button.isEnabled()


def test_apply_to_drives_a_fault_injector(panel: StoragePanel, qtbot: Any) -> None:
    faults = FaultInjector()
    panel.apply_to(faults)
    panel.latency_min.setValue(250.0)
    assert faults.latency == Latency(0.25, 0.25)
    click(qtbot, panel.hang_button)
    assert faults.hung
    click(qtbot, panel.release_button)
    assert not faults.hung
    type_into(qtbot, panel.eio_first, "100")
    type_into(qtbot, panel.eio_last, "199")
    click(qtbot, panel.eio_add)
    hit = faults.check("read", 150, 1)
    assert hit is not None and (hit.kind, hit.lba) == (FaultKind.EIO, 150)
    type_into(qtbot, panel.full_bytes, "512")
    click(qtbot, panel.full_set)
    assert faults.check("write", 0, 1) is None  # the one block that still fits
    hit = faults.check("write", 1, 1)
    assert hit is not None and hit.kind is FaultKind.DISK_FULL
    click(qtbot, panel.clear_button)
    assert faults.check("read", 150, 1) is None and faults.latency == Latency()
    panel.apply_to(None)
    panel.latency_min.setValue(5.0)
    assert faults.latency == Latency()  # detached
