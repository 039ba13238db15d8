"""The Annotate page's *Unsaved changes* mark and Save, around the AI outline.

The mark is shown exactly when the work on screen differs from the image's last save
(or, before one, from the image as opened with its AI outline): helper-404's audit
found it missing for the AI outline back on screen after a save without it (F1), and
for an Undo back past the AI outline (F5); and a Save right after the upload, before
the model's outline came, saved a blank outline as the reader's (F1, the race).
"""

from __future__ import annotations

import pytest
from _dash_helpers import as_callback, text_of

from annotation_client import _editing, _history, _unsaved, create_app, ids
from annotation_client._record import DESCRIPTOR_OPTIONS

pytestmark = pytest.mark.usefixtures("an_app_exists")

SHA = "a" * 64
META = {"sha256": SHA, "name": "a.png", "kind": "png", "width": 30, "height": 20,
        "pixel_spacing_mm": None}
AI_PATHS = ["M 1,1 L 9,1 L 9,9 Z"]
AI = {"image": SHA, "paths": AI_PATHS, "at": 5}
BLANK = [None] * len(DESCRIPTOR_OPTIONS)


def _opened() -> dict:
    return _history.new_history(_editing.empty_state(), image=SHA)


def _with_ai() -> dict:
    return _history.push(_opened(), _editing.make_state(AI_PATHS, "ai", base="ai"))


def _erased() -> dict:
    return _history.push(_with_ai(), _editing.make_state([], "edit"))


def _mark(annotate, history, saved=None, label=None, ai=AI) -> bool:
    return as_callback(lambda: annotate.mark_unsaved(
        history, label, None, *BLANK, saved, META, ai,
    )[2], f"{ids.OUTLINE_CHANGED}.data", value=1) == "dirty"


def test_undo_past_the_ai_outline_is_unsaved(annotate):
    # F5: the blank outline an Undo leaves is not the image as opened with its AI outline.
    assert not _mark(annotate, _opened())  # the model's outline still on its way
    assert not _mark(annotate, _with_ai())
    assert _mark(annotate, _history.undo(_with_ai()))
    assert not _mark(annotate, _history.redo(_history.undo(_with_ai())))


def test_the_ai_outline_back_after_a_save_without_it_is_unsaved(annotate):
    # F1: erased, saved with no label, then Undo or Reset to AI.
    saved = _unsaved.snapshot(SHA, [])
    assert not _mark(annotate, _erased(), saved)
    assert _mark(annotate, _history.undo(_erased()), saved)
    reset = _history.push(_erased(), _editing.make_state(AI_PATHS, "reset", base="ai"))
    assert _mark(annotate, reset, saved)
    # A save made before the model's outline came: the outline coming is not the save.
    assert not _mark(annotate, _opened(), saved)
    assert _mark(annotate, _with_ai(), saved)


def test_an_image_opened_again_after_its_save_is_not_marked_while_it_opens(annotate):
    # Until the model's outline, or the reader's save loaded over it, is in the history.
    saved = _unsaved.snapshot(SHA, ["M 2,2 L 8,2 L 8,8 Z"], "benign")
    assert not _mark(annotate, _opened(), saved)
    assert not _mark(annotate, None, saved)  # no history of it yet
    assert not _mark(annotate, {**_with_ai(), "image": "b" * 64}, saved)  # the image before
    assert _mark(annotate, _opened(), saved, label="malignant")


@pytest.fixture
def app(tmp_path):
    return create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": tmp_path})


def _save(app, annotate, history, ai, auto, opened, done):
    """The page's save callback for :data:`META` with a label and a name: its answer."""
    return as_callback(lambda: annotate.save(
        1, META, history, ai, None, "benign", "", "Dr Ada", None, *BLANK, None, None, None,
        auto, opened, done,
    ), f"{ids.SAVE_BUTTON}.n_clicks", app=app, value=1)


def _refused(answer) -> bool:
    return "still on its way" in text_of(answer[0])


def test_save_waits_for_the_models_outline_of_the_image_just_opened(app, annotate):
    opened = {"image": SHA, "at": 100, "drawing": "1"}
    # The model has not answered since the open: refused, saying why.
    assert _refused(_save(app, annotate, _opened(), None, True, opened, None))
    assert _refused(_save(app, annotate, None, None, True, opened, 50))
    # It answered, and the history has yet to take the outline.
    assert _refused(_save(app, annotate, _opened(), AI, True, opened, 150))


@pytest.mark.parametrize("case", ["failed", "off", "taken", "undone", "other image"])
def test_save_does_not_wait_for_an_outline_that_is_not_coming(app, annotate, case,
                                                               monkeypatch):
    # Stopped before writing: only whether the wait was the reason matters here.
    monkeypatch.setattr(annotate, "_current_geometry",
                        lambda *_: (_ for _ in ()).throw(ValueError("stopped here")))
    opened = {"image": SHA, "at": 100, "drawing": "1"}
    history, ai, auto, done = _opened(), None, True, None
    if case == "failed":
        done = 150  # the model server answered with an error: draw by hand, and save
    elif case == "off":
        auto = False
    elif case == "taken":
        history, ai = _with_ai(), AI
    elif case == "undone":
        history, ai = _history.undo(_with_ai()), AI
    else:
        opened = {**opened, "image": "b" * 64}
    answer = _save(app, annotate, history, ai, auto, opened, done)
    assert not _refused(answer)
    assert "stopped here" in text_of(answer[0])  # on to write it
