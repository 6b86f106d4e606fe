"""StateDiagram: every transition of the command table drawn, the card's state lit, the
last transition lit, and a simplified view in SPI mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdmodel.commands import APP_COMMANDS, COMMANDS, Command
from sdmodel.images import create_image
from sdmodel.sim.simulator import SimOptions, Simulator
from sdmodel.states import CardState
from widgets.state_diagram import DONE, OPERATION_COMPLETE, StateDiagram

S = CardState
SD_COMMANDS = [c for c in (*COMMANDS.values(), *APP_COMMANDS.values()) if c.sd]


@pytest.fixture
def diagram(qtbot: Any) -> StateDiagram:
    widget = StateDiagram()
    qtbot.addWidget(widget)
    widget.resize(900, 560)
    widget.show()
    return widget


def lit_edges(diagram: StateDiagram) -> list[tuple[CardState, CardState]]:
    return [pair for pair, edge in diagram.edges().items() if edge.lit]


@pytest.mark.parametrize("cmd", SD_COMMANDS, ids=lambda c: c.label)
def test_every_transition_of_the_command_table_has_a_labelled_edge(
        diagram: StateDiagram, cmd: Command) -> None:
    for old, new in cmd.transitions.items():
        edge = diagram.edge_item(old, new)
        assert edge is not None, f"{cmd.label}: no edge {old.label} -> {new.label}"
        assert cmd.label in edge.labels
    for old, new in cmd.other_rca.items():
        edge = diagram.edge_item(old, new)
        assert edge is not None and f"{cmd.label} deselect" in edge.labels


def test_edges_come_only_from_the_table(diagram: StateDiagram) -> None:
    table = {pair for c in SD_COMMANDS for pair in (*c.transitions.items(),
                                                   *c.other_rca.items())}
    assert set(diagram.edges()) == table | set(OPERATION_COMPLETE.items())


@pytest.mark.parametrize("old, new", list(OPERATION_COMPLETE.items()),
                         ids=lambda s: s.label)
def test_operation_complete_transitions_are_drawn(diagram: StateDiagram, old: CardState,
                                                  new: CardState) -> None:
    edge = diagram.edge_item(old, new)
    assert edge is not None and DONE in edge.labels


def test_spi_only_commands_draw_no_sd_edges(diagram: StateDiagram) -> None:
    labels = {label for edge in diagram.edges().values() for label in edge.labels}
    assert not labels & {"CMD1", "CMD58", "CMD59"}
    assert diagram.edge_item(S.INA, S.INA) is None  # CMD58/59 accept ina in SPI mode only


def test_one_pair_is_one_edge_with_merged_labels(diagram: StateDiagram) -> None:
    edge = diagram.edge_item(S.TRAN, S.DATA)
    assert edge is not None
    assert edge.label == "CMD6, CMD17, CMD18, CMD19, CMD30, CMD56, ACMD13, ACMD22, ACMD51"
    assert "READ_SINGLE_BLOCK" in edge.toolTip()


def test_no_edge_runs_through_another_state(diagram: StateDiagram) -> None:
    for (old, new), edge in diagram.edges().items():
        path = edge.path()
        points = [path.pointAtPercent(i / 64) for i in range(65)]
        for state in CardState:
            if state not in (old, new):
                box = diagram.state_item(state).sceneBoundingRect()
                assert not any(box.contains(p) for p in points), (old, new, state)


@pytest.mark.parametrize("state", list(CardState), ids=lambda s: s.label)
def test_set_state_lights_that_state_only(diagram: StateDiagram, state: CardState) -> None:
    diagram.set_state(state)
    assert [s for s in CardState if diagram.state_item(s).lit] == [state]
    assert lit_edges(diagram) == []


def test_a_transition_lights_its_edge_and_the_new_state(diagram: StateDiagram) -> None:
    diagram.set_transition(S.TRAN, S.DATA, "CMD17")
    assert diagram.state is S.DATA and diagram.state_item(S.DATA).lit
    assert lit_edges(diagram) == [(S.TRAN, S.DATA)]
    assert "last: tran → data (CMD17)" in diagram.caption_text()
    diagram.set_transition(S.DATA, S.TRAN, "last block sent")
    assert lit_edges(diagram) == [(S.DATA, S.TRAN)]
    assert diagram.last_transition == (S.DATA, S.TRAN, "last block sent")


def test_a_transition_missing_from_the_table_is_drawn_until_the_next(
        diagram: StateDiagram) -> None:
    # ACMD41 with no common voltage window sends the card to ina (reference §4.3 note 2).
    diagram.set_transition(S.IDLE, S.INA, "ACMD41")
    extra = diagram.edge_item(S.IDLE, S.INA)
    assert extra is not None and extra.lit and extra.scene() is not None
    assert (S.IDLE, S.INA) not in diagram.edges()
    diagram.set_transition(S.INA, S.IDLE, "power off")
    assert extra.scene() is None
    assert diagram.edge_item(S.IDLE, S.INA) is None


def test_busy_is_shown_until_released(diagram: StateDiagram) -> None:
    diagram.set_transition(S.RCV, S.PRG, "last block received")
    diagram.set_busy(True, "write block programming")
    assert diagram.caption_text().endswith("DAT0 busy: write block programming")
    diagram.set_busy(False, "write block programming")
    assert "busy" not in diagram.caption_text()


def test_a_reset_lights_no_edge(diagram: StateDiagram) -> None:
    diagram.set_transition(S.TRAN, S.DATA, "CMD17")
    diagram.set_transition(S.IDLE, S.IDLE, "reset")
    assert lit_edges(diagram) == []
    assert diagram.state_item(S.IDLE).lit


@pytest.mark.parametrize("state, node", [(S.IDLE, "idle"), (S.TRAN, "ready"),
                                         (S.DATA, "ready")], ids=lambda v: str(v))
def test_spi_mode_shows_idle_or_ready(diagram: StateDiagram, state: CardState,
                                      node: str) -> None:
    diagram.set_spi_mode(True)
    diagram.set_state(state)
    assert diagram.spi_mode and diagram.lit_spi_node() == node
    assert diagram.caption_text().startswith(f"SPI mode: the card is <b>{node}</b>")
    diagram.set_spi_mode(False)
    assert diagram.caption_text().startswith("State:")


def test_follows_a_simulated_card(diagram: StateDiagram, tmp_path: Path,
                                  arun: Callable[..., Any]) -> None:
    sim = Simulator(create_image(tmp_path / "card.img", 64 * 1024**2), SimOptions())
    seen: list[tuple[CardState, CardState, str]] = []
    busy: list[bool] = []
    sim.card.events.state.connect(diagram.set_transition)
    sim.card.events.state.connect(lambda *change: seen.append(change))
    sim.card.events.busy.connect(diagram.set_busy)
    sim.card.events.busy.connect(lambda on, reason: busy.append(on))
    arun(sim.run("init; write 64 2; read 0 1"))
    arun(sim.aclose())
    assert diagram.state is sim.card.state is S.TRAN
    assert diagram.last_transition == seen[-1]
    for old, new, _ in seen:  # every transition the card made has its edge (or is a reset)
        assert old == new or diagram.edge_item(old, new) is not None
    assert busy[:2] == [True, False] and "busy" not in diagram.caption_text()
    assert not diagram.grab().isNull()



def test_an_unknown_state_lights_nothing_and_says_why(diagram: StateDiagram) -> None:
    diagram.set_transition(S.TRAN, S.DATA, "CMD17")
    diagram.set_unknown("Capture: no card status in it")
    assert diagram.state is None
    assert not any(diagram.state_item(state).lit for state in S)
    assert lit_edges(diagram) == []
    diagram.set_transition(S.TRAN, S.IDENT, "odd")  # an edge the table does not have
    assert (S.TRAN, S.IDENT) not in diagram.edges()
    assert diagram.edge_item(S.TRAN, S.IDENT) is not None
    diagram.set_unknown("Capture: no card status in it")
    assert diagram.edge_item(S.TRAN, S.IDENT) is None
    assert diagram.caption_text() == "Capture: no card status in it"
    diagram.set_state(S.STBY)
    assert diagram.state_item(S.STBY).lit and "stby" in diagram.caption_text()


def test_set_state_forgets_the_last_transition(diagram: StateDiagram) -> None:
    diagram.set_transition(S.TRAN, S.DATA, "CMD17")
    diagram.set_state(S.IDLE)  # a capture's state: the simulated card's edge is not its own
    assert lit_edges(diagram) == [] and diagram.last_transition is None
    assert "last:" not in diagram.caption_text()
