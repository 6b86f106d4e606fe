"""The card state machine as a diagram: current state lit, last transition drawn.

Nodes sit like the spec's figures (§4.8: identification mode on top, data transfer mode
below, ina apart). Every edge comes from the command table (``sdmodel.commands``: each
command's ``transitions`` and CMD7's ``other_rca``), merged per (state -> next state)
pair, plus the §4.8 "operation complete" row, which belongs to no command. The app feeds
``card.events.state`` (old, new, reason) into ``set_transition``. In SPI mode the SD state
machine is not visible on the bus, so a simplified idle / ready view replaces it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sdmodel.commands import APP_COMMANDS, COMMANDS, Command
from sdmodel.states import CardState
from widgets.live_clock import LiveClock, Slot
from widgets.qt import QLabel, Qt, QtCore, QtGui, QtWidgets, QVBoxLayout, QWidget

__all__ = [
    "OPERATION_COMPLETE",
    "DONE",
    "StateDiagram",
    "StateNode",
    "TransitionEdge",
    "sd_transitions",
]

S = CardState
DONE = "done"  # the edge label of an "operation complete" transition
DESELECT = "deselect"  # suffix of CMD7 addressed to another card

# §4.8 matrix, row "operation complete" (reference §4.3): no command causes these.
OPERATION_COMPLETE: Mapping[CardState, CardState] = {
    S.DATA: S.TRAN, S.RCV: S.PRG, S.PRG: S.TRAN, S.DIS: S.STBY,
}

# §4.8 state names as the spec's figures spell them.
_TITLES: Mapping[CardState, str] = {
    S.IDLE: "idle", S.READY: "ready", S.IDENT: "identification", S.STBY: "stand-by",
    S.TRAN: "transfer", S.DATA: "sending-data", S.RCV: "receive-data", S.PRG: "programming",
    S.DIS: "disconnect", S.INA: "inactive",
}

# Where each state sits (grid column, row) and on which side its self loop is drawn,
# after the spec's figures: identification row, data-transfer group, ina apart.
_LAYOUT: Mapping[CardState, tuple[float, float, str]] = {
    S.IDLE: (0, 0, "top"), S.READY: (1, 0, "top"), S.IDENT: (2, 0, "top"),
    S.STBY: (2, 1.45, "left"), S.TRAN: (3.3, 1.45, "top"), S.DATA: (4.5, 2.3, "right"),
    S.DIS: (1, 2.9, "left"), S.PRG: (2, 2.9, "bottom"), S.RCV: (3.3, 2.9, "bottom"),
    S.INA: (0, 1.45, "left"),
}
_GROUPS: tuple[tuple[str, tuple[CardState, ...]], ...] = (
    ("identification mode", (S.IDLE, S.READY, S.IDENT)),
    ("data transfer mode", (S.STBY, S.TRAN, S.DATA, S.RCV, S.PRG, S.DIS)),
)
_GLOBAL = frozenset({"CMD0", "CMD15"})  # edges from (nearly) every state: drawn faint

_COL, _ROW = 175.0, 120.0
_NODE_W, _NODE_H = 92.0, 40.0

_NODE_FILL = QtGui.QColor("#f4f6f8")
_NODE_BORDER = QtGui.QColor("#5f6b7a")
_TEXT = QtGui.QColor("#1d2733")
_SUBTEXT = QtGui.QColor("#5f6b7a")
_LIT_FILL = QtGui.QColor("#ffcf40")
_LIT_BORDER = QtGui.QColor("#a86a00")
_EDGE = QtGui.QColor("#5f6b7a")
_FAINT = QtGui.QColor("#c5ccd6")
_LIT_EDGE = QtGui.QColor("#d9480f")
_LABEL_BG = QtGui.QColor(255, 255, 255, 225)
_GROUP_FILL = (QtGui.QColor("#edf3fc"), QtGui.QColor("#eef8f0"))


def _entries(cmd: Command, states: Mapping[CardState, CardState],
             suffix: str = "") -> Iterable[tuple[CardState, CardState, str]]:
    label = f"{cmd.label} {suffix}".strip()
    for old, new in states.items():
        yield old, new, label


def sd_transitions() -> dict[tuple[CardState, CardState], tuple[str, ...]]:
    """Every (state, next state) pair of SD mode with what causes it: command labels from
    the command table (``"CMD7 deselect"`` for CMD7 to another RCA) and ``DONE``."""
    found: dict[tuple[CardState, CardState], list[str]] = {}
    for cmd in (*COMMANDS.values(), *APP_COMMANDS.values()):
        if not cmd.sd:
            continue  # SPI-only commands (CMD1, CMD58, CMD59) are illegal in SD mode
        rows = [*_entries(cmd, cmd.transitions), *_entries(cmd, cmd.other_rca, DESELECT)]
        for old, new, label in rows:
            labels = found.setdefault((old, new), [])
            if label not in labels:
                labels.append(label)
    for old, new in OPERATION_COMPLETE.items():
        found.setdefault((old, new), []).append(DONE)
    return {pair: tuple(labels) for pair, labels in found.items()}


def _compact(labels: Iterable[str]) -> list[str]:
    """``["CMD6,17,18", "ACMD13,51", "CMD7 deselect", "done"]``: plain command labels
    grouped by prefix, one line per group."""
    groups: dict[str, list[str]] = {"CMD": [], "ACMD": []}
    other: list[str] = []
    for label in labels:
        prefix = "ACMD" if label.startswith("ACMD") else "CMD"
        number = label[len(prefix):]
        if number.isdigit():
            groups[prefix].append(number)
        else:
            other.append(label)
    lines = [f"{prefix}{','.join(nums)}" for prefix, nums in groups.items() if nums]
    return lines + other


_COMMAND_LABEL = re.compile(r"(A?CMD)(\d+)( deselect)?")


def _describe(label: str) -> str:
    """Tooltip line for one edge label: the command's name and summary."""
    if label == DONE:
        return "operation complete (§4.8): last block sent / received, programming done"
    match = _COMMAND_LABEL.fullmatch(label)
    table = APP_COMMANDS if match and match.group(1) == "ACMD" else COMMANDS
    cmd = table.get(int(match.group(2))) if match else None
    if cmd is None:
        return label
    extra = " to another card's RCA" if match and match.group(3) else ""
    return f"{cmd.label} {cmd.name}{extra}: {cmd.summary}"


def _centre(state: CardState) -> QtCore.QPointF:
    col, row, _ = _LAYOUT[state]
    return QtCore.QPointF(col * _COL, row * _ROW)


def _node_rect(centre: QtCore.QPointF, margin: float = 0.0) -> QtCore.QRectF:
    w, h = _NODE_W + 2 * margin, _NODE_H + 2 * margin
    return QtCore.QRectF(centre.x() - w / 2, centre.y() - h / 2, w, h)


class StateNode(QtWidgets.QGraphicsItem):
    """One state: a rounded box with the short name and the spec's name; ``lit`` when the
    card is in it."""

    def __init__(self, state: CardState | None, title: str, subtitle: str,
                 centre: QtCore.QPointF) -> None:
        super().__init__()
        self.state = state
        self.title = title
        self.subtitle = subtitle
        self._lit = False
        self.setPos(centre)
        self.setZValue(2)
        self.setToolTip(f"{title}: {subtitle}")

    @property
    def lit(self) -> bool:
        return self._lit

    def set_lit(self, lit: bool) -> None:
        if lit != self._lit:
            self._lit = lit
            self.update()

    def boundingRect(self) -> QtCore.QRectF:
        return _node_rect(QtCore.QPointF(0, 0), 2.0)

    def paint(self, painter: QtGui.QPainter, option: object, widget: object = None) -> None:
        rect = _node_rect(QtCore.QPointF(0, 0))
        painter.setPen(QtGui.QPen(_LIT_BORDER if self._lit else _NODE_BORDER,
                                  2.5 if self._lit else 1.2))
        painter.setBrush(_LIT_FILL if self._lit else _NODE_FILL)
        painter.drawRoundedRect(rect, 9, 9)
        title_font = QtGui.QFont(painter.font())
        title_font.setPointSizeF(10.5)
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(_TEXT)
        top = QtCore.QRectF(rect.left(), rect.top() + 3, rect.width(), rect.height() / 2)
        painter.drawText(top, Qt.AlignmentFlag.AlignCenter, self.title)
        sub_font = QtGui.QFont(painter.font())
        sub_font.setPointSizeF(7.5)
        sub_font.setBold(False)
        painter.setFont(sub_font)
        painter.setPen(_SUBTEXT)
        bottom = QtCore.QRectF(rect.left(), rect.center().y() + 1, rect.width(),
                               rect.height() / 2 - 4)
        painter.drawText(bottom, Qt.AlignmentFlag.AlignCenter, self.subtitle)


@dataclass(frozen=True)
class _Geometry:
    path: QtGui.QPainterPath
    arrow: QtGui.QPolygonF
    label_rect: QtCore.QRectF


class TransitionEdge(QtWidgets.QGraphicsItem):
    """An arrow from one state to another (or a loop back to itself) labelled with the
    commands that cause it; ``lit`` when it was the card's last transition."""

    def __init__(self, old: CardState | None, new: CardState | None, labels: tuple[str, ...],
                 points: list[QtCore.QPointF], *, label_side: QtCore.QPointF,
                 faint: bool = False, dashed: bool = False) -> None:
        super().__init__()
        self.old = old
        self.new = new
        self.labels = labels
        self.faint = faint
        self.dashed = dashed
        self._lit = False
        self._font = QtGui.QFont()
        self._font.setPointSizeF(7.5)
        self._lines = _compact(labels)
        self._geometry = self._layout(points, label_side)
        self.setZValue(1)
        self.setToolTip("\n".join(_describe(label) for label in labels))

    @property
    def label(self) -> str:
        """Every cause, comma separated: ``"CMD17, CMD18, ACMD51"``."""
        return ", ".join(self.labels)

    def path(self) -> QtGui.QPainterPath:
        """The arrow's line in scene coordinates."""
        return QtGui.QPainterPath(self._geometry.path)

    @property
    def label_visible(self) -> bool:
        return self._lit or not self.faint

    @property
    def lit(self) -> bool:
        return self._lit

    def set_lit(self, lit: bool) -> None:
        if lit != self._lit:
            self._lit = lit
            self.setZValue(3 if lit else 1)
            self.update()

    def _layout(self, points: list[QtCore.QPointF], side: QtCore.QPointF) -> _Geometry:
        path = QtGui.QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        tip, before = points[-1], points[-2]
        angle = math.atan2(tip.y() - before.y(), tip.x() - before.x())
        size = 8.0
        arrow = QtGui.QPolygonF([
            tip,
            QtCore.QPointF(tip.x() - size * math.cos(angle - 0.4),
                           tip.y() - size * math.sin(angle - 0.4)),
            QtCore.QPointF(tip.x() - size * math.cos(angle + 0.4),
                           tip.y() - size * math.sin(angle + 0.4)),
        ])
        bold = QtGui.QFont(self._font)
        bold.setBold(True)  # the lit label is bold: size the box for it
        metrics = QtGui.QFontMetricsF(bold)
        width = max(metrics.horizontalAdvance(line) for line in self._lines) + 6
        height = metrics.height() * len(self._lines) + 2
        mid = path.pointAtPercent(0.5)
        # Push the label off the line towards ``side`` by its half extent along it.
        push = abs(side.x()) * width / 2 + abs(side.y()) * height / 2
        centre = QtCore.QPointF(mid.x() + side.x() * (push + 2), mid.y() + side.y() * (push + 2))
        rect = QtCore.QRectF(centre.x() - width / 2, centre.y() - height / 2, width, height)
        return _Geometry(path, arrow, rect)

    def boundingRect(self) -> QtCore.QRectF:
        g = self._geometry
        return g.path.boundingRect().united(g.arrow.boundingRect()).united(
            g.label_rect).adjusted(-3, -3, 3, 3)

    def paint(self, painter: QtGui.QPainter, option: object, widget: object = None) -> None:
        g = self._geometry
        colour = _LIT_EDGE if self._lit else _FAINT if self.faint else _EDGE
        pen = QtGui.QPen(colour, 2.6 if self._lit else 1.0 if self.faint else 1.3)
        if self.dashed and not self._lit:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(g.path)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawPolygon(g.arrow)
        if not self.label_visible:
            return
        painter.setBrush(_LABEL_BG)
        painter.drawRoundedRect(g.label_rect, 3, 3)
        font = QtGui.QFont(self._font)
        font.setBold(self._lit)
        painter.setFont(font)
        painter.setPen(colour if self._lit else _TEXT)
        painter.drawText(g.label_rect, Qt.AlignmentFlag.AlignCenter, "\n".join(self._lines))


# --- edge geometry ---------------------------------------------------------------------


def _quad(a: QtCore.QPointF, c: QtCore.QPointF, b: QtCore.QPointF, t: float) -> QtCore.QPointF:
    u = 1.0 - t
    return a * (u * u) + c * (2 * u * t) + b * (t * t)


def _curve(a: QtCore.QPointF, b: QtCore.QPointF, bend: float,
           steps: int = 32) -> tuple[list[QtCore.QPointF], QtCore.QPointF]:
    """Points of the quadratic curve from node ``a`` to node ``b`` bowing ``bend`` x the
    distance towards its normal (so the two edges of a pair bow apart), clipped to the
    node boxes; and the unit normal on the bowing side (where the label goes)."""
    dx, dy = b.x() - a.x(), b.y() - a.y()
    dist = math.hypot(dx, dy)
    normal = QtCore.QPointF(dy / dist, -dx / dist)
    ctrl = (a + b) * 0.5 + normal * (bend * dist)
    box_a, box_b = _node_rect(a, 3), _node_rect(b, 3)
    samples = [_quad(a, ctrl, b, i / steps) for i in range(steps + 1)]
    points = [p for p in samples if not box_a.contains(p) and not box_b.contains(p)]
    side = normal if bend >= 0 else normal * -1.0
    if bend == 0:
        side = QtCore.QPointF(0, 0)
    return points, side


def _clear(points: list[QtCore.QPointF], obstacles: list[QtCore.QRectF]) -> bool:
    return not any(box.contains(p) for p in points for box in obstacles)


_BENDS = (0.0, 0.18, -0.18, 0.32, -0.32, 0.45, -0.45)
_PAIR_BENDS = (0.1, 0.22, 0.34, -0.22)


def _edge_points(old: CardState, new: CardState, paired: bool
                 ) -> tuple[list[QtCore.QPointF], QtCore.QPointF]:
    """The first curve from ``old`` to ``new`` that passes no other state; a pair of
    opposite edges bows apart (each to the left of its own direction)."""
    a, b = _centre(old), _centre(new)
    obstacles = [_node_rect(_centre(s), 6) for s in _LAYOUT if s not in (old, new)]
    best = None
    for bend in _PAIR_BENDS if paired else _BENDS:
        best = _curve(a, b, bend)
        if _clear(best[0], obstacles):
            return best
    assert best is not None
    return best


_LOOP_SIDES: Mapping[str, tuple[float, float]] = {
    "top": (0, -1), "bottom": (0, 1), "left": (-1, 0), "right": (1, 0),
}


def _loop_points(state: CardState) -> tuple[list[QtCore.QPointF], QtCore.QPointF]:
    """A small loop on the side of the node given by the layout table."""
    dx, dy = _LOOP_SIDES[_LAYOUT[state][2]]
    centre = _centre(state)
    half = (_NODE_W / 2) * abs(dx) + (_NODE_H / 2) * abs(dy)
    base = centre + QtCore.QPointF(dx, dy) * half
    across = QtCore.QPointF(-dy, dx) * 12.0
    out = QtCore.QPointF(dx, dy) * 34.0
    start, end = base + across, base - across
    c1, c2 = start + out + across, end + out - across
    path = QtGui.QPainterPath(start)
    path.cubicTo(c1, c2, end)
    points = [path.pointAtPercent(i / 24) for i in range(25)]
    return points, QtCore.QPointF(dx, dy)


# --- the widget ------------------------------------------------------------------------


class _FitView(QtWidgets.QGraphicsView):
    """Keeps the whole scene in view, never magnified more than ``_MAX_SCALE``."""

    _MAX_SCALE = 1.4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        self.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QtGui.QColor("white"))

    def fit(self) -> None:
        scene = self.scene()
        if scene is None:
            return
        rect = scene.sceneRect()
        self.resetTransform()
        view = self.viewport().rect()
        scale = min(view.width() / rect.width(), view.height() / rect.height(),
                    self._MAX_SCALE)
        self.scale(scale, scale)
        self.centerOn(rect.center())

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit()


class StateDiagram(QWidget):
    """The card's state machine. Feed it ``card.events.state`` through ``set_transition``
    and ``card.spi`` through ``set_spi_mode``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state: CardState | None = S.IDLE  # None: not known (set_unknown)
        self._unknown = ""  # the caption while the state is not known
        self._last: tuple[CardState, CardState, str] | None = None
        self._spi = False
        self._busy = ""  # why DAT0 is held busy, "" when it is not
        self._nodes: dict[CardState, StateNode] = {}
        self._edges: dict[tuple[CardState, CardState], TransitionEdge] = {}
        self._extra: TransitionEdge | None = None  # a transition the table does not have
        self._sd_scene = QtWidgets.QGraphicsScene(self)
        self._spi_scene = QtWidgets.QGraphicsScene(self)
        self._spi_nodes: dict[str, StateNode] = {}
        self._build_sd_scene()
        self._build_spi_scene()
        self._view = _FitView(self)
        self._view.setScene(self._sd_scene)
        self._caption = QLabel(self)
        self._caption.setWordWrap(True)
        self._caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # two lines whatever the text: a new caption repaints the label, never the layout
        self._caption.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                    QtWidgets.QSizePolicy.Policy.Fixed)
        self._caption.setFixedHeight(2 * self._caption.fontMetrics().lineSpacing() + 4)
        self._clock = LiveClock.shared()  # live changes come per block: drawn at ~15 Hz
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self._view, 1)
        layout.addWidget(self._caption)
        self._show()

    # -- queries ----------------------------------------------------------------------------

    @property
    def state(self) -> CardState | None:
        return self._state

    @property
    def spi_mode(self) -> bool:
        return self._spi

    @property
    def last_transition(self) -> tuple[CardState, CardState, str] | None:
        return self._last

    def state_item(self, state: CardState) -> StateNode:
        """The node drawn for ``state`` in the SD-mode diagram."""
        self._draw_pending()
        return self._nodes[state]

    def edge_item(self, old: CardState, new: CardState) -> TransitionEdge | None:
        """The arrow for ``old -> new`` (from the table, or the drawn last transition)."""
        self._draw_pending()
        edge = self._edges.get((old, new))
        if edge is None and self._extra is not None and (self._extra.old,
                                                         self._extra.new) == (old, new):
            return self._extra
        return edge

    def edges(self) -> dict[tuple[CardState, CardState], TransitionEdge]:
        """The arrows drawn from the command table, by (state, next state)."""
        self._draw_pending()
        return dict(self._edges)

    def lit_spi_node(self) -> str:
        """``"idle"`` or ``"ready"``: the node lit in the SPI-mode view ("" if unknown)."""
        if self._state is None:
            return ""
        return "idle" if self._state is S.IDLE else "ready"

    def caption_text(self) -> str:
        self._draw_pending()
        return self._caption.text()

    # -- updates ----------------------------------------------------------------------------

    def set_state(self, state: CardState) -> None:
        """Light ``state`` and no transition (a new card or a capture: an earlier
        transition drawn does not belong to it)."""
        self._state = CardState(state)
        self._forget_transition()
        self._schedule()

    def set_transition(self, old: CardState, new: CardState, reason: str) -> None:
        """The card went ``old -> new`` because of ``reason``: light that edge and ``new``.
        A transition to the same state (a reset) lights no edge."""
        old, new = CardState(old), CardState(new)
        self._forget_transition()
        self._last = (old, new, reason)
        self._state = new
        if old != new and (old, new) not in self._edges:
            points, side = _edge_points(old, new, paired=(new, old) in self._edges)
            self._extra = TransitionEdge(old, new, (reason,), points, label_side=side)
            self._extra.setToolTip(f"{old.label} -> {new.label}: {reason}")
            self._sd_scene.addItem(self._extra)
        self._schedule()

    def set_busy(self, busy: bool, reason: str = "") -> None:
        """The card holds DAT0 busy (programming, erase) or released it: ``card.events.busy``."""
        self._busy = (reason or "busy") if busy else ""
        self._schedule()

    def set_unknown(self, reason: str) -> None:
        """No state known (e.g. a capture without card status): nothing lit, ``reason``
        in the caption."""
        self._clock.cancel(self._show)
        self._forget_transition()
        self._state, self._busy, self._unknown = None, "", reason
        self._show()

    def _forget_transition(self) -> None:
        """No last transition: none lit, and an edge drawn for it alone is removed."""
        self._last = None
        if self._extra is not None:
            self._sd_scene.removeItem(self._extra)
            self._extra = None

    def set_spi_mode(self, spi: bool) -> None:
        """SPI mode shows the simplified idle / ready view instead of the SD diagram."""
        if spi != self._spi:
            self._spi = spi
            self._view.setScene(self._spi_scene if spi else self._sd_scene)
            self._view.fit()
            self._show()

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        self._view.fit()

    # -- drawing ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        self._clock.request(Slot.CARD, self._show)

    def _draw_pending(self) -> None:
        if self._clock.is_pending(self._show):
            self._clock.cancel(self._show)
            self._show()

    def _show(self) -> None:
        for state, node in self._nodes.items():
            node.set_lit(state is self._state)
        pair = self._last[:2] if self._last is not None else None
        for key, edge in self._edges.items():
            edge.set_lit(key == pair and key[0] != key[1])
        if self._extra is not None:
            self._extra.set_lit(True)
        for name, node in self._spi_nodes.items():
            node.set_lit(name == self.lit_spi_node())
        if self._state is None:
            self._caption.setText(self._unknown)
            return
        text = f"State: <b>{self._state.label}</b> ({_TITLES[self._state]})"
        if self._spi:
            text = (f"SPI mode: the card is <b>{self.lit_spi_node()}</b> (internal state "
                    f"{self._state.label}). SPI responses show only R1's in_idle_state bit, "
                    "not the SD state machine (§7.3.2).")
        elif self._last is not None:
            old, new, reason = self._last
            text += f" &nbsp;·&nbsp; last: {old.label} → {new.label} ({reason})"
        if self._busy:
            text += f" &nbsp;·&nbsp; DAT0 busy: {self._busy}"
        self._caption.setText(text)

    def _build_sd_scene(self) -> None:
        scene = self._sd_scene
        table = sd_transitions()
        for (old, new), labels in table.items():
            if old == new:
                points, side = _loop_points(old)
            else:
                points, side = _edge_points(old, new, paired=(new, old) in table)
            edge = TransitionEdge(old, new, labels, points, label_side=side,
                                  faint=set(labels) <= _GLOBAL, dashed=labels == (DONE,))
            scene.addItem(edge)
            self._edges[(old, new)] = edge
        for state in _LAYOUT:
            node = StateNode(state, state.label, _TITLES[state], _centre(state))
            scene.addItem(node)
            self._nodes[state] = node
        for (title, states), fill in zip(_GROUPS, _GROUP_FILL, strict=True):
            self._add_group(scene, title, states, fill)
        self._add_legend(scene)
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-8, -8, 8, 8))

    def _add_group(self, scene: QtWidgets.QGraphicsScene, title: str,
                   states: tuple[CardState, ...], fill: QtGui.QColor) -> None:
        rect = QtCore.QRectF()
        for state in states:
            rect = rect.united(_node_rect(_centre(state), 14))
            loop = self._edges.get((state, state))
            if loop is not None:
                rect = rect.united(loop.boundingRect().adjusted(-6, -6, 6, 6))
        rect.adjust(0, -16, 0, 0)
        box = scene.addRect(rect, QtGui.QPen(fill.darker(115), 1.0), fill)
        box.setZValue(-2)
        text = scene.addSimpleText(title)
        font = QtGui.QFont()
        font.setPointSizeF(8)
        font.setItalic(True)
        text.setFont(font)
        text.setBrush(_SUBTEXT)
        text.setPos(rect.left() + 6, rect.top() + 2)
        text.setZValue(-1)

    def _add_legend(self, scene: QtWidgets.QGraphicsScene) -> None:
        bottom = max(_node_rect(_centre(s)).bottom() for s in _LAYOUT) + 70
        text = scene.addSimpleText(
            "grey: CMD0 -> idle from every state, CMD15 -> ina from every addressed state\n"
            "dashed: operation complete (last block sent/received, programming done)")
        font = QtGui.QFont()
        font.setPointSizeF(7.5)
        text.setFont(font)
        text.setBrush(_SUBTEXT)
        text.setPos(-_NODE_W / 2, bottom)

    def _build_spi_scene(self) -> None:
        # §7.2.1 / reference A.1: in SPI mode R1 bit 0 (in_idle_state) is all the host
        # sees of the state machine: set while initialising, clear once ACMD41/CMD1 ends.
        scene = self._spi_scene
        specs = (
            ("idle", "initialising", "R1 = 0x01 until ACMD41 / CMD1 finishes",
             QtCore.QPointF(0, 0)),
            ("ready", "initialised", "R1 = 0x00: accepts every SPI command",
             QtCore.QPointF(_COL * 1.6, 0)),
        )
        for name, subtitle, tooltip, centre in specs:
            node = StateNode(None, name, subtitle, centre)
            node.setToolTip(f"{name}: {tooltip}")
            scene.addItem(node)
            self._spi_nodes[name] = node
        a, b = specs[0][3], specs[1][3]
        for start, end, label in ((a, b, "ACMD41 / CMD1 done"), (b, a, "CMD0")):
            points, side = _curve(start, end, 0.12)
            scene.addItem(TransitionEdge(None, None, (label,), points, label_side=side))
        note = scene.addSimpleText("SPI mode: the SD state machine is not shown; "
                                   "R1 reports idle / ready only.")
        note.setBrush(_SUBTEXT)
        note.setPos(-_NODE_W / 2, _ROW * 0.75)
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-8, -8, 8, 8))

