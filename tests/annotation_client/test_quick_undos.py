"""Browser tests: Undo, Redo and Reset to AI pressed faster than the client answers.

The browser keeps only the newest answer of the edit callback: two presses of Ctrl+Z
before the first was answered were two requests built from one history, and the first
one's answer was dropped, so they took back one step. Every press counts now, as the
clicks of *Grow* and *Shrink* do (``annotate._step_clicks``).
"""

from __future__ import annotations

import time

import pytest
from _dash_helpers import closed_port, gradient_png, settled, slow_edits, store_data, wait_for
from _dash_helpers import edit_status as _status
from _dash_helpers import graph_js as _js
from _dash_helpers import upload as _upload
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids

pytestmark = pytest.mark.browser

#: How long the server takes over a request of the edit callback: long enough that the
#: second press is made before the first one's answer, even on a busy machine.
EDIT_ANSWER_S = 2.0


def _square(x0, y0, x1, y1) -> str:
    return f"M{x0},{y0}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"


def _history(dash_duo) -> dict:
    return store_data(dash_duo, ids.HISTORY)


def _count(dash_duo) -> int:
    return len(_history(dash_duo)["present"]["paths"])


def _keys(dash_duo, key: str, times: int) -> None:
    """Ctrl+``key`` pressed ``times`` times, a fifth of a second apart."""
    for n in range(times):
        if n:
            time.sleep(0.2)
        ActionChains(dash_duo.driver).key_down(Keys.CONTROL).send_keys(key).key_up(
            Keys.CONTROL).perform()


def _three_regions(dash_duo, data_dir, tmp_path) -> None:
    """A frame opened (no model server) and three regions drawn on it, one step each."""
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 3})
    slow_edits(app, EDIT_ANSWER_S)
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#server-alert-message", timeout=20)
    _upload(dash_duo, gradient_png(tmp_path / "frame.png"))
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "frame.png")
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    for n, square in enumerate([(20, 20, 60, 60), (90, 20, 130, 60), (160, 20, 200, 60)]):
        _js(dash_duo, "Plotly.relayout(gd, {shapes: (gd.layout.shapes || []).concat([{type:"
                      " 'path', xref: 'x', yref: 'y', path: arguments[0]}])});",
            _square(*square))
        wait_for(dash_duo, lambda n=n: _count(dash_duo) == n + 1, EDIT_ANSWER_S + 10,
                 f"region {n + 1} not recorded: {_status(dash_duo)}")
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    # Off the graph, so that the keys go to the page's shortcuts.
    dash_duo.driver.execute_script("document.activeElement.blur();")


def test_undos_pressed_before_the_first_is_answered_each_take_back_a_step(
        dash_duo, data_dir, tmp_path):
    _three_regions(dash_duo, data_dir, tmp_path)
    _keys(dash_duo, "z", 2)
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    history = _history(dash_duo)
    assert len(history["present"]["paths"]) == 1, "two Undos took back one step"
    assert len(history["future"]) == 2

    # And Redo the same way: both steps come back.
    _keys(dash_duo, "y", 2)
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    history = _history(dash_duo)
    assert len(history["present"]["paths"]) == 3, "two Redos gave back one step"
    assert history["future"] == []


def test_a_vertex_dragged_before_an_undo_is_answered_stays_as_dragged(
        dash_duo, data_dir, tmp_path):
    """Ctrl+Z, then a vertex dragged on the outline the screen still showed: the drag's
    request brings the press. Made after the drag, the Undo took the drag back, and the
    outline went back to what it was before both."""
    _three_regions(dash_duo, data_dir, tmp_path)
    _keys(dash_duo, "z", 1)
    time.sleep(EDIT_ANSWER_S / 4)
    moved = "M10,10L60,20L60,60L20,60Z"
    _js(dash_duo, "Plotly.relayout(gd, {'shapes[0].path': arguments[0]});", moved)
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    history = _history(dash_duo)
    assert history["present"]["paths"][0] == moved, "the drag was undone"
    assert len(history["present"]["paths"]) == 3
    # The press counted: the next Undo takes back the drag, and no more.
    _keys(dash_duo, "z", 1)
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    assert _history(dash_duo)["present"]["paths"][0] == _square(20, 20, 60, 60)
    assert _count(dash_duo) == 3


def test_undo_and_redo_pressed_in_turn_to_compare_end_where_they_began(
        dash_duo, data_dir, tmp_path):
    """Ctrl+Y, Ctrl+Z, Ctrl+Y, Ctrl+Z to compare an edit with the outline before it,
    faster than the client answers: the last request brings all four counts. Both Redos
    were made first, the second with nothing to redo, then both Undos: two steps back."""
    _three_regions(dash_duo, data_dir, tmp_path)
    _keys(dash_duo, "z", 1)
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    assert _count(dash_duo) == 2
    for key in "yzyz":
        _keys(dash_duo, key, 1)
        time.sleep(0.2)
    settled(dash_duo, quiet=EDIT_ANSWER_S + 0.5)
    history = _history(dash_duo)
    assert len(history["present"]["paths"]) == 2, "the presses were made out of order"
    assert len(history["future"]) == 1
