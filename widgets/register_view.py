"""Card and host-controller registers as trees of fields: raw hex, decoded value and a
one-line meaning with its spec section, all read from the declarative tables
(``sdmodel.registers``: §5.1 OCR, §5.2 CID, §5.3 CSD, §5.6 SCR, §4.10.2 SD Status,
§4.10.1 card status; ``sdmodel.sdhci.registers``: HCS chapter 2). Fields that changed
since the last ``mark_step`` are highlighted.

``field_help(register, field)`` is the "explain this field" text the lessons use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import NamedTuple

from sdmodel.registers import (
    ALL_REGISTERS,
    CARD_STATUS,
    CID,
    CSD_V1,
    CSD_V2,
    OCR,
    SCR,
    SD_STATUS,
    Field,
    Kind,
    Register,
    csd_table,
)
from sdmodel.sdhci.registers import REG, REGISTERS, SdhciRegister
from widgets.qt import (
    QHeaderView,
    QtGui,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["CARD_REGISTERS", "GROUPS", "RegisterView", "field_help"]

# The card registers shown, in order: key (as ``set_card_registers`` takes it) -> label.
# "CSD" picks CSD_V1 or CSD_V2 by CSD_STRUCTURE (§5.3.1).
CARD_REGISTERS: Mapping[str, str] = {
    "OCR": "OCR", "CID": "CID", "CSD": "CSD", "SCR": "SCR", "SD_STATUS": "SD Status",
    "CARD_STATUS": "Card status",
}
_CARD_TABLES: Mapping[str, Register] = {
    "OCR": OCR, "CID": CID, "CSD": CSD_V2, "SCR": SCR, "SD_STATUS": SD_STATUS,
    "CARD_STATUS": CARD_STATUS,
}
GROUPS = ("Card", "Host controller")
COLUMNS = ("Field", "Value", "Decoded", "Meaning")
_HIGHLIGHT = QtGui.QColor("#ffe58a")
_HIGHLIGHT_TEXT = QtGui.QColor("#000000")
_UNKNOWN = "—"


# --------------------------------------------------------------------------- one field layout


class _FieldSpec(NamedTuple):
    """A field of either table kind, as the tree shows it."""

    name: str
    msb: int
    lsb: int
    meaning: str  # with the spec section (and the access type for SDHCI)
    describe: Callable[[int], str]

    def value(self, raw: int) -> int:
        return (raw >> self.lsb) & ((1 << (self.msb - self.lsb + 1)) - 1)

    def hex(self, raw: int) -> str:
        return f"0x{self.value(raw):0{(self.msb - self.lsb + 4) // 4}X}"

    @property
    def bits(self) -> str:
        return str(self.msb) if self.msb == self.lsb else f"{self.msb}:{self.lsb}"


class _Layout(NamedTuple):
    """A register as the tree shows it: title, width in bits and fields, MSB first."""

    name: str
    title: str
    bits: int
    fields: tuple[_FieldSpec, ...]


def _card_layout(table: Register) -> _Layout:
    fields = tuple(_FieldSpec(f.name, f.msb, f.lsb, f"{f.meaning} ({f.section})", f.describe)
                   for f in table.fields)
    return _Layout(table.name, f"{table.title} ({table.section})", table.width, fields)


def _sdhci_layout(reg: SdhciRegister) -> _Layout:
    fields = tuple(
        _FieldSpec(f.name, f.msb, f.lsb, f"{f.meaning} [{f.access}] ({reg.section})", f.describe)
        for f in sorted(reg.fields, key=lambda f: -f.msb)
    )
    title = f"{reg.meaning} [{reg.access}] ({reg.section})"
    return _Layout(reg.name, title, 8 * reg.width, fields)


_HOST_LAYOUTS = {reg.name: _sdhci_layout(reg) for reg in REGISTERS}
_CARD_LAYOUTS = {table.name: _card_layout(table) for table in ALL_REGISTERS.values()}


def _card_table(key: str, raw: int | None) -> Register:
    if key == "CSD" and raw is not None:
        return csd_table(raw)
    return _CARD_TABLES[key]


# --------------------------------------------------------------------------- field help


def _values_text(values: Mapping[int, str] | None, kind: str) -> str:
    if not values:
        return ""
    shown = list(values.items())[:16]
    more = ", ..." if len(values) > len(shown) else ""
    label = "Bits" if kind == Kind.BITS else "Values"
    return f" {label}: " + ", ".join(f"{k} = {v}" for k, v in shown) + more + "."


def _bits(msb: int, lsb: int) -> str:
    return f"bit {msb}" if msb == lsb else f"bits {msb}:{lsb}"


def field_help(register: str, field: str) -> str:
    """The "explain this field" text: register and field, bit positions, spec section,
    meaning and the named values. ``register`` is a card register name
    (``sdmodel.registers.ALL_REGISTERS``, or "CSD" for both versions) or an SDHCI one."""
    if register in REG:
        reg = REG[register]
        f = reg.field(field)
        return (f"{reg.name}.{f.name} ({_bits(f.msb, f.lsb)} of 0x{reg.offset:02X}, {f.access}, "
                f"{reg.section}): {f.meaning}." + _values_text(f.values, Kind.DEC))
    tables = (CSD_V1, CSD_V2) if register == "CSD" else (ALL_REGISTERS.get(register),)
    if tables[0] is None:
        raise KeyError(f"no register named {register!r}")
    found = [(t.name, f) for t in tables if t is not None for f in t.fields if f.name == field]
    if not found:
        raise KeyError(f"register {register} has no field {field!r}")
    if len(found) == 2 and _same_field(found[0][1], found[1][1]):  # CSD, alike in both
        f = found[0][1]
        found = [(register, dataclasses.replace(f, section=f"{f.section}, {found[1][1].section}"))]
    return "\n".join(f"{name}.{f.name} ({_bits(f.msb, f.lsb)}, {f.section}): {f.meaning}."
                     + _values_text(f.values, f.kind) for name, f in found)


def _same_field(a: Field, b: Field) -> bool:
    return (a.msb, a.lsb, a.meaning, a.kind, a.values) == (b.msb, b.lsb, b.meaning, b.kind,
                                                           b.values)


# --------------------------------------------------------------------------- the view


class RegisterView(QWidget):
    """Two trees in one: "Card" (OCR, CID, CSD, SCR, SD Status, card status) and "Host
    controller" (every SDHCI register), columns Field / Value / Decoded / Meaning."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tree = QTreeWidget()
        self._tree.setHeaderLabels(list(COLUMNS))
        self._tree.setUniformRowHeights(True)
        self._tree.setAlternatingRowColors(True)
        header = self._tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        average = self.fontMetrics().averageCharWidth()
        self._tree.setColumnWidth(1, 36 * average)
        self._tree.setColumnWidth(2, 26 * average)
        self._values: dict[str, int | None] = dict.fromkeys([*CARD_REGISTERS, *_HOST_LAYOUTS])
        self._marked: dict[str, int | None] | None = None  # None: no step marked yet
        self._layouts: dict[str, _Layout] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._fields: dict[str, dict[str, QTreeWidgetItem]] = {}
        self._changed: set[tuple[str, str]] = set()
        groups = [QTreeWidgetItem([title]) for title in GROUPS]
        self._tree.addTopLevelItems(groups)
        for key, label in CARD_REGISTERS.items():
            self._add_register(groups[0], key, label, _CARD_LAYOUTS[_CARD_TABLES[key].name])
        for name, layout in _HOST_LAYOUTS.items():
            self._add_register(groups[1], name, f"{name} @0x{REG[name].offset:02X}", layout)
        for group in groups:
            group.setFirstColumnSpanned(True)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            group.setExpanded(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._tree)

    @property
    def tree(self) -> QTreeWidget:
        return self._tree

    # --- setters ------------------------------------------------------------------------

    def set_card_registers(self, values: Mapping[str, int | bytes]) -> None:
        """Update card registers by key (``CARD_REGISTERS``): an int (spec bit numbering)
        or the bytes as sent, MSB first. Registers not given keep their values."""
        for key, value in values.items():
            if key not in CARD_REGISTERS:
                raise KeyError(f"unknown card register {key!r}; "
                               f"known: {', '.join(CARD_REGISTERS)}")
            raw = value if isinstance(value, int) else int.from_bytes(value, "big")
            if self._values.get(key) == raw:
                continue  # shown as it is (a refresh while running: most are unchanged)
            table = _card_table(key, raw)
            table.explain(raw)  # ValueError if it does not fit
            self._set(key, raw, _CARD_LAYOUTS[table.name])

    def set_controller_registers(self, values: Mapping[str, int]) -> None:
        """Update SDHCI registers by name (``sdmodel.sdhci.registers.REG``)."""
        for name, raw in values.items():
            if name not in _HOST_LAYOUTS:
                raise KeyError(f"unknown SDHCI register {name!r}")
            if self._values.get(name) == raw:
                continue
            REG[name].explain(raw)  # ValueError if it does not fit
            self._set(name, raw, _HOST_LAYOUTS[name])

    def clear(self) -> None:
        """Every register unknown, nothing highlighted (before showing another source)."""
        self._values = dict.fromkeys(self._values)
        self._marked = None
        self._changed.clear()
        for key in self._items:
            self._render(key)

    def mark_step(self) -> None:
        """Remember the values now: the next updates highlight what differs from them."""
        self._marked = dict(self._values)
        for key in self._items:
            self._render(key)

    # --- queries ------------------------------------------------------------------------

    def registers(self, group: str) -> list[str]:
        """The register keys under ``group`` ("Card" or "Host controller"), in order."""
        if group not in GROUPS:
            raise KeyError(f"no group {group!r}; groups: {', '.join(GROUPS)}")
        return list(CARD_REGISTERS if group == GROUPS[0] else _HOST_LAYOUTS)

    def fields(self, register: str) -> list[str]:
        """The fields shown under ``register``, MSB first."""
        return list(self._fields[register])

    def item(self, register: str, field: str | None = None) -> QTreeWidgetItem:
        return self._items[register] if field is None else self._fields[register][field]

    def row_texts(self, register: str, field: str | None = None) -> list[str]:
        item = self.item(register, field)
        return [item.text(c) for c in range(len(COLUMNS))]

    def changed_fields(self) -> set[tuple[str, str]]:
        """(register, field) of every highlighted field."""
        return set(self._changed)

    def explain(self, register: str, field: str) -> str:
        """``field_help`` for the table shown (CSD v1 or v2), with the current value."""
        layout = self._layouts[register]
        name = layout.name
        text = field_help(name, field)
        raw = self._values[register]
        spec = next(f for f in layout.fields if f.name == field)
        if raw is not None:
            text += f"\nNow: {spec.hex(raw)} = {spec.describe(spec.value(raw))}."
        return text

    # --- the tree -------------------------------------------------------------------------

    def _add_register(self, group: QTreeWidgetItem, key: str, label: str,
                      layout: _Layout) -> None:
        item = QTreeWidgetItem([label, _UNKNOWN, "", layout.title])
        item.setToolTip(3, layout.title)
        group.addChild(item)
        self._items[key] = item
        self._build_fields(key, layout)

    def _build_fields(self, key: str, layout: _Layout) -> None:
        item = self._items[key]
        item.takeChildren()
        self._layouts[key] = layout
        self._fields[key] = {}
        for spec in layout.fields:
            child = QTreeWidgetItem([f"{spec.name} [{spec.bits}]", _UNKNOWN, "", spec.meaning])
            child.setToolTip(0, field_help(layout.name, spec.name))
            child.setToolTip(3, spec.meaning)
            item.addChild(child)
            self._fields[key][spec.name] = child

    def _set(self, key: str, raw: int, layout: _Layout) -> None:
        if self._layouts[key] is not layout:
            self._build_fields(key, layout)  # CSD v1.0 <-> v2.0
        self._values[key] = raw
        self._render(key)

    def _render(self, key: str) -> None:
        layout, raw = self._layouts[key], self._values[key]
        item = self._items[key]
        _set_text(item, 1, _UNKNOWN if raw is None else f"0x{raw:0{layout.bits // 4}X}")
        item.setToolTip(1, "" if raw is None else _grouped_hex(raw, layout.bits))
        before = self._marked.get(key) if self._marked is not None else raw
        any_changed = False
        for spec in layout.fields:
            child = self._fields[key][spec.name]
            if raw is None:
                _set_text(child, 1, _UNKNOWN)
                _set_text(child, 2, "")
            else:
                value = spec.value(raw)
                _set_text(child, 1, spec.hex(raw))
                _set_text(child, 2, spec.describe(value))
            changed = self._marked is not None and (
                (raw is None) != (before is None)
                or (raw is not None and before is not None
                    and spec.value(raw) != spec.value(before)))
            _highlight(child, changed)
            any_changed |= changed
            if changed:
                self._changed.add((key, spec.name))
            else:
                self._changed.discard((key, spec.name))
        _highlight(item, any_changed or (self._marked is not None and raw != before))


def _set_text(item: QTreeWidgetItem, column: int, text: str) -> None:
    if item.text(column) != text:
        item.setText(column, text)


def _highlight(item: QTreeWidgetItem, on: bool) -> None:
    font = item.font(0)
    if font.bold() == on and (item.background(0).color() == _HIGHLIGHT) == on:
        return
    font.setBold(on)
    brush = QtGui.QBrush(_HIGHLIGHT) if on else QtGui.QBrush()
    text = QtGui.QBrush(_HIGHLIGHT_TEXT) if on else QtGui.QBrush()
    for column in range(len(COLUMNS)):
        item.setFont(column, font)
        item.setBackground(column, brush)
        item.setForeground(column, text)


def _grouped_hex(raw: int, bits: int) -> str:
    """Long values in 32-bit groups, MSB first."""
    digits = f"{raw:0{bits // 4}X}"
    return " ".join(digits[i:i + 8] for i in range(0, len(digits), 8))
