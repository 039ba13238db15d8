"""Graph edits made while the edit callback's previous answer is on its way.

The browser keeps only the newest answer of ``edit``: a second edit made before the
first is answered is sent with the history from before the first. Its graph event
holds only the shape it changed, so the page also sends every outline on screen
(``SHAPES_SHOWN``) with the drawing they were edited on; ``edit`` records what the
screen holds beyond the history's present when that drawing is the history's own.
"""

from __future__ import annotations

import base64
import io
import json

import dash
import numpy as np
import pytest
from _dash_helpers import as_callback, open_work, text_of
from dash.exceptions import PreventUpdate
from PIL import Image

import vectorizer
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
PAGE = "p" * 16
DENSITY = f"{ids.VERTEX_DENSITY}.value"
BOX_DONE = f"{ids.BOX_DONE}.data"


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _drawn(paths, revision="r0"):
    """A history whose present ``paths`` the graph was last sent as drawing ``revision``."""
    state = _editing.make_state(list(paths), "edit", density=32)
    history = _history.push(_history.new_history(_editing.empty_state(), image=SHA), state)
    return {**history, "drawn": revision}


def _edit(annotate, history, *, fired, relayout=None, shown=None, grow=None, undo=None,
          vertices=32, page=PAGE, box_result=None, pending=None, redo=None, resync=None):
    """``edit``'s outputs for a request whose inputs ``fired`` (prop ids)."""
    return as_callback(lambda: annotate.edit(
        META, None, box_result, relayout, undo, redo, None, vertices, 0.3, True, True,
        None, history, None, None, None, pending, None, None, _grow=grow, _shrink=None,
        page=page, shown=shown, **({"_resync": resync} if resync is not None else {}),
    ), fired)


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


# ------------------------------------------------- a slider move whose answer was dropped

#: A ring of 40 vertices: the slider's 28 draws it with fewer.
RING = "M" + "L".join(
    f"{50 + 30 * np.cos(a):.1f},{40 + 30 * np.sin(a):.1f}"
    for a in np.linspace(0, 2 * np.pi, 40, endpoint=False)) + "Z"
RING1 = RING.replace("M80.0,40.0", "M90,40", 1)


def test_a_drag_right_after_the_slider_moved_applies_the_density_too(annotate):
    """The slider moved (to 28), then a vertex dragged before the move's answer came:
    the drag's request carries the history of before the move, and the slider's 28."""
    assert RING1 != RING
    start = _drawn([RING])
    out = _edit(annotate, start, fired=[GRAPH], relayout={"shapes[0].path": RING1},
                shown={"revision": "r0", "paths": [RING1]}, vertices=28)
    history = out[0]
    # The drag, as made on screen, then the density: the outline the slider says.
    assert history["past"][-1]["action"] == "edit"
    assert _paths({"present": history["past"][-1]}) == _paths({"present": {"paths": [RING1]}})
    assert history["present"]["action"] == "density" and history["present"]["density"] == 28
    assert _shapes.vertex_count(history["present"]["paths"]) <= 28
    assert "slider" not in history  # the outline's own density tells it now
    assert out[5] is dash.no_update  # the slider already shows it


def test_undo_right_after_the_slider_moved_takes_the_density_back(annotate):
    start = _drawn([RING])
    # The move came first: it is made, then undone, and Redo brings it back.
    out = _edit(annotate, start, fired=[UNDO], undo=1, vertices=28)
    history = out[0]
    assert history["present"] == start["present"]
    assert history["future"][0]["action"] == "density"
    assert history["future"][0]["density"] == 28
    assert out[5] == 32  # the slider follows the outline back


def test_a_slider_left_at_a_density_the_outline_was_not_drawn_at_is_not_a_move(annotate):
    # The slider moved with no outline to redraw: the history records what it shows.
    empty = {**_history.new_history(_editing.empty_state(), image=SHA), "drawn": "r0"}
    erased = _history.push(empty, _editing.make_state([], "edit", density=32))
    moved = _edit(annotate, erased, fired=[DENSITY], vertices=64)[0]
    assert moved["present"] == erased["present"]
    assert moved["slider"] == {"page": PAGE, "vertices": 64}
    # A region drawn then is at the outline's 32; the next drag redraws nothing.
    drawn = _edit(annotate, moved, fired=[GRAPH], relayout={"shapes": [
        {"type": "path", "path": A}]}, vertices=64)[0]
    assert drawn["present"]["density"] == 32 and drawn["slider"]["vertices"] == 64
    dragged = _edit(annotate, drawn, fired=[GRAPH], relayout={"shapes[0].path": A1},
                    vertices=64)[0]
    assert dragged["present"]["action"] == "edit" and _paths(dragged) == _paths(
        {"present": {"paths": [A1]}})
    # With no token the record could be another drawing's; a value the slider cannot
    # give is no move either.
    for vertices, page in [(28, None), (None, PAGE), ("28", PAGE), (1000, PAGE)]:
        with pytest.raises(PreventUpdate):
            _edit(annotate, _drawn([RING]), fired=[GRAPH], relayout={"shapes[0].path": RING},
                  vertices=vertices, page=page)


# ------------------------------------------------------- edits while a box is segmented

def _box_answer(at, box):
    """The shell's box result: the model's square filling ``box``."""
    mask = np.zeros((META["height"], META["width"]), bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    answer = {"request": at, "box": list(box),
              "mask": base64.b64encode(vectorizer.mask_to_png(mask)).decode()}
    return {"image": SHA, "answers": [answer]}


def test_edits_made_on_the_box_s_drawing_are_kept_under_the_box(annotate):
    """ask_box takes the rectangle off the graph with a drawing of its own; edits made on
    it while the model segments the box come with the box's answer, and are kept."""
    start = _drawn([A, B])
    rect = {"shapes": [{"type": "path", "path": A}, {"type": "path", "path": B},
                       {"type": "rect", "x0": 5, "y0": 5, "x1": 35, "y1": 35}]}
    request, pending, figure, _alert = annotate.ask_box(rect, META, start, None, 0.3, True,
                                                        True)
    revision = [o for o in figure.to_plotly_json()["operations"]
                if o["location"] == ["layout", "editrevision"]][0]["params"]["value"]
    assert revision != "r0" and revision.startswith("r0")
    # Meanwhile B dragged and C drawn, on the box's drawing.
    shown = {"revision": revision, "paths": [A, B1, C]}
    history = _edit(annotate, start, fired=[GRAPH, BOX_DONE], relayout={"shapes[2].path": C},
                    shown=shown, box_result=_box_answer(request["at"], [10, 10, 20, 20]),
                    pending=pending)[0]
    assert _paths({"present": history["past"][-1]}) == _paths({"present": {"paths": [
        A, B1, C]}})
    assert history["present"]["action"] == "box" and history["present"]["over_edits"]
    kept = _paths({"present": {"paths": [B1, C]}})
    assert _paths(history)[:2] == kept  # the regions outside the box, as edited
    status = text_of(annotate.measure(history, META, None)[1])
    # A overlapped the box's outline and reached out of the box: replaced whole.
    assert ("last change: box (replaced the outline it overlapped; over the edits made while"
            " the box was segmented") in status
    # An Undo of the wait takes back the box, pressed after it was drawn, and shows the
    # edits of the wait without it; the box stays to Redo. (It took back the edits, and
    # the box's step then cleared them from the redo list: lost.)
    undone = _edit(annotate, start, fired=[GRAPH, UNDO, BOX_DONE], undo=1,
                   relayout={"shapes[2].path": C}, shown=shown,
                   box_result=_box_answer(request["at"], [10, 10, 20, 20]), pending=pending)[0]
    assert _paths(undone) == _paths({"present": {"paths": [A, B1, C]}})
    assert [s["action"] for s in undone["future"]] == ["box"]
    assert undone["future"][0] == history["present"]
    # A box with no edits while it was segmented says nothing more.
    plain = _edit(annotate, start, fired=[GRAPH, BOX_DONE], relayout=rect,
                  shown={"revision": "r0", "paths": [A, B]},
                  box_result=_box_answer(request["at"], [10, 10, 20, 20]), pending=pending)[0]
    assert plain["present"]["action"] == "box" and "over_edits" not in plain["present"]
    assert "last change: box (replaced the outline it overlapped) ·" in text_of(
        annotate.measure(plain, META, None)[1])


def test_an_undo_pressed_while_a_box_is_segmented_takes_back_the_box(annotate):
    """A region drawn by hand, a box drawn, and Undo pressed before the box's answer:
    Dash holds edit's call for the answer and merges the Undo into it. The Undo took
    back the hand-drawn region, and the box's step then cleared it from the redo list:
    lost for good. Now the box is made, then undone, and Redo brings it back."""
    start = _drawn([A, B])  # B drawn by hand over the AI's A
    rect = {"shapes": [{"type": "path", "path": A}, {"type": "path", "path": B},
                       {"type": "rect", "x0": 5, "y0": 5, "x1": 35, "y1": 35}]}
    request, pending, _figure, _alert = annotate.ask_box(rect, META, start, None, 0.3, True,
                                                         True)
    answer = _box_answer(request["at"], [10, 10, 20, 20])
    out = _edit(annotate, start, fired=[GRAPH, UNDO, BOX_DONE], undo=1, relayout=rect,
                shown={"revision": "r0", "paths": [A, B]}, box_result=answer, pending=pending)
    undone = out[0]
    assert undone["present"] == start["present"]  # the hand-drawn region, on screen
    assert undone["past"] == start["past"]
    assert [s["action"] for s in undone["future"]] == ["box"]
    assert out[7] == []  # the box is answered: not asked again
    assert out[3] is False  # Redo enabled
    redone = _edit(annotate, undone, fired=[f"{ids.REDO_BUTTON}.n_clicks"], redo=1,
                   box_result=answer, pending=[])[0]
    assert redone["present"]["action"] == "box"
    assert _paths(redone)[0] == _paths({"present": {"paths": [B]}})[0]  # B kept
    # Redo pressed in the wait comes after the box too: the box is new, and nothing is
    # left to redo past it.
    both = _edit(annotate, start, fired=[GRAPH, UNDO, f"{ids.REDO_BUTTON}.n_clicks",
                                         BOX_DONE], undo=1, redo=1, relayout=rect,
                 shown={"revision": "r0", "paths": [A, B]}, box_result=answer,
                 pending=pending)[0]
    assert both["present"] == redone["present"] and both["future"] == []


def test_an_undo_sent_before_the_box_s_answer_waits_for_it(annotate):
    """Dash sends the Undo with the box's event, or in a call of its own, before the
    answer is in: it waits (the outline stays), and acts once the box is made."""
    start = _drawn([A, B])
    rect = {"shapes": [{"type": "path", "path": A}, {"type": "path", "path": B},
                       {"type": "rect", "x0": 5, "y0": 5, "x1": 35, "y1": 35}]}
    request, pending, _figure, _alert = annotate.ask_box(rect, META, start, None, 0.3, True,
                                                         True)
    answer = _box_answer(request["at"], [10, 10, 20, 20])
    shown = {"revision": "r0", "paths": [A, B]}
    # With the box's event: ask_box had not answered, no box is pending yet.
    with_event = _edit(annotate, start, fired=[GRAPH, UNDO], undo=1, relayout=rect,
                       shown=shown)
    # In a call of its own, the box pending.
    alone = _edit(annotate, start, fired=[UNDO], undo=1, pending=pending)
    for out in (with_event, alone):
        waited = out[0]
        assert waited["present"] == start["present"] and waited["future"] == []
        assert waited[annotate.AFTER_BOX] == ["undo"]
        assert text_of(annotate.measure(waited, META, None)[1]).endswith(
            " · 1 undo step(s) · Undo when the box's answer is in")
        landed = _edit(annotate, waited, fired=[BOX_DONE], box_result=answer,
                       pending=pending)[0]
        assert landed["present"] == start["present"]  # B, drawn by hand, kept
        assert [s["action"] for s in landed["future"]] == ["box"]
        assert annotate.AFTER_BOX not in landed
    # A box answered "failed" lets the Undo act on what there is.
    failed = {"image": SHA, "answers": [{"request": request["at"], "box": [5, 5, 35, 35],
                                         "failed": True}]}
    undone = _edit(annotate, alone[0], fired=[BOX_DONE], box_result=failed,
                   pending=pending)[0]
    assert undone["present"] == _editing.empty_state() and undone["future"] == [
        start["present"]]
    # A box asked longer ago than the model server is waited for holds nothing back,
    # and neither does a box too small to be asked.
    stale = [dict(pending[0], at=pending[0]["at"] - 10**12)]
    assert _edit(annotate, start, fired=[UNDO], undo=1, pending=stale)[0]["present"] == (
        _editing.empty_state())
    small = {"shapes": [*rect["shapes"][:2], {"type": "rect", "x0": 5, "y0": 5, "x1": 10,
                                              "y1": 35}]}
    assert _edit(annotate, start, fired=[GRAPH, UNDO], undo=1, relayout=small,
                 shown=shown)[0]["present"] == _editing.empty_state()


def test_a_drawing_derived_from_another_is_not_taken_for_this_one(annotate):
    start = _drawn([A, B], revision="r1")
    for revision in ["r0~5", "r1x~5", "~r1", "r"]:
        undone = _edit(annotate, start, fired=[UNDO], undo=1,
                       shown={"revision": revision, "paths": [A1, B]})[0]
        assert undone["present"] == _editing.empty_state()


# ------------------------------------------------ edits whose request got no answer at all

#: The outline :func:`open_work`'s history holds (a 30 x 20 image), and the same dragged.
SQUARE = "M 5,5 L 15,5 L 15,15 L 5,15 Z"
MOVED = "M2,2L25,2L25,18L2,18Z"


def _save_shown(app, tmp_path, annotate, drawn, shown) -> int:
    """The pixels of the mask :func:`annotate.save` writes for open_work's image, whose
    history was last drawn as ``drawn``, with ``shown`` in SHAPES_SHOWN."""
    meta, history, image_data = open_work()
    history = {**history, "drawn": drawn}
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    alert, work = as_callback(lambda: annotate.save(
        1, meta, history, None, None, "benign", "", "Dr Ada", image_data, *blank,
        None, None, None, None, None, None, None, None, shown,
    ), f"{ids.SAVE_BUTTON}.n_clicks", app=app, value=1)
    assert text_of(alert).startswith("Saved. Version 1"), text_of(alert)
    folder = tmp_path / "annotations" / meta["sha256"]
    mask = np.asarray(Image.open(folder / "v001_mask.png")) > 0
    # The page's snapshot of what was saved (the unsaved mark's) is of the same outline.
    svg = _shapes.svg_to_paths((folder / "v001.svg").read_text(), 30, 20)
    assert _shapes.same_geometry(work["paths"], svg)
    return int(mask.sum())


def test_save_writes_the_outline_on_screen_that_the_history_never_got(app, tmp_path,
                                                                      annotate):
    # A vertex dragged while the client restarted: the screen (drawing r0, the history's)
    # holds the edit, the history does not. Saved was the outline before it.
    shown = {"revision": "r0", "paths": [MOVED], "cuts": []}
    assert _save_shown(app, tmp_path, annotate, "r0", shown) == 23 * 16


def test_save_leaves_a_screen_of_another_drawing_alone(app, tmp_path, annotate):
    # The store tells of a screen drawn over since (an Undo's answer): not what is shown.
    shown = {"revision": "r0", "paths": [MOVED], "cuts": []}
    assert _save_shown(app, tmp_path, annotate, "r1", shown) == 10 * 10


def test_a_resync_records_the_edit_the_client_never_answered(annotate):
    # The page's script writes EDIT_RESYNC once the client answers again; nothing else
    # changed, and the edit on screen becomes an undo step of its own.
    start = _drawn([A, B])
    shown = {"revision": "r0", "paths": [A1, B]}
    out = _edit(annotate, start, fired=[f"{ids.EDIT_RESYNC}.data"], resync=1, shown=shown)
    assert _paths(out[0]) == [A1, B]
    assert out[0]["past"] == start["past"] + [start["present"]]
    assert out[6] is not dash.no_update  # the measurements and the unsaved mark follow


def test_the_downloads_are_of_the_outline_on_screen_too(app, annotate):
    meta, history, _image_data = open_work()

    def pixels(drawn) -> tuple[int, int]:
        drawn_history = {**history, "drawn": drawn}
        shown = {"revision": "r0", "paths": [MOVED], "cuts": []}
        svg = annotate.download_svg(1, meta, drawn_history, shown)["content"]
        png = annotate.download_png(1, meta, drawn_history, shown)["content"]
        from_svg = _shapes.paths_to_mask(_shapes.svg_to_paths(svg, 30, 20), (20, 30))
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(png)))) > 0
        return int(from_svg.sum()), int(mask.sum())

    assert pixels("r0") == (23 * 16, 23 * 16)
    assert pixels("r1") == (10 * 10, 10 * 10)  # another drawing's screen: left alone


def test_an_undo_after_a_drag_is_made_though_a_zoom_brings_it(annotate):
    """A vertex dragged, Ctrl+Z, then the image zoomed, each before the last answer: the
    zoom's request brings the drag (from the screen) and the press. The Undo came after
    the drag: it takes it back, though a graph event carried it."""
    start = _drawn([A, B])
    shown = {"revision": "r0", "paths": [A1, B]}
    zoom = {"xaxis.range[0]": 5, "xaxis.range[1]": 60}
    undone = _edit(annotate, start, fired=[GRAPH], relayout=zoom, undo=1, shown=shown)[0]
    assert _paths(undone) == [A, B] and undone["future"][0]["paths"] == [A1, B]
