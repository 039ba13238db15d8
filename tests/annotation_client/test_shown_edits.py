"""Graph edits made while the edit callback's previous answer is on its way.

The browser keeps only the newest answer of ``edit``: a second edit made before the
first is answered is sent with the history from before the first. Its graph event
holds only the shape it changed, so the page also sends every outline on screen
(``SHAPES_SHOWN``) with the drawing they were edited on; ``edit`` records what the
screen holds beyond the history's present when that drawing is the history's own.
"""

from __future__ import annotations

import json
from contextvars import copy_context

import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from annotation_client import _editing, _history, _shapes, create_app, ids

SHA = "d5" * 32
META = {"sha256": SHA, "name": "scan.png", "width": 100, "height": 80}
GRAPH = f"{ids.ANNOTATION_GRAPH}.relayoutData"
GROW = f"{ids.GROW_BUTTON}.n_clicks"
UNDO = f"{ids.UNDO_BUTTON}.n_clicks"
A = "M10,10L30,10L30,30L10,30Z"
B = "M50,10L70,10L70,30L50,30Z"
A1 = "M5,5L30,10L30,30L10,30Z"
B1 = "M50,10L75,5L70,30L50,30Z"
C = "M20,40L40,40L40,60L20,60Z"


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _drawn(paths, revision="r0"):
    """A history whose present ``paths`` the graph was last sent as drawing ``revision``."""
    state = _editing.make_state(list(paths), "edit", density=32)
    history = _history.push(_history.new_history(_editing.empty_state(), image=SHA), state)
    return {**history, "drawn": revision}


def _edit(annotate, history, *, fired, relayout=None, shown=None, grow=None, undo=None):
    """``edit``'s outputs for a request whose inputs ``fired`` (prop ids)."""
    def run():
        context_value.set(AttributeDict(
            triggered_inputs=[{"prop_id": prop, "value": None} for prop in fired]))
        return annotate.edit(
            META, None, None, relayout, undo, None, None, 32, 0.3, True, True, None, history,
            None, None, None, None, None, None, _grow=grow, _shrink=None, page="p" * 16,
            shown=shown,
        )
    return copy_context().run(run)


def _paths(history):
    return [_shapes.format_path(_shapes.parse_path(p)) for p in history["present"]["paths"]]


def test_a_drag_whose_answer_was_dropped_comes_with_the_next_drag(annotate):
    start = _drawn([A, B])
    # Vertex A dragged: its answer was dropped. Then vertex B: its request carries the
    # history of before A, an event of B alone, and the screen with both.
    second = _edit(annotate, start, fired=[GRAPH], relayout={"shapes[1].path": B1},
                   shown={"revision": "r0", "paths": [A1, B1]})[0]
    assert _paths(second) == [A1, B1]
    assert second["past"] == start["past"] + [start["present"]]  # one undo step


def test_a_drawn_region_dragged_before_its_answer_is_recorded(annotate):
    # A region drawn, then its vertex dragged: the event names a shape the history
    # does not hold, and was dropped; the outline on screen was never saved.
    out = _edit(annotate, _drawn([A, B]), fired=[GRAPH], relayout={"shapes[2].path": C},
                shown={"revision": "r0", "paths": [A, B, C]})[0]
    assert _paths(out) == [A, B, C]


def test_a_drag_before_a_click_is_made_first(annotate):
    start = _drawn([A, B])
    shown = {"revision": "r0", "paths": [A1, B]}
    grown = _edit(annotate, start, fired=[GROW], grow=1, shown=shown)[0]
    assert [s["action"] for s in grown["past"][-2:]] == ["edit", "edit"]
    assert grown["present"]["action"] == "grow" and grown["past"][-1]["paths"] == [A1, B]
    # Undo right after the drag takes back the drag, which Redo brings back.
    undone = _edit(annotate, start, fired=[UNDO], undo=1, shown=shown)[0]
    assert _paths(undone) == [A, B] and undone["future"][0]["paths"] == [A1, B]


def test_a_screen_of_another_drawing_is_not_taken(annotate):
    # Drawn again since (an Undo's answer, say): the store tells of an older screen.
    start = _drawn([A, B], revision="r1")
    for shown in [{"revision": "r0", "paths": [A1, B]}, {"revision": None, "paths": [A1]},
                  {"revision": "r1", "paths": "M0,0"}, ["r1"], None]:
        undone = _edit(annotate, start, fired=[UNDO], undo=1, shown=shown)[0]
        assert undone["present"] == _editing.empty_state()


def test_every_answer_names_the_drawing_it_sends(annotate):
    history, figure = _edit(annotate, _drawn([A]), fired=[GRAPH],
                            relayout={"shapes[0].path": A1})[:2]
    drawn = history["drawn"]
    assert isinstance(drawn, str) and drawn != "r0"
    assert drawn in json.dumps(figure.to_plotly_json())
