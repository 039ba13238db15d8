"""Grow and Shrink at the edit callback: every click counts, in mm when the image has a
pixel spacing.

``edit`` is called as Dash calls it. The browser builds each request from the history
it holds and keeps only the newest answer, so two clicks made before the first is
answered are two requests built from one history: the tests send them so.
"""

from __future__ import annotations

import numpy as np
import pytest
from _dash_helpers import as_callback, text_of
from dash.exceptions import PreventUpdate

import vectorizer
from annotation_client import _editing, _history, create_app, ids

SHA = "d4" * 32
#: 100 x 80 pixels: a step of 1 px without a pixel spacing.
META = {"sha256": SHA, "name": "scan.png", "width": 100, "height": 80}
#: 0.1 mm a pixel: a step of 0.5 mm is 5 px.
SPACED = {**META, "pixel_spacing_mm": [0.1, 0.1], "pixel_spacing_source": "dicom"}
GROW = f"{ids.GROW_BUTTON}.n_clicks"
SHRINK = f"{ids.SHRINK_BUTTON}.n_clicks"
UNDO = f"{ids.UNDO_BUTTON}.n_clicks"
PAGE = "0123456789abcdef"


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _disc_history():
    """The image open with an AI outline, a disc of radius 20, on screen."""
    yy, xx = np.mgrid[:80, :100]
    disc = np.hypot(yy - 40, xx - 50) <= 20
    ai = _editing.make_state(_editing.mask_to_regions(disc, 32), "ai", density=32)
    return _history.push(_history.new_history(_editing.empty_state(), image=SHA), ai)


def _edit(annotate, history, *, fired, grow=None, shrink=None, page=PAGE, meta=META,
          undo=None, lost=None):
    """``edit``'s outputs for a request whose inputs ``fired`` (prop ids)."""
    return as_callback(lambda: annotate.edit(
        meta, None, None, None, undo, None, None, 32, 0.3, True, True, None, history,
        None, None, None, None, None, None, _grow=grow, _shrink=shrink, page=page,
        lost=lost,
    ), fired)


def _pixels(history) -> int:
    return history["present"]["offset_from"]["pixels"]


def _status(annotate, history, meta=META) -> str:
    return text_of(annotate.measure(history, meta, None)[1])


def test_two_clicks_sent_before_the_first_answer_both_count(annotate):
    start = _disc_history()
    first = _edit(annotate, start, fired=[GROW], grow=1)[0]
    # The second click's request is built from the history the first one left from.
    second = _edit(annotate, start, fired=[GROW], grow=2)[0]
    assert _pixels(first) == 1 and _pixels(second) == 2
    # The answer the browser keeps took both clicks in, as one undo step: the outline
    # as it changed on screen.
    assert second["past"] == start["past"] + [start["present"]]
    assert _status(annotate, second).count("last change: grow by 2 px ·") == 1
    # Had the first answer been kept, the next click builds on it: no click twice.
    assert _pixels(_edit(annotate, first, fired=[GROW], grow=2)[0]) == 2
    third = _edit(annotate, second, fired=[GROW], grow=3)[0]
    assert _pixels(third) == 3 and len(third["past"]) == len(second["past"]) + 1
    # A request older than the history it carries adds nothing (its click is in it).
    with pytest.raises(PreventUpdate):
        _edit(annotate, third, fired=[GROW], grow=2)
    # Grow twice and Shrink once before an answer: one step out.
    mixed = _edit(annotate, third, fired=[GROW, SHRINK], grow=5, shrink=1)[0]
    assert _pixels(mixed) == 4


def test_a_click_whose_answer_was_dropped_comes_with_the_next_request(annotate):
    """Grow, then Undo before Grow's answer came: Dash drops that answer and sends
    Undo's request with the history of before the click. The click happened first:
    it is applied, then undone, and Redo brings it back."""
    start = _disc_history()
    out = _edit(annotate, start, fired=[UNDO], grow=1, undo=1)
    history = out[0]
    assert history["present"] == start["present"]  # the AI outline, grown then undone
    assert history["future"][0]["action"] == "grow"
    assert history["future"][0]["offset_from"]["pixels"] == 1
    assert history["offset_clicks"] == {"page": PAGE, "grow": 1, "shrink": 0}


def test_a_click_whose_request_got_no_answer_is_not_applied_later(annotate):
    """Grow clicked while the client was unreachable: its request failed and the page's
    script sent the counts it carried as lost. The next Grow, once the client is back,
    grows by one step, not by two."""
    start = _disc_history()
    grown = _edit(annotate, start, fired=[GROW], grow=1)[0]
    lost = {"page": PAGE, "grow": 2, "shrink": 0}
    again = _edit(annotate, grown, fired=[GROW], grow=3, lost=lost)[0]
    assert _pixels(again) == 2
    assert "last change: grow by 1 px (net +2 px since" in _status(annotate, again)
    assert again["offset_clicks"] == {"page": PAGE, "grow": 3, "shrink": 0}
    # A request carrying only the lost click moves nothing.
    with pytest.raises(PreventUpdate):
        _edit(annotate, grown, fired=[GROW], grow=2, lost=lost)
    # Without the record of it, the click was applied with the next (the bug).
    assert _pixels(_edit(annotate, grown, fired=[GROW], grow=3)[0]) == 3


def test_counts_start_again_when_the_page_is_drawn_again(annotate):
    start = _disc_history()
    grown = _edit(annotate, start, fired=[GROW], grow=3)[0]
    assert _pixels(grown) == 3
    # Back from another page: the buttons come back with no count, and Dash reports
    # them as triggered. Nothing moves, and nothing is written.
    with pytest.raises(PreventUpdate):
        _edit(annotate, grown, fired=[GROW, SHRINK], page="fedcba9876543210")
    # The new page's first click is one, though the record says three.
    again = _edit(annotate, grown, fired=[GROW], grow=1, page="fedcba9876543210")[0]
    assert _pixels(again) == 4
    assert again["offset_clicks"] == {"page": "fedcba9876543210", "grow": 1, "shrink": 0}


def test_clicks_counted_on_one_image_are_not_applied_to_the_next(annotate):
    start = _disc_history()
    grown = _edit(annotate, start, fired=[GROW], grow=2)[0]
    assert _pixels(grown) == 2
    other = {**META, "sha256": "e5" * 32}
    opened = _edit(annotate, grown, fired=[f"{ids.IMAGE_OPENED}.data"], grow=2, meta=other)[0]
    assert opened["image"] == other["sha256"] and opened["past"] == []
    assert opened["offset_clicks"] == {"page": PAGE, "grow": 2, "shrink": 0}


@pytest.mark.parametrize("count", [10**12, -3, True, "7", 2.5])
def test_a_count_no_browser_sends_moves_nothing(annotate, count):
    with pytest.raises(PreventUpdate):
        _edit(annotate, _disc_history(), fired=[GROW], grow=count)


def test_the_most_clicks_a_count_can_hold_cost_one_offset_clamped(annotate):
    start = _disc_history()
    history = _edit(annotate, start, fired=[GROW], grow=_editing.MAX_CLICK_COUNT)[0]
    assert _pixels(history) == vectorizer.MAX_OFFSET_PX
    assert history["past"] == start["past"] + [start["present"]]  # one step for them all


def test_a_click_is_half_a_millimetre_when_the_pixel_spacing_is_known(annotate):
    start = _disc_history()
    spaced = _edit(annotate, start, fired=[GROW], grow=1, meta=SPACED)[0]
    assert _pixels(spaced) == 5
    assert "last change: grow by 5 px, 0.5 mm ·" in _status(annotate, spaced, SPACED)
    shrunk = _edit(annotate, spaced, fired=[SHRINK], shrink=3, meta=SPACED)[0]
    assert ("last change: shrink by 15 px, 1.5 mm (net -10 px, -1.0 mm since the first "
            "Grow/Shrink of this run)") in _status(annotate, shrunk, SPACED)
    # Without a spacing, the step and the status line stay in pixels.
    plain = _edit(annotate, start, fired=[GROW], grow=1)[0]
    assert _pixels(plain) == 1
    assert "last change: grow by 1 px ·" in _status(annotate, plain)


def test_the_buttons_say_the_step(annotate):
    bar = annotate._tool_bar()
    titles = {b.id: b.title for group in bar.children if hasattr(group, "children")
              for b in (group.children if isinstance(group.children, list) else [])
              if getattr(b, "id", None) in (ids.GROW_BUTTON, ids.SHRINK_BUTTON)}
    assert set(titles) == {ids.GROW_BUTTON, ids.SHRINK_BUTTON}
    for title in titles.values():
        assert "0.5 mm when the image's pixel spacing is known" in title
