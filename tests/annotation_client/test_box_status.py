"""The status line after a *Box re-segment* says what the box did outside itself.

A box now replaces the whole region its new outline overlaps, and removes slivers of
the regions it cuts (see ``_editing.merge_box``): outline outside the box can change,
and the status line says so, beside the note on edits made while the box was
segmented.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from _dash_helpers import as_callback, text_of

import vectorizer
from annotation_client import _editing, _history, create_app, ids

SHA = "b0" * 32
META = {"sha256": SHA, "name": "scan.png", "width": 160, "height": 120}
SHAPE = (META["height"], META["width"])
BOX = (50, 40, 90, 75)
OVER = "M20,20L110,20L110,100L20,100Z"  # an outline reaching far out of the box
THIN = "M50,36L70,36L70,50L50,50Z"  # reaching 4 px out of the box, above it


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _status(annotate, box_state) -> str:
    history = _history.push(
        _history.new_history(_editing.make_state([OVER], "ai"), image=SHA), box_state)
    return text_of(annotate.measure(history, META, None)[1])


def _lesion(x0=60, y0=50, x1=80, y1=65):
    mask = np.zeros(SHAPE, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_a_box_that_replaced_an_outline_beyond_it_says_so(annotate):
    state = _editing.merge_box([OVER], BOX, _lesion(), SHAPE, 32)
    assert "last change: box (replaced the outline it overlapped) ·" in _status(annotate, state)


def test_a_box_that_removed_slivers_says_so(annotate):
    state = _editing.merge_box([THIN], BOX, _lesion(), SHAPE, 32)
    status = _status(annotate, state)
    assert "last change: box (removed a sliver of outline left outside its edge) ·" in status


def test_a_box_the_model_found_nothing_in_says_so(annotate):
    state = _editing.merge_box([OVER], BOX, np.zeros(SHAPE, bool), SHAPE, 32)
    assert state["paths"] == [OVER]
    status = _status(annotate, state)
    assert f"last change: box ({_editing.BOX_FOUND_NOTHING}) ·" in status


def test_both_notes_of_a_box_over_the_edits_of_its_wait(annotate):
    state = _editing.merge_box([OVER, THIN], BOX, _lesion(), SHAPE, 32)
    state[annotate.OVER_EDITS] = True
    assert (
        "last change: box (replaced the outline it overlapped; removed a sliver of outline"
        f" left outside its edge; {annotate.OVER_EDITS_TEXT}) ·"
    ) in _status(annotate, state)


def test_a_box_that_changed_only_its_inside_says_nothing_more(annotate):
    state = _editing.merge_box(["M60,50L80,50L80,65L60,65Z"], BOX, _lesion(55, 45, 85, 70),
                               SHAPE, 32)
    assert "last change: box ·" in _status(annotate, state)


def _answer_box(annotate, start, mask, at=1_000):
    """The page's edit callback given the answer ``mask`` to a box pending since ``at``."""
    encoded = base64.b64encode(vectorizer.mask_to_png(mask)).decode()
    answers = {"image": SHA, "answers": [{"request": at, "box": list(BOX), "mask": encoded}]}

    return as_callback(lambda: annotate.edit(
        META, None, answers, None, None, None, None, 32, 0.3, True, True, None, start,
        pending=[{"image": SHA, "box": list(BOX), "at": at}], page="p" * 16,
    ), f"{ids.BOX_DONE}.data")


def test_a_box_answered_with_nothing_keeps_the_outline_and_says_so_on_screen(annotate):
    """Through the page's edit callback: the box's empty answer leaves the outline as it
    was (before, the outline inside the box was erased) and adds no undo step, which
    would take back nothing; its echo redraws the status line, which says so."""
    start = _history.new_history(_editing.make_state([OVER], "ai"), image=SHA)
    out = _answer_box(annotate, start, np.zeros(SHAPE, bool))
    history, echo, pending = out[0], out[6], out[7]
    assert history["present"] == start["present"] and history["past"] == []
    assert pending == []  # the box is answered: not asked again
    assert isinstance(echo, int)  # the outline's echo: measure() runs again
    status = text_of(annotate.measure(history, META, None)[1])
    assert "last change: ai · 0 undo step(s)" in status
    assert status.endswith(f" · {annotate.BOX_EMPTY_TEXT}")


def test_the_empty_box_note_goes_with_the_next_drawing(annotate):
    """Said while the drawing answered is the graph's: a box that then finds the lesion
    makes its step, and the note of the empty one is gone."""
    start = _history.new_history(_editing.make_state([OVER], "ai"), image=SHA)
    history = _answer_box(annotate, start, np.zeros(SHAPE, bool))[0]
    history = _answer_box(annotate, history, _lesion(), at=2_000)[0]
    status = text_of(annotate.measure(history, META, None)[1])
    assert "last change: box (replaced the outline it overlapped) · 1 undo step(s)" in status
    assert annotate.BOX_EMPTY_TEXT not in status
