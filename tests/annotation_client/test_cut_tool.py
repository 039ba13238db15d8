"""The *Cut away* tool: a closed path drawn on the image is taken off the outline.

Geometry (``_editing.cut_outline``), the graph's events (``_shapes.apply_relayout``
keeps cuts apart from regions), the edit callback (an undo step per cut, also when the cut
comes with edits whose answers were dropped) and the status line. The browser test
draws a cut with the mouse over a stand-in model's outline and checks the history and
the saved mask lost exactly that area, and Undo brings it back.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    as_callback,
    click,
    console_errors,
    find_component,
    serve_http,
    settled,
    slow_edits,
    store_data,
    text_of,
    upload,
    wait_for,
)
from _dash_helpers import edit_status as _screen_status
from _dash_helpers import graph_js as _js
from _dash_helpers import image_to_screen as _to_screen
from _dash_helpers import shape_paths as _shape_paths
from dash.exceptions import PreventUpdate
from PIL import Image

from annotation_client import _editing, _figure, _history, _shapes, create_app, ids

SHAPE = (80, 100)  # (height, width)
SHA = "c7" * 32
META = {"sha256": SHA, "name": "scan.png", "width": SHAPE[1], "height": SHAPE[0]}
GRAPH = f"{ids.ANNOTATION_GRAPH}.relayoutData"
PAGE = "p" * 16
A = "M10,10L60,10L60,50L10,50Z"  # 50 x 40
B = "M70,10L90,10L90,30L70,30Z"  # 20 x 20
A1 = "M5,5L60,10L60,50L10,50Z"  # A with its first vertex dragged
#: A band 10 px wide across A (x 30..40), from the top of the image to its bottom.
BAND = "M30,0L40,0L40,80L30,80Z"


def _mask(paths) -> np.ndarray:
    return _shapes.paths_to_mask(paths, SHAPE)


def _cut_shape(path: str) -> dict:
    """A path as plotly reports one drawn with *Cut away* (its newshape's name)."""
    return {"type": "path", "path": path, "name": _shapes.CUT_NAME, "editable": True}


def _region_shape(path: str) -> dict:
    return {"type": "path", "path": path, "editable": True}


# ------------------------------------------------------------------------- geometry


def test_a_cut_across_a_region_leaves_two_regions_and_the_other_region_as_it_was():
    state = _editing.cut_outline([A, B], [BAND], SHAPE, 32)
    assert state["action"] == "cut" and state["density"] == 32
    assert state["paths"][0] == B  # not reached: its exact path
    assert len(state["paths"]) == 3  # A in two
    expected = _mask([A, B]) & ~_mask([BAND])
    assert np.array_equal(_mask(state["paths"]), expected)
    assert state[_editing.CUT_REMOVED] == {"px": 400, "slivers": 0}


def test_a_cut_inside_a_region_makes_a_hole():
    hole = "M20,20L30,20L30,30L20,30Z"
    state = _editing.cut_outline([A], [hole], SHAPE, 32)
    assert len(state["paths"]) == 1 and len(_shapes.parse_path(state["paths"][0])) == 2
    assert np.array_equal(_mask(state["paths"]), _mask([A]) & ~_mask([hole]))
    assert state[_editing.CUT_REMOVED]["px"] == 100


def test_slivers_left_along_the_cut_go_with_it():
    # Cut from x=13 on: a strip 3 px wide is left of A, a sliver.
    state = _editing.cut_outline([A], ["M13,0L100,0L100,80L13,80Z"], SHAPE, 32)
    assert state["paths"] == []
    assert state[_editing.CUT_REMOVED] == {"px": 2000, "slivers": 1}
    # A piece wide enough but under 2 % of the region goes too: a 5x5 corner of
    # a 100x60 region (25 px of 6,000).
    big = "M0,10L100,10L100,70L0,70Z"
    corner = "M5,0L100,0L100,80L0,80L0,15L5,15Z"
    state = _editing.cut_outline([big], [corner], SHAPE, 32)
    assert state["paths"] == [] and state[_editing.CUT_REMOVED]["slivers"] == 1


def test_a_far_part_the_cut_did_not_touch_stays_however_small():
    tiny = "M92,60L95,60L95,63L92,63Z"  # a region of 9 px the cut does not reach
    state = _editing.cut_outline([A, tiny], [BAND], SHAPE, 32)
    assert tiny in state["paths"]


def test_a_cut_reaching_no_region_is_none():
    assert _editing.cut_outline([A], ["M70,60L90,60L90,70Z"], SHAPE, 32) is None
    assert _editing.cut_outline([], [BAND], SHAPE, 32) is None


def test_the_cut_note_gives_pixels_and_mm_squared():
    state = {_editing.CUT_REMOVED: {"px": 1234, "slivers": 0}}
    assert _editing.cut_note(state) == "removed 1,234 px²"
    assert _editing.cut_note(state, (0.1, 0.2)) == "removed 1,234 px², 24.7 mm²"
    state[_editing.CUT_REMOVED]["slivers"] = 2
    assert _editing.cut_note(state).endswith("; 2 slivers with it")
    assert _editing.cut_note({"action": "edit"}) is None
    assert _editing.cut_note({_editing.CUT_REMOVED: {"px": "many"}}) is None


def test_a_drawn_cut_is_no_region_of_the_graph_event():
    event = {"shapes": [_region_shape(A), _region_shape(B), _cut_shape(BAND)]}
    change = _shapes.apply_relayout([A, B], event)
    assert change.paths == [A, B] and change.cuts == [BAND]
    assert _shapes.apply_relayout([A], {"shapes[0].path": A1}).cuts == []


def test_the_cut_tool_draws_named_closed_paths():
    assert _figure.TOOL_DRAGMODES["cut"] == "drawclosedpath"
    assert _figure.newshape_style("cut")["name"] == _shapes.CUT_NAME
    assert "name" not in _figure.newshape_style("draw")
    figure = _figure.image_figure("data:,", 100, 80, "r", tool="cut")
    assert figure.layout.dragmode == "drawclosedpath"
    assert figure.layout.newshape.name == _shapes.CUT_NAME
    # The script writing the shown store keeps cuts apart under that name.
    assert f"s.name === '{_shapes.CUT_NAME}'" in _figure.FRESH_VIEW_SCRIPT


# ------------------------------------------------------------------- the edit callback


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _drawn(paths, revision="r0"):
    """A history whose present ``paths`` the graph was last sent as drawing ``revision``."""
    state = _editing.make_state(list(paths), "ai", density=32)
    history = _history.push(_history.new_history(_editing.empty_state(), image=SHA), state)
    return {**history, "drawn": revision}


def _edit(annotate, history, *, relayout, shown=None):
    """``edit``'s outputs for a graph event ``relayout`` with the shown store ``shown``."""
    return as_callback(lambda: annotate.edit(
        META, None, None, relayout, None, None, None, 32, 0.3, True, True,
        None, history, None, None, None, None, None, None, _grow=None, _shrink=None,
        page=PAGE, shown=shown,
    ), GRAPH)


def _status(annotate, history) -> str:
    return text_of(annotate.measure(history, META, None)[1])


def _figure_paths(figure) -> list[str]:
    return [s["path"] for s in figure.to_plotly_json()["operations"][0]["params"]["value"]]


def test_a_cut_is_one_undo_step_and_leaves_the_graph(annotate):
    start = _drawn([A, B])
    event = {"shapes": [_region_shape(A), _region_shape(B), _cut_shape(BAND)]}
    out = _edit(annotate, start, relayout=event)
    history, figure = out[0], out[1]
    assert history["present"]["action"] == "cut"
    assert history["past"] == start["past"] + [start["present"]]  # one undo step
    assert np.array_equal(_mask(history["present"]["paths"]), _mask([A, B]) & ~_mask([BAND]))
    # The graph is drawn again with the outline alone: the cut's path is gone.
    assert _figure_paths(figure) == history["present"]["paths"]
    assert isinstance(out[6], int)  # the outline's echo: measured again
    assert "last change: cut (removed 400 px²)" in _status(annotate, history)
    undone = _history.undo(history)
    assert undone["present"]["paths"] == [A, B]


def test_two_cuts_drawn_before_an_answer_are_two_undo_steps(annotate):
    """Both cuts arrive in one event; Undo takes back the second alone, then the first."""
    start = _drawn([A, B])
    corner = "M80,0L100,0L100,20L80,20Z"  # B's top-right quarter (x 80..90, y 10..20)
    miss = "M70,60L90,60L90,70Z"  # reaches no outline: no step of its own
    event = {"shapes": [_region_shape(A), _region_shape(B), _cut_shape(BAND),
                        _cut_shape(miss), _cut_shape(corner)]}
    history = _edit(annotate, start, relayout=event)[0]
    assert [s["action"] for s in history["past"][-2:]] == ["ai", "cut"]
    assert len(history["past"]) == len(start["past"]) + 2
    assert np.array_equal(_mask(history["present"]["paths"]),
                          _mask([A, B]) & ~_mask([BAND]) & ~_mask([corner]))
    assert history["present"][_editing.CUT_REMOVED] == {"px": 100, "slivers": 0}
    once = _history.undo(history)
    assert np.array_equal(_mask(once["present"]["paths"]), _mask([A, B]) & ~_mask([BAND]))
    assert _history.undo(once)["present"]["paths"] == [A, B]


def test_a_cut_with_a_known_pixel_spacing_gives_mm_squared(annotate):
    history = _edit(annotate, _drawn([A]), relayout={
        "shapes": [_region_shape(A), _cut_shape(BAND)]})[0]
    status = text_of(annotate.measure(history, {**META, "pixel_spacing_mm": [0.1, 0.1]},
                                      None)[1])
    assert "last change: cut (removed 400 px², 4.0 mm²)" in status


def test_a_cut_where_there_is_no_outline_says_so_and_changes_nothing(annotate):
    start = _drawn([A])
    miss = "M70,60L90,60L90,70Z"
    out = _edit(annotate, start, relayout={"shapes": [_region_shape(A), _cut_shape(miss)]})
    history = out[0]
    assert history["present"] == start["present"] and history["past"] == start["past"]
    assert _figure_paths(out[1]) == [A]  # the cut's path is taken off the graph
    assert isinstance(out[6], int)  # measured again, to say so
    status = _status(annotate, history)
    assert _editing.CUT_MISSED_TEXT in status and "last change: ai" in status
    # The next answer's drawing no longer says it.
    later = _edit(annotate, history, relayout={"shapes[0].path": A1})[0]
    assert _editing.CUT_MISSED_TEXT not in _status(annotate, later)


def test_a_cut_drawn_before_a_drag_was_answered_is_a_cut(annotate):
    """A vertex dragged, then a cut drawn before the drag's answer came: the cut's
    request carries the history of before the drag, and the screen with both."""
    start = _drawn([A, B])
    shown = {"revision": "r0", "paths": [A1, B], "cuts": [BAND]}
    event = {"shapes": [_region_shape(A1), _region_shape(B), _cut_shape(BAND)]}
    history = _edit(annotate, start, relayout=event, shown=shown)[0]
    assert [s["action"] for s in history["past"][-1:]] == ["edit"]
    assert history["past"][-1]["paths"] == [A1, B]  # the drag, kept
    assert history["present"]["action"] == "cut"
    expected = _mask([A1, B]) & ~_mask([BAND])
    # A1's slanted edges (about 100 px) are vectorized again: within a pixel of them.
    assert (_mask(history["present"]["paths"]) ^ expected).sum() <= 60
    assert not (_mask(history["present"]["paths"]) & _mask([BAND])).any()


def test_a_drag_made_before_a_cut_was_answered_keeps_the_cut(annotate):
    """A cut drawn, then a vertex of B dragged before the cut's answer came: the drag's
    event names B by its number on a screen that still shows the cut's path."""
    start = _drawn([A, B])
    b1 = "M70,10L95,5L90,30L70,30Z"
    shown = {"revision": "r0", "paths": [A, b1], "cuts": [BAND]}
    history = _edit(annotate, start, relayout={"shapes[1].path": b1}, shown=shown)[0]
    assert history["present"]["action"] == "cut"
    expected = _mask([A, b1]) & ~_mask([BAND])
    assert np.array_equal(_mask(history["present"]["paths"]), expected)


def test_a_cut_on_a_screen_of_another_drawing_comes_from_its_event(annotate):
    start = _drawn([A], revision="r1")
    shown = {"revision": "r0", "paths": [A], "cuts": [BAND]}  # out of date
    history = _edit(annotate, start, relayout={
        "shapes": [_region_shape(A), _cut_shape(BAND)]}, shown=shown)[0]
    assert history["present"]["action"] == "cut" and len(history["past"]) == 2


def test_a_drawn_region_still_adds_a_region(annotate):
    c = "M20,60L40,60L40,75L20,75Z"
    history = _edit(annotate, _drawn([A]), relayout={
        "shapes": [_region_shape(A), _region_shape(c)]},
        shown={"revision": "r0", "paths": [A, c], "cuts": []})[0]
    assert history["present"]["action"] == "edit" and history["present"]["paths"] == [A, c]


def test_the_tool_bar_offers_cut_and_a_new_image_opens_with_pan(annotate):
    tools = find_component(annotate._tool_bar(), ids.TOOL)
    assert "cut" in [o["value"] for o in tools.options]
    assert annotate.reset_tool({"at": 1}, "cut") == annotate.DEFAULT_TOOL
    patch = annotate.choose_tool("cut", META).to_plotly_json()["operations"]
    assert {"dragmode": "drawclosedpath"} in [
        {op["location"][-1]: op["params"]["value"]} for op in patch]
    with pytest.raises(PreventUpdate):
        annotate.reset_tool({"at": 1}, "pan")


def test_the_c_key_picks_the_cut_tool():
    script = (Path(__file__).resolve().parents[2] / "annotation_client" / "assets"
              / "sonotrace.js").read_text()
    assert 'key === "c"' in script
    assert "_dbcprivate_radioitems_" + ids.TOOL + "_input_cut" in script


# ------------------------------------------------------------------------- the browser

WIDTH, HEIGHT = 240, 180
#: The stand-in model's outline: a rectangle over-segmented downwards (the shadow).
OUTLINE_BOX = (60, 40, 180, 150)  # x0, y0, x1, y1, pixel edges


class _StandInModel(HealthyModelServer):
    """A model server that outlines :data:`OUTLINE_BOX` in any image."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        vertices = int(parse_qs(urlparse(self.path).query).get("max_vertices", ["32"])[0])
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        x0, y0, x1, y1 = OUTLINE_BOX
        mask[y0:y1, x0:x1] = True
        self.send_outline(mask, vertices)


def _stand_in_model():
    return serve_http(_StandInModel)


def _to_image(dash_duo, sx, sy) -> tuple[float, float]:
    """Image point (x, y) of the viewport pixel (sx, sy)."""
    return tuple(_js(
        dash_duo,
        "var fl = gd._fullLayout, r = gd.getBoundingClientRect();"
        "return [fl.xaxis.p2l(arguments[0] - r.left - fl.xaxis._offset),"
        "        fl.yaxis.p2l(arguments[1] - r.top - fl.yaxis._offset)];", sx, sy))


@pytest.mark.browser
def test_a_cut_drawn_with_the_mouse_takes_that_area_off_and_undo_brings_it_back(
    dash_duo, data_dir, tmp_path
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    frame = tmp_path / "frame.png"
    ramp = np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) * 255 // (WIDTH + HEIGHT)
    Image.fromarray(ramp.astype(np.uint8)).save(frame)
    with _stand_in_model() as url:
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir})
        dash_duo.start_server(app)
        driver = dash_duo.driver
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
        # The upload field is in the layout from the start: wait for the page load's
        # callbacks, the recall of a stored name among them (it would write over one typed).
        settled(dash_duo, quiet=0.5)
        driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr. Cut", Keys.TAB)
        upload(dash_duo, frame)
        wait_for(dash_duo, lambda: "last change: ai" in _screen_status(dash_duo), 30,
                 "no AI outline")
        ai = _history_of(dash_duo)["present"]["paths"]
        ai_mask = _shapes.paths_to_mask(ai, (HEIGHT, WIDTH))
        x0, y0, x1, y1 = OUTLINE_BOX
        assert ai_mask.sum() == (x1 - x0) * (y1 - y0)

        # C picks the tool (the focus on the page, not in a field).
        driver.execute_script("document.activeElement.blur();")
        ActionChains(driver).send_keys("c").perform()
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;")
                 == "drawclosedpath", 10, "C did not pick a drawing tool")
        assert driver.find_element(By.ID, "_dbcprivate_radioitems_tool_input_cut").is_selected()
        assert _js(dash_duo, "return gd._fullLayout.newshape.name;") == _shapes.CUT_NAME
        # Back to Pan and pick it with the mouse, as the radiologist would.
        click(driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='Pan']")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "pan")
        click(driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='Cut away']")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;")
                 == "drawclosedpath")

        # The lower part of the outline (the "shadow"), from below the image's middle
        # out past the outline's sides and foot, with real mouse moves.
        driver.execute_script("document.getElementById('annotation-graph')"
                              ".scrollIntoView({block: 'center', behavior: 'instant'});")
        corners = [(40, 110), (200, 110), (200, 170), (40, 170)]
        points = [_to_screen(dash_duo, x, y) for x, y in corners]
        chain = ActionChains(driver).move_to_location(*points[0]).click_and_hold()
        for point in points[1:] + points[:1]:
            chain.move_to_location(*point)
        chain.release().perform()
        wait_for(dash_duo, lambda: "last change: cut" in _screen_status(dash_duo), 15,
                 "the cut was not recorded")
        settled(dash_duo, quiet=1.0)

        # The cut as drawn on screen, in image pixels: where the mouse went.
        drawn = [_to_image(dash_duo, *p) for p in points]
        cutter = _shapes.paths_to_mask([_shapes.format_path([drawn])], (HEIGHT, WIDTH))
        expected = ai_mask & ~cutter
        history = _history_of(dash_duo)
        assert history["present"]["action"] == "cut"
        assert len(history["past"]) == 2  # open, the AI outline: the cut is one step more
        after = _shapes.paths_to_mask(history["present"]["paths"], (HEIGHT, WIDTH))
        # The cut's top edge falls within a pixel of where it was drawn, across the
        # outline's 120 px: at most 2 rows of it differ.
        assert (after ^ expected).sum() <= 2 * (x1 - x0), (after ^ expected).sum()
        assert not after[115:, :].any() and after[y0:105, x0:x1].all()
        # The screen shows the history's outline, and the cut's path is gone.
        assert len(_shape_paths(dash_duo)) == len(history["present"]["paths"]) == 1
        assert _js(dash_duo, "return gd.layout.shapes.filter(s => s.name === 'cut').length;") == 0
        removed = int(ai_mask.sum() - after.sum())
        assert f"removed {removed:,} px²" in _screen_status(dash_duo)

        # Saved: the mask on disk is the cut outline's.
        click(driver, By.ID, ids.SAVE_BUTTON)
        wait_for(dash_duo, lambda: driver.find_elements(
            By.CSS_SELECTOR, f"#{ids.SAVE_ALERT} [data-version]"), 20, "not saved")
        saved = sorted(data_dir.rglob("*.png"))
        masks = [p for p in saved if "mask" in p.name]
        assert masks, saved
        on_disk = np.asarray(Image.open(masks[-1])) > 0
        assert np.array_equal(on_disk, after)

        # Undo brings the outline of before back, on screen and in the history.
        click(driver, By.ID, ids.UNDO_BUTTON)
        wait_for(dash_duo, lambda: "last change: ai" in _screen_status(dash_duo), 10,
                 "undo did not bring the outline back")
        settled(dash_duo, quiet=1.0)
        restored = _shapes.paths_to_mask(_history_of(dash_duo)["present"]["paths"],
                                         (HEIGHT, WIDTH))
        assert np.array_equal(restored, ai_mask)
        assert np.array_equal(_shapes.paths_to_mask(_shape_paths(dash_duo), (HEIGHT, WIDTH)),
                              ai_mask)

        # A new image opens with Pan, not Cut.
        click(driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='Cut away']")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;")
                 == "drawclosedpath")
        other = tmp_path / "other.png"
        Image.fromarray(255 - ramp.astype(np.uint8)).save(other)
        driver.execute_script("window.confirm = function () { return true; };")
        upload(dash_duo, other)
        wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "other.png")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "pan",
                 10, "the cut tool carried over to the next image")
        errors = console_errors(dash_duo)
        assert not errors, "browser console errors:\n" + "\n".join(errors)


#: How long the server takes over a request of the edit callback (see slow_edits).
EDIT_ANSWER_S = 1.5



@pytest.mark.browser
def test_a_cut_drawn_right_after_a_drag_keeps_both_and_adds_no_region(
    dash_duo, data_dir, tmp_path
):
    """A vertex dragged, then a cut drawn before the drag's answer came back: the
    browser drops the drag's answer; the cut's request brings both, the drag first."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    frame = tmp_path / "frame.png"
    ramp = np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) * 255 // (WIDTH + HEIGHT)
    Image.fromarray(ramp.astype(np.uint8)).save(frame)
    with _stand_in_model() as url:
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir})
        slow_edits(app, EDIT_ANSWER_S)
        dash_duo.start_server(app)
        driver = dash_duo.driver
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
        upload(dash_duo, frame)
        wait_for(dash_duo, lambda: "last change: ai" in _screen_status(dash_duo), 30,
                 "no AI outline")
        settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
        click(driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='Cut away']")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;")
                 == "drawclosedpath")
        driver.execute_script("document.getElementById('annotation-graph')"
                              ".scrollIntoView({block: 'center', behavior: 'instant'});")
        # The drag: the outline's top-left corner pulled up and left, as plotly reports
        # a dragged vertex (that one shape).
        x0, y0, x1, y1 = OUTLINE_BOX
        dragged = f"M{x0 - 20},{y0 - 20}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"
        _js(dash_duo, "Plotly.relayout(gd, {'shapes[0].path': arguments[0]});", dragged)
        # At once, the cut with the mouse: the outline's foot.
        points = [_to_screen(dash_duo, x, y) for x, y in
                  [(40, 110), (200, 110), (200, 170), (40, 170)]]
        chain = ActionChains(driver).move_to_location(*points[0]).click_and_hold()
        for point in points[1:] + points[:1]:
            chain.move_to_location(*point)
        chain.release().perform()
        wait_for(dash_duo, lambda: "last change: cut" in _screen_status(dash_duo), 20,
                 "the cut was not recorded")
        settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)

        history = _history_of(dash_duo)
        assert [s["action"] for s in history["past"][-2:]] == ["ai", "edit"]
        assert history["present"]["action"] == "cut"
        after = _shapes.paths_to_mask(history["present"]["paths"], (HEIGHT, WIDTH))
        drawn = [_to_image(dash_duo, *p) for p in points]
        cutter = _shapes.paths_to_mask([_shapes.format_path([drawn])], (HEIGHT, WIDTH))
        expected = _shapes.paths_to_mask([dragged], (HEIGHT, WIDTH)) & ~cutter
        # The drag's slanted edges (about 160 px) are vectorized again, within a pixel.
        assert (after ^ expected).sum() <= 2 * 160, (after ^ expected).sum()
        assert after[y0 - 10, x0 - 5] and not after[120:, :].any()  # the drag, the cut
        assert len(history["present"]["paths"]) == 1  # no region added
        # Screen and history agree; the cut's path is gone.
        assert _shape_paths(dash_duo) == history["present"]["paths"]
        errors = console_errors(dash_duo)
        assert not errors, "browser console errors:\n" + "\n".join(errors)


def _history_of(dash_duo) -> dict:
    return store_data(dash_duo, ids.HISTORY)
