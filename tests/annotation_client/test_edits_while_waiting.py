"""Browser tests: outline edits made while an answer that changes the outline is on its way.

The browser keeps only the newest answer of the edit callback, and holds that callback
while a box's re-segmentation is asked: a slider move whose answer was dropped by the
drag after it, and graph edits made while the model server segments a box, must still
reach the screen, the undo history and the slider alike.
"""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    closed_port,
    console_errors,
    gradient_png,
    settled,
    slow_edits,
    store_data,
    wait_for,
)
from _dash_helpers import edit_status as _status
from _dash_helpers import graph_js as _js
from _dash_helpers import image_to_screen as _to_screen
from _dash_helpers import shape_paths as _shape_paths
from _dash_helpers import upload as _upload
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import _shapes, create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 256, 200
#: How long the server takes over a request of the edit callback (see slow_edits): long
#: enough that the slider's answer cannot come before the drag made after it, even with
#: the WebDriver round trips in between slowed down by a busy machine.
EDIT_ANSWER_S = 3.0
#: How long the stand-in model server holds a box's answer (see _StandInModel).
BOX_ANSWER_S = 4.0


# --------------------------------------------------------------------------- helpers


def _same(paths) -> list[str]:
    return [_shapes.format_path(_shapes.parse_path(p)) for p in paths]



def _assert_clean_console(dash_duo) -> None:
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def _agree(dash_duo, quiet: float) -> dict:
    """The history, once the page is quiet, after checking the screen shows its present."""
    settled(dash_duo, quiet=quiet)
    history = _history(dash_duo)
    assert _same(_shape_paths(dash_duo)) == _same(history["present"]["paths"]), (
        "screen and history differ")
    return history


def _square(x0, y0, x1, y1) -> str:
    return f"M{x0},{y0}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"


# --------------------------------------------------------------- the slider, then a drag


def _circle(cx, cy, r, n) -> str:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    points = [(round(cx + r * np.cos(a), 1), round(cy + r * np.sin(a), 1)) for a in angles]
    return "M" + "L".join(f"{x},{y}" for x, y in points) + "Z"


def test_a_vertex_dragged_before_the_density_is_answered_keeps_the_density(
    dash_duo, data_dir, tmp_path
):
    """The slider moved, then a vertex dragged before the slider's answer came: the
    browser dropped that answer, and the slider showed the new density over an outline
    of the old one. Now the next answer applies the density the slider shows."""
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 3})
    slow_edits(app, EDIT_ANSWER_S)
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element("#server-alert-message", timeout=20)
    _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "frame.png")
    # The open's own (slow) edit requests answered: the drawing comes after them.
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    # A round region of 60 vertices, drawn by hand: at the slider's 32.
    _js(dash_duo, "Plotly.relayout(gd, {shapes: [{type: 'path', xref: 'x', yref: 'y',"
                  " path: arguments[0]}]});", _circle(128, 100, 60, 60))
    wait_for(dash_duo, lambda: "last change: edit" in _status(dash_duo), 10, "not recorded")
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    slider = driver.find_element(By.CSS_SELECTOR, f"#{ids.VERTEX_DENSITY} [role='slider']")
    assert slider.get_attribute("aria-valuenow") == "32"

    # The slider a step down (to 28), then a vertex dragged at once.
    slider.send_keys(Keys.ARROW_LEFT)
    wait_for(dash_duo, lambda: slider.get_attribute("aria-valuenow") == "28", 5)
    time.sleep(EDIT_ANSWER_S / 4)
    dragged = _circle(128, 100, 60, 60).replace("M188.0,100.0", "M200,100", 1)
    assert dragged != _circle(128, 100, 60, 60)
    _js(dash_duo, "Plotly.relayout(gd, {'shapes[0].path': arguments[0]});", dragged)
    assert _history(dash_duo)["present"]["action"] == "edit", (
        "the slider's answer came before the drag: too slow to test")

    history = _agree(dash_duo, EDIT_ANSWER_S + 1.0)
    shown = int(slider.get_attribute("aria-valuenow"))
    assert history["present"]["density"] == shown, (
        f"the slider shows {shown}, the outline was drawn at {history['present']['density']}")
    assert shown == 28
    assert _shapes.vertex_count(_shape_paths(dash_duo)) <= 28
    # The drag is in it (the far right of the circle, moved out to x = 200), and undo
    # takes back the density, then the drag.
    assert max(x for x, _ in _shapes.parse_path(history["present"]["paths"][0])[0]) > 195
    assert [s["action"] for s in history["past"][-1:]] + [history["present"]["action"]] == [
        "edit", "density"]
    assert _same(history["past"][-1]["paths"]) == _same([dragged])
    click(driver, By.ID, ids.UNDO_BUTTON)
    wait_for(dash_duo, lambda: _same(_shape_paths(dash_duo)) == _same([dragged]), 10,
             "Undo did not give back the drag at the old density")
    wait_for(dash_duo, lambda: slider.get_attribute("aria-valuenow") == "32", 10,
             "the slider kept the undone density")
    _assert_clean_console(dash_duo)


# ------------------------------------------------------ edits while a box is segmented


#: The stand-in model's outline of the whole image: two squares, left and right.
LEFT = (40, 40, 100, 100)
RIGHT = (150, 40, 210, 100)


def _mask_of(*squares) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for x0, y0, x1, y1 in squares:
        mask[y0:y1, x0:x1] = True
    return mask


class _StandInModel(HealthyModelServer):
    """A model server that outlines :data:`LEFT` and :data:`RIGHT`, and inside a box
    a square 15 px in from its sides, that one after ``box_delay`` seconds."""

    box_delay = 0.0
    asked_boxes: list[float] = []  # time.monotonic() of each box's request

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = parse_qs(urlparse(self.path).query)
        vertices = int(query.get("max_vertices", ["32"])[0])
        if "box" in query:
            self.asked_boxes.append(time.monotonic())
            time.sleep(self.box_delay)
            x0, y0, x1, y1 = (int(v) for v in query["box"][0].split(","))
            mask = _mask_of((x0 + 15, y0 + 15, x1 - 15, y1 - 15))
        else:
            mask = _mask_of(LEFT, RIGHT)
        self.send_outline(mask, vertices)


@contextlib.contextmanager
def _stand_in_model():
    handler = type("Model", (_StandInModel,), {"asked_boxes": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _draw_box(dash_duo, x0, y0, x1, y1) -> None:
    """Drag a *Box re-segment* rectangle from image pixel (x0, y0) to (x1, y1)."""
    driver = dash_duo.driver
    click(driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='Box re-segment']")
    wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "drawrect")
    driver.execute_script("document.getElementById('annotation-graph')"
                          ".scrollIntoView({block: 'center', behavior: 'instant'});")
    start, end = _to_screen(dash_duo, x0, y0), _to_screen(dash_duo, x1, y1)
    ActionChains(driver).move_to_location(*start).click_and_hold().move_to_location(
        start[0] + 20, start[1] + 20).move_to_location(*end).release().perform()


def _inside(paths, x, y) -> bool:
    return bool(_shapes.paths_to_mask(paths, (HEIGHT, WIDTH))[y, x])


def test_edits_made_while_a_box_is_segmented_are_kept_under_the_box(
    dash_duo, data_dir, tmp_path
):
    """A box drawn, and while the model segments it the right region dragged, a region
    drawn and that one dragged. The box's request redrew the graph as a drawing the
    history did not know, so these edits went through the old one-shape handling: the
    box's answer drew the outline without them, and the history never held them. Now
    they are one undo step, and the box's outline replaces only the box's inside."""
    with _stand_in_model() as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 30})
        dash_duo.start_server(app)
        wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(f"#{ids.SERVER_STATUS}").text)
        _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30, _status(dash_duo))
        ai = _agree(dash_duo, 0.5)["present"]["paths"]
        assert len(ai) == 2

        model.box_delay = BOX_ANSWER_S
        _draw_box(dash_duo, 30, 30, 110, 110)  # around the left square
        wait_for(dash_duo, lambda: model.asked_boxes, 10, "the box was not asked")
        # The rectangle is off the graph; the model is still segmenting the box.
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd.layout.shapes.length;") == 2, 5)
        right = _shape_paths(dash_duo)[1]
        assert _inside([right], 180, 70)
        moved = _square(150, 40, 230, 100)  # the right square, widened by hand
        _js(dash_duo, "Plotly.relayout(gd, {'shapes[1].path': arguments[0]});", moved)
        drawn, drawn_moved = _square(150, 130, 200, 180), _square(150, 130, 220, 190)
        _js(dash_duo, "Plotly.relayout(gd, {shapes: gd.layout.shapes.concat([{type: 'path',"
                      " xref: 'x', yref: 'y', path: arguments[0]}])});", drawn)
        _js(dash_duo, "Plotly.relayout(gd, {'shapes[2].path': arguments[0]});", drawn_moved)
        assert time.monotonic() - model.asked_boxes[0] < BOX_ANSWER_S, "too slow to test"

        wait_for(dash_duo, lambda: "last change: box" in _status(dash_duo), BOX_ANSWER_S + 20,
                 _status(dash_duo))
        history = _agree(dash_duo, 1.0)
        present = history["present"]["paths"]
        # The edits of the wait are there, on screen and in the history.
        assert _inside(present, 225, 70) and _inside(present, 215, 185), present
        # Inside the box, the box's outline: the square 15 px in from its sides.
        assert _inside(present, 50, 50) and not _inside(present, 42, 42)
        # One undo step for the edits of the wait, under the box's step.
        assert [s["action"] for s in history["past"][-2:]] == ["ai", "edit"]
        assert history["present"]["action"] == "box"
        assert _same(history["past"][-1]["paths"]) == _same([ai[0], moved, drawn_moved])
        assert "made while the box was segmented" in _status(dash_duo), _status(dash_duo)
        click(dash_duo.driver, By.ID, ids.UNDO_BUTTON)
        wait_for(dash_duo, lambda: _same(_shape_paths(dash_duo))
                 == _same([ai[0], moved, drawn_moved]), 10, "Undo did not give the edits back")
        _assert_clean_console(dash_duo)


def _history(dash_duo) -> dict:
    return store_data(dash_duo, ids.HISTORY)


def _region_then_box_tool(dash_duo, model, tmp_path) -> tuple[list, str, tuple, tuple]:
    """The frame opened and outlined by the stand-in ``model``, a region drawn by hand
    below its left square, and *Box re-segment* picked, boxes answered BOX_ANSWER_S late.

    Returns the AI's paths, the region's, and the screen points a box around the right
    square is dragged from and to.
    """
    driver = dash_duo.driver
    wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(f"#{ids.SERVER_STATUS}").text)
    _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
    wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30, _status(dash_duo))
    ai = _agree(dash_duo, 0.5)["present"]["paths"]
    region = _square(20, 130, 80, 180)
    _js(dash_duo, "Plotly.relayout(gd, {shapes: gd.layout.shapes.concat([{type: 'path',"
                  " xref: 'x', yref: 'y', path: arguments[0]}])});", region)
    drawn = _agree(dash_duo, 0.5)
    assert drawn["present"]["action"] == "edit"
    assert _same(drawn["present"]["paths"]) == _same([*ai, region])

    model.box_delay = BOX_ANSWER_S
    click(driver, By.XPATH,
          f"//*[@id='{ids.TOOL}']//label[normalize-space()='Box re-segment']")
    wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "drawrect")
    driver.execute_script("document.getElementById('annotation-graph')"
                          ".scrollIntoView({block: 'center', behavior: 'instant'});")
    return ai, region, _to_screen(dash_duo, 140, 30), _to_screen(dash_duo, 220, 110)


def _late_box_events(dash_duo, delay_ms: int) -> None:
    """plotly.js's event of a shape drawn on the graph is sent ``delay_ms`` late, as a
    loaded browser sends it."""
    _js(dash_duo, """
        var emit = gd.emit;
        gd.emit = function (name, data) {
          var self = this, args = arguments;
          if (name === 'plotly_relayout' && data && data.shapes) {
            setTimeout(function () { emit.apply(self, args); }, DELAY);
            return;
          }
          return emit.apply(this, args);
        };""".replace("DELAY", str(int(delay_ms))))


def _steps(dash_duo) -> list:
    history = _history(dash_duo)
    return [s["action"] for s in history["past"] + [history["present"]] + history["future"]]


def test_two_undos_pressed_before_a_box_s_event_take_back_two_steps(dash_duo, data_dir,
                                                                     tmp_path):
    """Ctrl+Z twice as a box is released, its graph event late: the browser held both,
    then made them again at once, and Dash sent them in one edit call, as one Undo (the
    box undone, the region left). Made again an answer apart, both count."""
    with _stand_in_model() as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 30})
        dash_duo.start_server(app)
        driver = dash_duo.driver
        ai, _region, start, end = _region_then_box_tool(dash_duo, model, tmp_path)
        _late_box_events(dash_duo, 800)
        def undo():
            ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(
                Keys.CONTROL).perform()
        ActionChains(driver).move_to_location(*start).click_and_hold().move_to_location(
            start[0] + 20, start[1] + 20).move_to_location(*end).release().perform()
        undo()
        time.sleep(0.2)
        undo()
        wait_for(dash_duo, lambda: "box" in _steps(dash_duo), BOX_ANSWER_S + 20, "no box")
        wait_for(dash_duo, lambda: _history(dash_duo)["present"]["action"] == "ai", 10,
                 f"two Undos took back one step: {_steps(dash_duo)}")
        history = _agree(dash_duo, 1.0)
        assert _same(history["present"]["paths"]) == _same(ai)
        assert [s["action"] for s in history["future"]] == ["edit", "box"]
        _assert_clean_console(dash_duo)


@pytest.mark.parametrize("when", ["as released", "while segmented", "before the event",
                                  "long before the event"])
def test_undo_pressed_before_a_box_s_answer_takes_back_the_box_not_the_region_before(
    dash_duo, data_dir, tmp_path, when
):
    """A region drawn by hand, then a box, and Ctrl+Z as the mouse is released (or Undo
    clicked while the box is segmented): the Undo took back the region before the box's
    answer was in, then the box's step cleared it from the redo list, lost for good
    (audit F2). Now the Undo waits for the answer: the box is made, then undone, the
    region stays, and Redo brings the box back.

    "before the event": plotly.js reports the box late, as under load, when a Ctrl+Z
    pressed as the mouse was released reached the client before the box did (the CI of
    stop 58's last head): the Undo still waits for it. "long before the event": later
    than the browser's wait for a drag plotly.js made no box of (SETTLE_MS): the box
    drawn on the graph is still waited for."""
    with _stand_in_model() as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 30})
        dash_duo.start_server(app)
        driver = dash_duo.driver
        ai, region, start, end = _region_then_box_tool(dash_duo, model, tmp_path)
        if when in ("before the event", "long before the event"):
            # 2.5 s: longer than the browser's settling wait for a drag plotly.js made no
            # box of.
            _late_box_events(dash_duo, 800 if when == "before the event" else 2500)
        drag = ActionChains(driver).move_to_location(*start).click_and_hold().move_to_location(
            start[0] + 20, start[1] + 20).move_to_location(*end).release()
        if when != "while segmented":
            drag.key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL)
        drag.perform()
        wait_for(dash_duo, lambda: model.asked_boxes, 10, "the box was not asked")
        if when == "while segmented":
            # Dash holds this click's call for the box's answer, or sends it at once
            # (then the status line says the Undo waits): either way nothing moves yet.
            click(driver, By.ID, ids.UNDO_BUTTON)
            time.sleep(0.5)
            assert _same(_shape_paths(dash_duo)) == _same([*ai, region])
        assert time.monotonic() - model.asked_boxes[0] < BOX_ANSWER_S, "too slow to test"

        wait_for(dash_duo, lambda: "box" in _steps(dash_duo), BOX_ANSWER_S + 20, "no box")
        history = _agree(dash_duo, 1.0)
        # The region is on screen, under the box undone.
        assert _same(history["present"]["paths"]) == _same([*ai, region]), history["present"]
        assert [s["action"] for s in history["future"]] == ["box"]
        redo = driver.find_element(By.ID, ids.REDO_BUTTON)
        assert redo.is_enabled()
        click(driver, By.ID, ids.REDO_BUTTON)
        inner = _square(155, 45, 205, 95)  # the box's outline: 15 px in from its sides
        wait_for(dash_duo, lambda: _history(dash_duo)["present"]["action"] == "box", 10,
                 "Redo did not bring the box back")
        present = _agree(dash_duo, 0.5)["present"]["paths"]
        assert _inside(present, 50, 150) and _inside(present, 70, 70)  # region, left square
        assert _inside(present, 180, 70) and not _inside(present, 152, 42)
        assert _inside([inner], 180, 70)
        _assert_clean_console(dash_duo)


#: The box's wait in the test of drawing during it: room for several mouse actions.
LONG_BOX_S = 8.0


def test_the_graph_stays_free_to_draw_on_while_a_box_is_segmented(
    dash_duo, data_dir, tmp_path
):
    """The graph's spinner covered it for a box's whole wait (the model server's timeout
    when it hangs), saying an image was being opened: a region drawn by hand meanwhile
    never reached the graph (audit 602, F3 and F4). Now the wait is said in a line over
    the graph that covers nothing, and a region drawn with the mouse is kept under the
    box's outline."""
    with _stand_in_model() as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 30})
        dash_duo.start_server(app)
        driver = dash_duo.driver
        wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(f"#{ids.SERVER_STATUS}").text)
        _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30, _status(dash_duo))
        ai = _agree(dash_duo, 0.5)["present"]["paths"]

        model.box_delay = LONG_BOX_S
        _draw_box(dash_duo, 30, 30, 110, 110)  # around the left square
        wait_for(dash_duo, lambda: model.asked_boxes, 10, "the box was not asked")
        waiting = driver.find_element(By.ID, ids.BOX_WAITING)
        wait_for(dash_duo, waiting.is_displayed, 5, "the box's wait was not said")
        assert "outline inside the box" in waiting.text, waiting.text
        spinner = driver.find_element(By.ID, ids.GRAPH_LOADING)
        assert not [e for e in spinner.find_elements(By.CSS_SELECTOR, f"#{ids.GRAPH_WAITING}")
                    if e.is_displayed()], "the graph's spinner covers the box's wait"
        # What a click in the graph lands on is the graph.
        middle = _to_screen(dash_duo, 175, 155)
        assert driver.execute_script(
            "var e = document.elementFromPoint(arguments[0], arguments[1]);"
            "return !!e && !!e.closest('#annotation-graph');", *middle)
        # A region drawn with the mouse, away from the box, while it is segmented: the
        # tool picked reaches the graph at once, not once the box is answered.
        click(driver, By.XPATH, f"//*[@id='{ids.TOOL}']//label[normalize-space()='Draw region']")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;")
                 == "drawclosedpath", 5, "Draw region did not reach the graph")
        corners = [_to_screen(dash_duo, x, y)
                   for x, y in ((150, 130), (200, 130), (200, 180), (150, 180))]
        drag = ActionChains(driver).move_to_location(*corners[0]).click_and_hold()
        for corner in corners[1:] + corners[:1]:
            drag.move_to_location(*corner)
        drag.release().perform()
        assert time.monotonic() - model.asked_boxes[0] < LONG_BOX_S, "too slow to test"

        wait_for(dash_duo, lambda: "last change: box" in _status(dash_duo), LONG_BOX_S + 20,
                 _status(dash_duo))
        history = _agree(dash_duo, 1.0)
        present = history["present"]["paths"]
        assert _inside(present, 175, 155), present  # the region drawn during the wait
        assert _inside(present, 50, 50) and not _inside(present, 42, 42)  # the box's
        assert [s["action"] for s in history["past"][-2:]] == ["ai", "edit"]
        assert _same(history["past"][-2]["paths"]) == _same(ai)
        wait_for(dash_duo, lambda: not waiting.is_displayed(), 5, "the wait line stayed")
        _assert_clean_console(dash_duo)
