"""Undo, Redo and Reset to AI at the edit callback: every press counts.

``edit`` is called as Dash calls it. The browser builds each request from the history
it holds and keeps only the newest answer, so two presses made before the first is
answered are two requests built from one history: the tests send them so (see
``test_quick_undos`` for the same in the browser).
"""

from __future__ import annotations

import pytest
from _dash_helpers import as_callback
from dash.exceptions import PreventUpdate

from annotation_client import _editing, _history, create_app, ids

SHA = "e5" * 32
META = {"sha256": SHA, "name": "scan.png", "width": 100, "height": 80}
UNDO = f"{ids.UNDO_BUTTON}.n_clicks"
REDO = f"{ids.REDO_BUTTON}.n_clicks"
RESET = f"{ids.RESET_BUTTON}.n_clicks"
PAGE = "0123456789abcdef"
AI_PATH = "M10,10L30,10L30,30L10,30Z"
AI = {"image": SHA, "paths": [AI_PATH], "at": 1, "vertices": 32}


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _square(n: int) -> str:
    x = 40 + 12 * n
    return f"M{x},40L{x + 10},40L{x + 10},50L{x},50Z"


def _steps_history(count: int = 3) -> dict:
    """The AI's outline, then ``count`` regions drawn by hand, one step each."""
    history = _history.push(_history.new_history(_editing.empty_state(), image=SHA),
                            _editing.make_state([AI_PATH], "ai", base="ai", density=32))
    for n in range(count):
        paths = [AI_PATH, *(_square(k) for k in range(n + 1))]
        history = _history.push(history, _editing.make_state(paths, "edit", density=32))
    return {**history, "applied": [AI["at"]]}  # the AI's answer, taken in


def _edit(annotate, history, *, fired, undo=None, redo=None, reset=None, page=PAGE,
          lost=None, meta=META, ai=AI):
    """``edit``'s new history for a request whose inputs ``fired`` (prop ids)."""
    return as_callback(lambda: annotate.edit(
        meta, ai, None, None, undo, redo, reset, 32, 0.3, True, True, None, history,
        None, None, None, None, None, None, page=page, lost=lost,
    ), fired)[0]


def _regions(history) -> int:
    """Regions drawn by hand on the present outline."""
    return len(history["present"]["paths"]) - 1


def test_two_undos_sent_before_the_first_answer_take_back_two_steps(annotate):
    start = _steps_history()
    first = _edit(annotate, start, fired=[UNDO], undo=1)
    second = _edit(annotate, start, fired=[UNDO], undo=2)  # built from the same history
    assert _regions(first) == 2 and _regions(second) == 1
    assert len(second["future"]) == 2
    # Had the first answer been kept, the next press builds on it: no press twice.
    assert _regions(_edit(annotate, first, fired=[UNDO], undo=2)) == 1
    # A request older than the history it carries changes nothing.
    with pytest.raises(PreventUpdate):
        _edit(annotate, second, fired=[UNDO], undo=1)
    # Two Redos the same way give both steps back.
    back = _edit(annotate, second, fired=[REDO], undo=2, redo=2)
    assert _regions(back) == 3 and back["future"] == []


def test_the_button_that_set_off_the_call_was_pressed_last(annotate):
    start = _steps_history()
    # Undo, then Redo before Undo's answer: the Redo's request brings both. Undone,
    # then made again: the outline is back where it was, with nothing to redo.
    history = _edit(annotate, start, fired=[REDO], undo=1, redo=1)
    assert history["present"] == start["present"] and history["future"] == []
    # Reset to AI, then Undo before its answer: the reset, then undone.
    history = _edit(annotate, start, fired=[UNDO], undo=1, reset=1)
    assert history["present"] == start["present"]
    assert history["future"][0]["action"] == "reset"


def test_reset_pressed_again_before_its_answer_is_one_step(annotate):
    start = _steps_history()
    history = _edit(annotate, start, fired=[RESET], reset=3)
    assert history["present"]["paths"] == [AI_PATH]
    assert len(history["past"]) == len(start["past"]) + 1


def test_a_press_whose_request_got_no_answer_is_not_made_later(annotate):
    """Ctrl+Z while the client was unreachable: the request failed, nothing was undone
    on screen, and the page's script sent the counts it carried as lost. The next Undo
    takes back one step, not two."""
    start = _steps_history()
    once = _edit(annotate, start, fired=[UNDO], undo=1)
    lost = {"page": PAGE, "grow": 0, "shrink": 0, "undo": 2, "redo": 0, "reset": 0}
    again = _edit(annotate, once, fired=[UNDO], undo=3, lost=lost)
    assert _regions(again) == 1
    with pytest.raises(PreventUpdate):
        _edit(annotate, once, fired=[UNDO], undo=2, lost=lost)
    # Without the record of it, the lost press was made with the next (two steps).
    assert _regions(_edit(annotate, once, fired=[UNDO], undo=3)) == 0


def test_counts_start_again_when_the_page_is_drawn_again(annotate):
    start = _steps_history()
    undone = _edit(annotate, start, fired=[UNDO], undo=2)
    assert _regions(undone) == 1
    # Back from another page: the buttons have no count, and nothing moves.
    with pytest.raises(PreventUpdate):
        _edit(annotate, undone, fired=[UNDO, REDO], page="fedcba9876543210")
    # The new page's first press is one, though the record says two.
    again = _edit(annotate, undone, fired=[REDO], redo=1, page="fedcba9876543210")
    assert _regions(again) == 2


def test_presses_counted_on_one_image_are_not_made_on_the_next(annotate):
    start = _steps_history()
    undone = _edit(annotate, start, fired=[UNDO], undo=2)
    # The next image opens: its history starts afresh, with the counts so far applied.
    other = {**META, "sha256": "f6" * 32}
    opened = _edit(annotate, undone, fired=[f"{ids.IMAGE_OPENED}.data"], undo=2,
                   meta=other, ai=None)
    assert opened["image"] == other["sha256"]
    assert opened["step_clicks"]["undo"] == 2


def test_a_count_of_millions_costs_no_more_than_the_steps(annotate):
    start = _steps_history()
    history = _edit(annotate, start, fired=[UNDO], undo=_editing.MAX_CLICK_COUNT)
    assert history["past"] == [] and len(history["future"]) == len(start["past"])


def test_without_the_page_s_token_the_trigger_is_one_press(annotate):
    start = _steps_history()
    once = _edit(annotate, start, fired=[UNDO], undo=5, page=None)
    assert _regions(once) == 2
    assert _regions(_edit(annotate, once, fired=[UNDO], undo=6, page=None)) == 1
    assert _regions(_edit(annotate, once, fired=[REDO], undo=6, redo=7, page=None)) == 3


def test_an_undo_sent_with_a_graph_edit_made_after_it_does_not_take_that_edit_back(annotate):
    """Ctrl+Z, then a vertex dragged before its answer: the drag's request brings the
    press, and the drag was made on the outline the screen still showed. Undone after
    the drag, it took the drag back (kept only in the redo list), and the screen went
    back to the outline from before both."""
    start = _steps_history()
    moved = _square(2).replace("M64,40", "M60,36")
    relayout = {"shapes[3].path": moved}
    history = as_callback(lambda: annotate.edit(
        META, AI, None, relayout, 1, None, None, 32, 0.3, True, True, None, start,
        None, None, None, None, None, None, page=PAGE,
    ), [f"{ids.ANNOTATION_GRAPH}.relayoutData"])[0]
    assert history["present"]["paths"][3] == moved
    assert history["future"] == []
    # The press is counted: the next Undo takes back the drag, one step.
    back = _edit(annotate, history, fired=[UNDO], undo=2)
    assert back["present"] == start["present"]


def test_presses_merged_in_one_request_are_made_in_the_order_the_page_recorded(annotate):
    """Undo, then Redo, Undo and Redo again to compare, before the first answer: the
    last request brings all four. Both Redos made first, the first with nothing to
    redo, then both Undos, left the outline two steps back; made in order, it is where
    it was."""
    start = _edit(annotate, _steps_history(), fired=[UNDO], undo=1)
    assert _regions(start) == 2
    presses = {"page": PAGE, "presses": [["undo", 1], ["redo", 1], ["undo", 2],
                                         ["redo", 2], ["undo", 3]]}
    compared = as_callback(lambda: annotate.edit(
        META, AI, None, None, 3, 2, None, 32, 0.3, True, True, None, start,
        None, None, None, None, None, None, page=PAGE, presses=presses,
    ), [UNDO])[0]
    assert _regions(compared) == 2
    assert compared["future"] == start["future"]
    # Presses of another drawing of the page, or of none, are in the old order.
    other = {**presses, "page": "fedcba9876543210"}
    old = as_callback(lambda: annotate.edit(
        META, AI, None, None, 3, 2, None, 32, 0.3, True, True, None, start,
        None, None, None, None, None, None, page=PAGE, presses=other,
    ), [UNDO])[0]
    assert _regions(old) == 1


def test_a_press_the_record_has_not_got_yet_comes_last(annotate):
    start = _steps_history()
    # The Redo that set off the call is not in the record yet: after the Undo it holds.
    presses = {"page": PAGE, "presses": [["undo", 1]]}
    history = as_callback(lambda: annotate.edit(
        META, AI, None, None, 1, 1, None, 32, 0.3, True, True, None, start,
        None, None, None, None, None, None, page=PAGE, presses=presses,
    ), [REDO])[0]
    assert history["present"] == start["present"] and history["future"] == []
    # A forged record is no order: the counts alone decide.
    for forged in ({"page": PAGE, "presses": [["undo", "1"], ["x", 1], "redo", None]},
                   {"page": PAGE, "presses": "undo"}, [1, 2]):
        history = as_callback(lambda forged=forged: annotate.edit(
            META, AI, None, None, 1, 1, None, 32, 0.3, True, True, None, start,
            None, None, None, None, None, None, page=PAGE, presses=forged,
        ), [REDO])[0]
        assert history["present"] == start["present"]
