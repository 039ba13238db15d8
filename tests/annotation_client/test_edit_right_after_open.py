"""Browser tests: a region drawn by hand right after an image opens.

While the model server segments the image just opened, the browser holds the open's
own call of the edit callback and the tool bar's change (their inputs wait for the
segmentation's answer), and the spinner covers the graph: nothing can be drawn then.
When the model answers (or fails), Draw region takes effect at once, but the edit
call that draws the AI outline is still on its way: a region drawn then is drawn on
the open's figure, not on a drawing the history knows (``DRAWN``). The browser keeps
only the newest answer of the edit callback, so the next change (the fill opacity,
say) made before the drawing's own answer came with no history of the image, and
the region was lost from the history and the screen alike. The open's figure is now
a named drawing of the new history (see annotate._show and annotate.edit), and a
region drawn on it is recovered like any edit on screen (annotate._shown_edits).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    console_errors,
    gradient_png,
    serve_http,
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
#: How long the server takes over a request of the edit callback, when slowed (a busy
#: server): the open's edit is still unanswered when the region is drawn.
EDIT_ANSWER_S = 3.0
#: How long the stand-in model server takes over /predict: a slow model server.
PREDICT_S = 2.5
#: ... and in the test of what can be done while it segments: long enough for the open,
#: the tool's click and a drag to come before its answer on a busy machine.
PREDICT_LONG_S = 8.0
#: The stand-in model's outline: a square on the left of the image.
AI_SQUARE = (30, 40, 90, 100)
#: The region drawn by hand, on the right (image pixels), and a point inside it.
DRAWN = [(150, 110), (220, 110), (220, 180), (150, 180)]
IN_DRAWN = (185, 145)
IN_AI = (60, 70)


class _SlowModel(HealthyModelServer):
    """A model server whose /predict answers after ``delay`` s: the
    :data:`AI_SQUARE` outline, or (``fails``) an error 500."""

    fails = False
    delay = PREDICT_S
    asked: list[float] = []  # time.monotonic() of each /predict
    answered: list[float] = []  # ... and of its answer

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.asked.append(time.monotonic())
        time.sleep(self.delay)
        self.answered.append(time.monotonic())
        if self.fails:
            self.send_json(500, b'{"detail": "the stand-in model failed"}')
            return
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        x0, y0, x1, y1 = AI_SQUARE
        mask[y0:y1, x0:x1] = True
        self.send_outline(mask)


@contextlib.contextmanager
def _slow_model(fails: bool, delay: float = PREDICT_S):
    handler = type("Model", (_SlowModel,),
                   {"fails": fails, "delay": delay, "asked": [], "answered": []})
    with serve_http(handler) as url:
        yield handler, url


def _inside(paths, x, y) -> bool:
    return bool(_shapes.paths_to_mask(paths, (HEIGHT, WIDTH))[y, x])


def _holds_drawn(paths) -> bool:
    """Whether ``paths`` hold the hand-drawn region (and not only the AI's square)."""
    return _inside(paths, *IN_DRAWN)


def _pick_draw(dash_duo) -> None:
    """Click *Draw region* in the tool bar."""
    click(dash_duo.driver, By.XPATH,
          f"//*[@id='{ids.TOOL}']//label[normalize-space()='Draw region']")


def _dragmode(dash_duo) -> str:
    return _js(dash_duo, "return gd._fullLayout.dragmode;")


def _draw_region(dash_duo) -> None:
    """Draw :data:`DRAWN` with the mouse, in the graph's drawing mode."""
    driver = dash_duo.driver
    driver.execute_script("document.getElementById('annotation-graph')"
                          ".scrollIntoView({block: 'center', behavior: 'instant'});")
    points = [_to_screen(dash_duo, x, y) for x, y in DRAWN]
    chain = ActionChains(driver).move_to_location(*points[0]).click_and_hold()
    for point in points[1:] + points[:1]:
        chain.move_to_location(*point)
    chain.release().perform()


def _history(dash_duo) -> dict | None:
    return store_data(dash_duo, ids.HISTORY)


def _open_and_pick_draw(dash_duo, tmp_path) -> str:
    """Open the image, and click *Draw region* as soon as it is on the graph (while the
    model segments it); the SHA-256 of the image."""
    wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(f"#{ids.SERVER_STATUS}").text,
             20, "the model server is not ready")
    _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
    wait_for(dash_duo, lambda: _js(dash_duo, "return !!(gd && gd.data && gd.data.length"
                                             " && gd.data[0].type === 'image');"),
             60, "the image is not on the graph")
    sha = store_data(dash_duo, ids.IMAGE_META)["sha256"]
    _pick_draw(dash_duo)
    return sha


def _steps(history) -> list[tuple[str, bool, bool]]:
    """Each step of ``history``: its action, whether it holds the drawn region, and
    whether it holds the AI's square."""
    return [(s["action"], _holds_drawn(s["paths"]), _inside(s["paths"], *IN_AI))
            for s in history["past"] + [history["present"]]]


def _same(paths) -> list[str]:
    return [_shapes.format_path(_shapes.parse_path(p)) for p in paths]


@pytest.mark.parametrize("then", ["nothing", "opacity"])
@pytest.mark.parametrize("fails", [False, True], ids=["ai", "model-fails"])
def test_a_region_drawn_before_the_opens_edit_is_answered_is_kept(
    dash_duo, data_dir, tmp_path, fails, then
):
    """Draw region clicked as soon as the image is on the graph, on a busy server
    (every edit answered after EDIT_ANSWER_S) while the model segments (PREDICT_S).
    The tool takes effect when the model answers, together with the open's own edit
    call, so the region is drawn on the open's figure before that call is answered;
    then the fill opacity is moved ("opacity") before the drawing's own edit is
    answered. The opacity's request overtook the drawing's, and came with no history
    of the image and a screen drawn by the open callback, which _shown_edits did not
    take for a drawing of the history: the region went from the undo history, and the
    opacity's answer redrew the outline without it, so it went from the screen too.
    Now the region is the outline, on screen and in the history, and the AI outline,
    answered before it was drawn but never shown, is the step under it."""
    with _slow_model(fails) as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 30})
        slow_edits(app, EDIT_ANSWER_S)
        dash_duo.start_server(app)
        driver = dash_duo.driver
        sha = _open_and_pick_draw(dash_duo, tmp_path)
        wait_for(dash_duo, lambda: _dragmode(dash_duo) == "drawclosedpath",
                 PREDICT_S + EDIT_ANSWER_S + 10, "Draw region never took effect")
        _draw_region(dash_duo)
        wait_for(dash_duo, lambda: any(_holds_drawn([p]) for p in _shape_paths(dash_duo)), 5,
                 "the region is not on screen")
        if then == "opacity":
            handle = driver.find_element(By.CSS_SELECTOR,
                                         f"#{ids.OVERLAY_OPACITY} [role='slider']")
            handle.send_keys(Keys.ARROW_RIGHT)
        # The race this test is about: the open's edit call, and the drawing's, not
        # answered yet when the region was drawn and the opacity moved.
        history = _history(dash_duo)
        assert model.answered, "drawn before the model answered: the graph was covered"
        assert not (history and history.get("image") == sha), (
            "the open's edit was answered before the region was drawn: too slow to test")

        settled(dash_duo, quiet=EDIT_ANSWER_S + 1.0, timeout=6 * EDIT_ANSWER_S + 30)
        history = _history(dash_duo)
        screen = _shape_paths(dash_duo)
        print(f"\n[{'model fails' if fails else 'AI'}, then {then}] steps {_steps(history)};"
              f" screen {[(_holds_drawn([p]), _inside([p], *IN_AI)) for p in screen]};"
              f" status {_status(dash_duo)!r}")
        assert history and history.get("image") == sha
        assert _same(screen) == _same(history["present"]["paths"]), (
            f"screen {screen} and history {_steps(history)} differ")
        # The drawn region is the outline, on screen and in the history.
        assert _holds_drawn(history["present"]["paths"]), (
            f"the drawn region is lost: history {_steps(history)}, screen {screen}")
        assert history["present"]["action"] == "edit", _steps(history)
        if not fails:
            # The AI outline, never shown, is the step under the drawing.
            assert [a for a, _, _ in _steps(history)] == ["open", "ai", "edit"], (
                _steps(history))
            assert _inside(history["past"][-1]["paths"], *IN_AI)
        if then == "opacity":
            wait_for(dash_duo, lambda: "0.300" in _js(
                dash_duo, "return gd.layout.shapes[0].fillcolor;"), 5, "the opacity is lost")
        errors = console_errors(dash_duo)
        assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_a_region_is_drawn_beside_the_ai_outline_once_the_model_answers(
    dash_duo, data_dir, tmp_path
):
    """Draw region clicked, and a region dragged over the graph, while a slow model
    server segments the image just opened: the spinner covers the graph and the tool
    takes effect only when the AI outline has come, so nothing is drawn then, and the
    AI outline never replaces a region drawn by hand. Drawn after it, the region joins
    the AI outline: both are the outline, one undo step above the AI's."""
    with _slow_model(False, PREDICT_LONG_S) as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 30})
        dash_duo.start_server(app)
        sha = _open_and_pick_draw(dash_duo, tmp_path)
        # The spinner is shown after 350 ms: a drag over the graph while the model
        # segments reaches no graph.
        time.sleep(0.5)
        covered = _js(dash_duo, """
            var box = gd.querySelector('.nsewdrag').getBoundingClientRect();
            return !gd.contains(document.elementFromPoint(box.left + box.width / 2,
                                                          box.top + box.height / 2));""")
        _draw_region(dash_duo)
        assert not model.answered, "the model answered before the drag: too slow to test"
        assert covered, "the graph is not covered while the model segments"
        assert _dragmode(dash_duo) != "drawclosedpath"
        assert not any(_holds_drawn([p]) for p in _shape_paths(dash_duo))

        wait_for(dash_duo, lambda: _dragmode(dash_duo) == "drawclosedpath", PREDICT_LONG_S + 10,
                 "Draw region never took effect")
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 10, _status(dash_duo))
        _draw_region(dash_duo)
        wait_for(dash_duo, lambda: "last change: edit" in _status(dash_duo), 10,
                 _status(dash_duo))
        settled(dash_duo, quiet=1.0)
        history = _history(dash_duo)
        print(f"\n[slow model] steps {_steps(history)}; status {_status(dash_duo)!r}")
        assert history["image"] == sha
        assert _same(_shape_paths(dash_duo)) == _same(history["present"]["paths"])
        assert _steps(history) == [("open", False, False), ("ai", False, True),
                                   ("edit", True, True)]
        assert "2 region(s)" in _status(dash_duo), _status(dash_duo)
        errors = console_errors(dash_duo)
        assert not errors, "browser console errors:\n" + "\n".join(errors)
