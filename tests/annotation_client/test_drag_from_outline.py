"""Browser tests: a drag of a drawing tool that starts on the outline's edge.

plotly.js gives an editable shape's edge the mouse: a press there selects the outline
instead of reaching the plot below it, so a *Box re-segment* or *Cut away* drag started
on the edge did nothing. The outline is editable only while the mouse pans or zooms
(``_figure.OUTLINE_EDITING_SCRIPT``): there a click on its edge still selects it and its
vertices can be dragged; a drawing tool draws from wherever the drag starts.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    console_errors,
    gradient_png,
    serve_http,
    settled,
    store_data,
    upload,
    wait_for,
)
from _dash_helpers import edit_status as _status
from _dash_helpers import graph_js as _js
from _dash_helpers import image_to_screen as _to_screen
from _dash_helpers import shape_paths as _shape_paths
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import _shapes, create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 240, 180
#: The stand-in model's outline of the whole image: a rectangle (pixel edges).
OUTLINE = (60, 40, 180, 140)  # x0, y0, x1, y1
#: A point on the middle of the outline's top edge, where a drag below starts.
EDGE = (120, 40)
#: Inside a box, the stand-in model outlines a rectangle this far in from its sides.
INSET = 15


def _mask_of(*rectangles) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for x0, y0, x1, y1 in rectangles:
        mask[y0:y1, x0:x1] = True
    return mask


class _StandInModel(HealthyModelServer):
    """A model server that outlines :data:`OUTLINE`, and inside a box the rectangle
    :data:`INSET` px in from its sides; the boxes asked for are kept."""

    asked_boxes: list[tuple[int, ...]] = []
    delay = 0.0  # seconds a box's answer takes

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = parse_qs(urlparse(self.path).query)
        vertices = int(query.get("max_vertices", ["32"])[0])
        if "box" in query:
            x0, y0, x1, y1 = (int(v) for v in query["box"][0].split(","))
            self.asked_boxes.append((x0, y0, x1, y1))
            time.sleep(self.delay)
            mask = _mask_of((x0 + INSET, y0 + INSET, x1 - INSET, y1 - INSET))
        else:
            mask = _mask_of(OUTLINE)
        self.send_outline(mask, vertices)


@contextlib.contextmanager
def _stand_in_model():
    handler = type("Model", (_StandInModel,), {"asked_boxes": []})
    with serve_http(handler) as url:
        yield handler, url


def _open(dash_duo, url, data_dir, tmp_path) -> list[str]:
    """Start the client, open a frame and wait for the stand-in's outline; its paths."""
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir}))
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
    wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30, _status(dash_duo))
    settled(dash_duo, quiet=0.5)
    paths = _shape_paths(dash_duo)
    assert np.array_equal(_shapes.paths_to_mask(paths, (HEIGHT, WIDTH)), _mask_of(OUTLINE))
    _show_graph(dash_duo)
    return paths


def _show_graph(dash_duo) -> None:
    dash_duo.driver.execute_script("document.getElementById('annotation-graph')"
                                   ".scrollIntoView({block: 'center', behavior: 'instant'});")


def _pick(dash_duo, label: str, dragmode: str) -> None:
    """Pick a tool, and bring the graph back to the middle of the window (the click
    scrolled to the tool bar)."""
    click(dash_duo.driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='{label}']")
    wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == dragmode, 10,
             f"{label} did not set the mouse to {dragmode}")
    settled(dash_duo, quiet=0.5)
    _show_graph(dash_duo)


def _on_outline(dash_duo, sx, sy) -> bool:
    """Whether the press at viewport pixel (sx, sy) goes to an outline shape."""
    return dash_duo.driver.execute_script(
        "var e = document.elementFromPoint(arguments[0], arguments[1]);"
        "return !!(e && e.closest('#annotation-graph .shapelayer'));", sx, sy)


def _edge_is_under_the_mouse(dash_duo) -> None:
    """Check that a press at :data:`EDGE` goes to the outline with the Pan tool: the
    drags below start where plotly.js took the press."""
    assert _on_outline(dash_duo, *_to_screen(dash_duo, *EDGE)), "EDGE is not on the outline"


def _selected(dash_duo):
    return _js(dash_duo, "return gd._fullLayout._activeShapeIndex;")


def _vertex_handles(dash_duo) -> list[dict]:
    return _js(
        dash_duo,
        "return Array.from(document.querySelectorAll("
        "  '#annotation-graph .outline-controllers circle')).map(c => {"
        "  var b = c.getBoundingClientRect();"
        "  return {x: Math.round(b.left + b.width / 2), y: Math.round(b.top + b.height / 2)};"
        "});",
    )


def _history(dash_duo) -> dict:
    return store_data(dash_duo, ids.HISTORY)


def _assert_clean_console(dash_duo) -> None:
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_a_box_drawn_from_the_outline_edge_is_segmented(dash_duo, data_dir, tmp_path):
    with _stand_in_model() as (model, url):
        _open(dash_duo, url, data_dir, tmp_path)
        _edge_is_under_the_mouse(dash_duo)
        _pick(dash_duo, "Box re-segment", "drawrect")
        start = _to_screen(dash_duo, *EDGE)
        assert not _on_outline(dash_duo, *start), "the outline takes the box tool's press"

        corner = (210, 170)
        end = _to_screen(dash_duo, *corner)
        ActionChains(dash_duo.driver).move_to_location(*start).click_and_hold().move_to_location(
            start[0] + 20, start[1] + 20).move_to_location(*end).release().perform()
        wait_for(dash_duo, lambda: "last change: box" in _status(dash_duo), 20,
                 f"the box drawn from the edge did nothing: {_status(dash_duo)!r}")
        # The box asked for is the one dragged, from the edge (within a pixel).
        assert len(model.asked_boxes) == 1
        box = model.asked_boxes[0]
        assert np.allclose(box, (*EDGE, *corner), atol=1), box
        settled(dash_duo, quiet=0.5)
        history = _history(dash_duo)
        assert history["present"]["action"] == "box"
        assert _shapes.same_geometry(_shape_paths(dash_duo), history["present"]["paths"])
        after = _shapes.paths_to_mask(history["present"]["paths"], (HEIGHT, WIDTH))
        # The box's outline replaced the outline it overlapped.
        x0, y0, x1, y1 = box
        assert np.array_equal(after, _mask_of((x0 + INSET, y0 + INSET, x1 - INSET, y1 - INSET)))
        # The redrawn outline does not take the box tool's presses either.
        settled(dash_duo, quiet=0.5)
        inner = _to_screen(dash_duo, (x0 + x1) / 2, y0 + INSET)
        assert not _on_outline(dash_duo, *inner)
        _assert_clean_console(dash_duo)


def test_a_cut_drawn_from_the_outline_edge_takes_that_area_off(dash_duo, data_dir, tmp_path):
    with _stand_in_model() as (_model, url):
        _open(dash_duo, url, data_dir, tmp_path)
        _edge_is_under_the_mouse(dash_duo)
        _pick(dash_duo, "Cut away", "drawclosedpath")
        start = _to_screen(dash_duo, *EDGE)

        # Down into the outline from its top edge, across and back up out of it.
        corners = [EDGE, (120, 80), (200, 80), (200, 20), (120, 20)]
        points = [start] + [_to_screen(dash_duo, x, y) for x, y in corners[1:]]
        chain = ActionChains(dash_duo.driver).move_to_location(*points[0]).click_and_hold()
        for point in points[1:] + points[:1]:
            chain.move_to_location(*point)
        chain.release().perform()
        wait_for(dash_duo, lambda: "last change: cut" in _status(dash_duo), 20,
                 f"the cut drawn from the edge did nothing: {_status(dash_duo)!r}")
        settled(dash_duo, quiet=0.5)
        history = _history(dash_duo)
        assert history["present"]["action"] == "cut"
        after = _shapes.paths_to_mask(history["present"]["paths"], (HEIGHT, WIDTH))
        x0, y0, x1, y1 = OUTLINE
        # The top right corner of the outline is gone, to the cut's foot (within a pixel).
        assert not after[y0:78, 122:x1].any() and after[82:y1, x0:x1].all()
        assert after[y0:y1, x0:118].all()
        _assert_clean_console(dash_duo)


def test_the_pan_tool_still_edits_and_a_drawing_tool_drops_the_selection(
    dash_duo, data_dir, tmp_path
):
    with _stand_in_model() as (_model, url):
        ai = _open(dash_duo, url, data_dir, tmp_path)
        driver = dash_duo.driver
        _edge_is_under_the_mouse(dash_duo)
        ActionChains(driver).move_to_location(*_to_screen(dash_duo, *EDGE)).click().perform()
        wait_for(dash_duo, lambda: _selected(dash_duo) == 0 and _vertex_handles(dash_duo), 10,
                 "a click on the edge did not select the outline")

        # A drawing tool draws: the outline is no longer selected (Delete would erase it
        # unseen), and its handles are gone.
        _pick(dash_duo, "Box re-segment", "drawrect")
        wait_for(dash_duo, lambda: _selected(dash_duo) is None and not _vertex_handles(dash_duo),
                 10, "the outline stayed selected under the box tool")
        ActionChains(driver).send_keys(Keys.DELETE).perform()
        settled(dash_duo, quiet=0.5)
        assert _shape_paths(dash_duo) == ai

        # Back to Pan: a click on the edge selects it, and a vertex dragged is an edit.
        _pick(dash_duo, "Pan", "pan")
        ActionChains(driver).move_to_location(*_to_screen(dash_duo, *EDGE)).click().perform()
        wait_for(dash_duo, lambda: _selected(dash_duo) == 0 and _vertex_handles(dash_duo), 10,
                 "a click on the edge no longer selects the outline with Pan")
        corner = _to_screen(dash_duo, OUTLINE[0], OUTLINE[1])
        handle = min(_vertex_handles(dash_duo),
                     key=lambda h: abs(h["x"] - corner[0]) + abs(h["y"] - corner[1]))
        chain = ActionChains(driver).move_to_location(handle["x"], handle["y"]).click_and_hold()
        for step in range(1, 6):
            chain.move_to_location(handle["x"] - 4 * step, handle["y"] - 4 * step)
        chain.release().perform()
        wait_for(dash_duo, lambda: "last change: edit" in _status(dash_duo), 10,
                 "the vertex drag was not recorded")
        settled(dash_duo, quiet=0.5)
        history = _history(dash_duo)
        assert len(history["present"]["paths"]) == 1
        # The top left corner went up and left, out of the rectangle.
        ring = _shapes.parse_path(history["present"]["paths"][0])[0]
        assert min(x for x, _ in ring) < OUTLINE[0] - 2 and min(y for _, y in ring) < OUTLINE[1] - 2

        # The mode bar's buttons count as the tool bar's: its closed-path pen draws from
        # the edge too (and drops the selection), its pan edits again.
        wait_for(dash_duo, lambda: _selected(dash_duo) == 0, 10, "the drag dropped the selection")
        for mode, edits in (("drawclosedpath", False), ("pan", True)):
            _js(dash_duo, "gd.querySelector('.modebar-btn[data-attr=\"dragmode\"]"
                          "[data-val=\"' + arguments[0] + '\"]').click();", mode)
            point = _to_screen(dash_duo, OUTLINE[2], 90)  # the right edge: not moved
            wait_for(dash_duo, lambda p=point, e=edits: _on_outline(dash_duo, *p) is e, 10,
                     f"the outline is {'not ' if edits else ''}editable in {mode}")
            if not edits:
                assert _selected(dash_duo) is None
        _assert_clean_console(dash_duo)


def test_a_calibration_line_drawn_from_the_outline_edge_is_measured(dash_duo, data_dir, tmp_path):
    with _stand_in_model() as (_model, url):
        _open(dash_duo, url, data_dir, tmp_path)
        driver = dash_duo.driver
        _edge_is_under_the_mouse(dash_duo)
        click(driver, By.ID, ids.SPACING_CALIBRATE)
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "drawline",
                 10, "Calibrate did not turn the mouse into a line pen")
        settled(dash_duo, quiet=0.5)
        _show_graph(dash_duo)
        # From the edge, 80 px to the right and 60 down: 100 px long.
        start, end = _to_screen(dash_duo, *EDGE), _to_screen(dash_duo, EDGE[0] + 80, EDGE[1] + 60)
        ActionChains(driver).move_to_location(*start).click_and_hold().move_to_location(
            start[0] + 20, start[1] + 10).move_to_location(*end).release().perform()
        text = wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.SPACING_LINE_TEXT).text,
                        10, "the line drawn from the edge was not measured")
        pixels = float(text.removeprefix("Line ").removesuffix(" px ="))
        per_screen_px = 80 / (end[0] - start[0])  # a screen pixel's rounding, in the image
        assert abs(pixels - 100) <= 2 * per_screen_px + 1, text
        # The tool's mouse back, the outline is editable again.
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "pan", 10)
        _show_graph(dash_duo)
        wait_for(dash_duo, lambda: _on_outline(dash_duo, *_to_screen(dash_duo, *EDGE)), 10,
                 "the outline is not editable again after the calibration")
        _assert_clean_console(dash_duo)


#: How long the stand-in holds a box's answer in the test of a drag during that wait.
BOX_WAIT_S = 6.0


def test_a_drag_from_the_edge_while_a_box_is_segmented_does_not_move_the_outline(
    dash_duo, data_dir, tmp_path
):
    """The box tool owns the mouse until its box is answered: a drag from the outline's
    edge during the wait draws with the box tool, and moves no outline.
    ask_box redraws the outline editable, as drawn, for the wait; the outline-editing
    script takes that off again at once (an audit saw the outline move: not reproduced,
    this holds it)."""
    with _stand_in_model() as (model, url):
        model.delay = BOX_WAIT_S
        _open(dash_duo, url, data_dir, tmp_path)
        _pick(dash_duo, "Box re-segment", "drawrect")
        start, end = _to_screen(dash_duo, 40, 20), _to_screen(dash_duo, 100, 80)
        ActionChains(dash_duo.driver).move_to_location(*start).click_and_hold().move_to_location(
            start[0] + 20, start[1] + 20).move_to_location(*end).release().perform()
        wait_for(dash_duo, lambda: model.asked_boxes, 10, "the box was not asked")
        # The rectangle taken off the graph, the outline redrawn for the wait.
        wait_for(dash_duo, lambda: len(_shape_paths(dash_duo)) == 1, 5)
        outline = _shape_paths(dash_duo)
        edge = _to_screen(dash_duo, 180, 120)  # the outline's right edge, away from the box
        assert not _on_outline(dash_duo, *edge), "the outline takes the box tool's press"
        ActionChains(dash_duo.driver).move_to_location(*edge).click_and_hold().move_to_location(
            edge[0] + 10, edge[1] + 10).move_to_location(edge[0] + 30, edge[1] + 25).release(
            ).perform()
        assert _shapes.same_geometry(_shape_paths(dash_duo)[:1], outline), "the outline moved"
        wait_for(dash_duo, lambda: "last change: box" in _status(dash_duo), 3 * BOX_WAIT_S + 20,
                 _status(dash_duo))
        settled(dash_duo, quiet=1.0)
        actions = [s["action"] for s in _history(dash_duo)["past"]]
        assert "edit" not in actions, actions
        _assert_clean_console(dash_duo)
