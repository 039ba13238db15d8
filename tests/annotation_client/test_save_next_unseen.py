"""A case is saved only once its reader has seen it: Save & next pressed twice.

The first press saves the case and opens the next; the second landed on that next case
less than a second after it opened, and saved it with the AI's untouched outline and no
label: marked saved, never offered again, counted as a read (audit helper-407, F2). A
save of an image opened a moment ago with nothing changed on it is refused, and so is a
Save & next whose save would go to another image than the one it was pressed over
(``annotate._unseen_save``), and so is a plain Save that waited, on a busy page, until
another image was open (``annotate._pressed_over_another``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import flask
import pytest
from _dash_helpers import (
    click,
    closed_port,
    graph_js,
    make_worklist,
    open_entry,
    open_work,
    settled,
    store_data,
    text_of,
    wait_for,
    worklist_app,
)
from _dash_helpers import image_name as _image_name
from _dash_helpers import start_on_worklist as _start
from _dash_helpers import worklist_versions as _versions
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids


@pytest.fixture
def worklist(tmp_path) -> Path:
    return make_worklist(tmp_path)


def _save_and_next_keys(dash_duo) -> None:
    """Ctrl+Shift+S to the page, once Save & next can be clicked (the key is ignored
    while it cannot)."""
    wait_for(dash_duo, lambda: dash_duo.driver.find_element(
        By.ID, ids.SAVE_NEXT_BUTTON).is_enabled(), 10, "Save & next stayed disabled")
    chain = ActionChains(dash_duo.driver)
    chain.key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("s")
    chain.key_up(Keys.SHIFT).key_up(Keys.CONTROL).perform()


def _save_message(dash_duo) -> str:
    return dash_duo.driver.execute_script(
        "var e = document.getElementById('save-result'); return e ? e.textContent : '';")


def _ctrl_s_answer(dash_duo, timeout: float) -> str:
    """Ctrl+S, once Save is enabled again on the case Save & next opened: the first
    answer said for it, read as it appears (on a busy page the open's own late message,
    clear_save_message, can replace it a moment after)."""
    wait_for(dash_duo, lambda: dash_duo.driver.find_element(
        By.ID, ids.SAVE_BUTTON).is_enabled(), 10, "Save stayed disabled")
    chain = ActionChains(dash_duo.driver)
    chain.key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()

    def answered() -> str | None:
        said = _save_message(dash_duo)
        return said if said.startswith(("Not saved.", "Saved.")) and "a.png" not in said \
            else None

    return wait_for(dash_duo, answered, timeout, "no answer for b.png")


def _save_a_then_next(dash_duo) -> None:
    """a.png given a reader and a note, then Ctrl+Shift+S: saved, and b.png open."""
    driver = dash_duo.driver
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Fast Reader", Keys.TAB)
    driver.find_element(By.ID, ids.NOTE).send_keys("oval")
    dash_duo.wait_for_element(f"#{ids.UNSAVED_MARK}.dirty", timeout=10)
    driver.execute_script("document.activeElement.blur();")
    _save_and_next_keys(dash_duo)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "b.png", 20, "b.png did not open")


def test_a_second_save_and_next_does_not_save_the_next_case_unseen(dash_duo, data_dir, worklist):
    _start(dash_duo, data_dir, worklist)
    _save_a_then_next(dash_duo)
    _save_and_next_keys(dash_duo)  # pressed again at once, as the audit did
    wait_for(dash_duo, lambda: "Not saved." in _save_message(dash_duo), 15, "no refusal")
    assert "b.png opened less than 1.5 seconds ago, and nothing on it has changed" \
        in _save_message(dash_duo)
    settled(dash_duo, quiet=1.0)
    assert _image_name(dash_duo) == "b.png"
    assert _versions(data_dir, worklist, "a.png") == ["v001.json"]
    assert _versions(data_dir, worklist, "b.png") == []

    # Seen for a moment, the case is saved as it is, and the next one opens.
    time.sleep(1.5)
    _save_and_next_keys(dash_duo)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "c.png", 20, "c.png did not open")
    assert _versions(data_dir, worklist, "b.png") == ["v001.json"]


def _start_late(dash_duo, data_dir, worklist, monkeypatch, app=None) -> None:
    """The worklist's page with a.png open, the server's time of every open set 2 s back,
    as a busy machine's delay in drawing the image would make it."""
    app = app or worklist_app(data_dir, worklist)
    from annotation_client.pages import annotate  # registered by create_app

    opened_store = annotate._opened_store

    def late(sha, drawing):
        opened = opened_store(sha, drawing)
        return {**opened, "at": opened["at"] - 2 * 10**9}

    monkeypatch.setattr(annotate, "_opened_store", late)
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    open_entry(dash_duo, "a.png")


def test_the_time_a_case_was_seen_counts_from_when_the_tab_showed_it(
        dash_duo, data_dir, worklist, monkeypatch):
    """On a busy machine the next case was drawn over 1.5 s after the server opened it:
    a second press at once then saved it unseen (CI of b3e8056). The server's open time
    is set 2 s back here, as such a delay would make it; the tab's own clock decides."""
    _start_late(dash_duo, data_dir, worklist, monkeypatch)
    _save_a_then_next(dash_duo)
    _save_and_next_keys(dash_duo)
    wait_for(dash_duo, lambda: "Not saved." in _save_message(dash_duo), 15, "no refusal")
    assert "b.png opened less than 1.5 seconds ago" in _save_message(dash_duo)
    settled(dash_duo, quiet=1.0)
    assert _versions(data_dir, worklist, "b.png") == []
    assert _image_name(dash_duo) == "b.png"


def test_a_plain_save_at_once_after_save_and_next_counts_from_when_the_tab_showed_it(
        dash_duo, data_dir, worklist, monkeypatch):
    """Ctrl+S (Save) pressed at once after Save & next opened the next case: that save, too,
    says how long the tab has shown the case. Only the server's clock counted for it, and
    on a busy machine that clock had run past 1.5 s before the case was drawn."""
    _start_late(dash_duo, data_dir, worklist, monkeypatch)
    _save_a_then_next(dash_duo)
    assert "b.png opened less than 1.5 seconds ago" in _ctrl_s_answer(dash_duo, 15)
    settled(dash_duo, quiet=1.0)
    assert _versions(data_dir, worklist, "b.png") == []
    assert _image_name(dash_duo) == "b.png"


def _late_after_an_open(data_dir, worklist, seconds: float, output: str | None = None):
    """A worklist app (no model server) whose answers to the callbacks an open sets off
    (IMAGE_OPENED among their inputs; only those writing ``output``, when given) come
    ``seconds`` late while the event returned with it is set: a busy server."""
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "WORKLIST_DIR": worklist, "AUTO_SEGMENT": False})
    late = threading.Event()

    @app.server.before_request
    def _late():
        body = flask.request.get_json(silent=True) or {}
        if (late.is_set() and f"{ids.IMAGE_OPENED}.data" in (body.get("changedPropIds") or [])
                and (output is None or output in str(body.get("output")))):
            time.sleep(seconds)

    return app, late


def test_a_save_pressed_at_once_on_a_busy_page_counts_up_to_the_press(
        dash_duo, data_dir, worklist, monkeypatch):
    """An open sets off a dozen callbacks, and Dash runs no other, SAVE_PRESS's and
    IMAGE_SHOWN's included, until one of them has answered: on a busy server, seconds
    after the case was drawn. Ctrl+S pressed at once on the case Save & next opened was
    counted up to when SAVE_PRESS ran, and the case was saved unseen."""
    app, busy = _late_after_an_open(data_dir, worklist, 2.5)
    _start_late(dash_duo, data_dir, worklist, monkeypatch, app)
    busy.set()
    _save_a_then_next(dash_duo)
    assert "b.png opened less than 1.5 seconds ago" in _ctrl_s_answer(dash_duo, 30)
    busy.clear()
    settled(dash_duo, quiet=1.0)
    assert _versions(data_dir, worklist, "b.png") == []


def test_the_open_s_late_message_leaves_the_answer_to_a_save_pressed_after_it(
        dash_duo, data_dir, worklist, monkeypatch):
    """The open's own message (clear_save_message: "Saved. a.png, as version 1, before
    this image was opened") came after the refusal of a Ctrl+S pressed at once on the
    case Save & next opened, and replaced it: nothing was saved, and the reader did not
    see why. Here that message comes 5 s late, and the press is refused whatever the
    clocks say (no reader's name); the refusal, answering the later event, stays."""
    app, late = _late_after_an_open(data_dir, worklist, 5, f"{ids.SAVED_BEFORE_NEXT}.data")
    _start_late(dash_duo, data_dir, worklist, monkeypatch, app)
    late.set()
    _save_a_then_next(dash_duo)
    name = dash_duo.driver.find_element(By.ID, ids.ANNOTATOR)
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys(Keys.BACKSPACE)
    dash_duo.driver.execute_script("document.activeElement.blur();")
    refused = _ctrl_s_answer(dash_duo, 15)
    assert refused.startswith("Not saved.")
    # The open's message has come once the line it says is used up.
    wait_for(dash_duo, lambda: store_data(dash_duo, ids.SAVED_BEFORE_NEXT) is None, 15,
             "the open's message did not come")
    late.clear()
    settled(dash_duo, quiet=1.0)
    assert _save_message(dash_duo) == refused
    assert _versions(data_dir, worklist, "b.png") == []


def test_a_save_press_notes_the_image_on_screen(dash_duo, data_dir, worklist):
    """The press itself notes which image the graph showed (its uirevision: the image's
    sha256), which the save compares with the image open when its request goes out
    (annotate._pressed_over_another); a press over the open image saves it."""
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Fast Reader", Keys.TAB)
    settled(dash_duo, quiet=0.5)
    sha = hashlib.sha256((worklist / "a.png").read_bytes()).hexdigest()
    assert graph_js(dash_duo, "return gd.__sonotraceImage;") == sha
    click(driver, By.ID, ids.SAVE_BUTTON)
    assert driver.execute_script("return window.sonotraceSavePressedOver;") == sha
    wait_for(dash_duo, lambda: _save_message(dash_duo).startswith("Saved."), 20, "not saved")
    assert _versions(data_dir, worklist, "a.png") == ["v001.json"]


# ----------------------------------------------------------------------------- the rule


def _save(app, annotate, meta, history, *, label=None, opened=None, pending=None, clicks=1,
          press=None):
    _meta, _history, image_data = open_work()
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        alert, _work = annotate.save(clicks, meta, history, None, None, label, "", "Dr Ada",
                                     image_data, *blank, None, None, None, None, opened,
                                     None, pending, None, None, press)
    return text_of(alert)


@pytest.mark.usefixtures("an_app_exists")
def test_a_save_of_an_image_just_opened_with_nothing_changed_is_refused(tmp_path, annotate):
    from annotation_client import _editing

    app = create_app({"DATA_DIR": tmp_path / "data", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    meta, _drawn, _data = open_work()
    sha = meta["sha256"]
    untouched = {"image": sha, "present": _editing.empty_state(), "past": [], "future": []}
    now = {"image": sha, "at": time.time_ns(), "after_save_next": True}
    text = _save(app, annotate, meta, untouched, opened=now)
    assert text.startswith("Not saved.") and "scan.png opened less than 1.5 seconds ago" in text
    assert not (tmp_path / "data" / sha).exists()
    # A moment later; or with a label set, an outline drawn: saved.
    before = {**now, "at": time.time_ns() - int(annotate.SEEN_SECONDS * 1e9) - 1}
    assert _save(app, annotate, meta, untouched, opened=before).startswith("Saved.")
    assert _save(app, annotate, meta, untouched, label="benign", opened=now).startswith("Saved.")


@pytest.mark.usefixtures("an_app_exists")
def test_a_plain_save_counts_from_when_its_press_says_the_tab_showed_the_image(
        tmp_path, annotate):
    """Save (no Save & next behind it) pressed 0.3 s after the tab drew the case, which the
    server opened 5 s before: refused, as the tab's clock says; a press of another click is
    not this save's, and the server's clock counts."""
    from annotation_client import _editing

    app = create_app({"DATA_DIR": tmp_path / "data", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    meta, _drawn, _data = open_work()
    sha = meta["sha256"]
    untouched = {"image": sha, "present": _editing.empty_state(), "past": [], "future": []}
    long_ago = {"image": sha, "at": time.time_ns() - 5 * 10**9, "after_save_next": True}
    press = {"clicks": 4, "image": sha, "shown_ms": 300}
    text = _save(app, annotate, meta, untouched, opened=long_ago, clicks=4, press=press)
    assert text.startswith("Not saved.") and "scan.png opened less than 1.5 seconds ago" in text
    assert not (tmp_path / "data" / sha).exists()
    other = {**press, "clicks": 3}
    assert _save(app, annotate, meta, untouched, opened=long_ago, clicks=4,
                 press=other).startswith("Saved.")


@pytest.mark.usefixtures("an_app_exists")
def test_a_save_pressed_over_another_image_is_refused(tmp_path, annotate):
    """Save pressed over image A waited among the requests in flight while B was picked:
    it went out with B open, and saved B's untouched outline as a read. The press says
    which image the graph showed (``over``); a save of another is refused, whatever the
    time, nothing written. A press over this image, before any was drawn, or of another
    click, and the question's OK after a press over this image: saved."""
    from annotation_client import _editing

    app = create_app({"DATA_DIR": tmp_path / "data", "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    meta, _drawn, _data = open_work()
    sha = meta["sha256"]
    untouched = {"image": sha, "present": _editing.empty_state(), "past": [], "future": []}
    other = {"clicks": 2, "image": sha, "shown_ms": 60_000, "over": "f" * 64}
    text = _save(app, annotate, meta, untouched, label="benign", clicks=2, press=other)
    assert text.startswith("Not saved.")
    assert "Save was pressed over another image, before scan.png opened" in text
    assert not (tmp_path / "data" / sha).exists()
    assert _save(app, annotate, meta, untouched, label="benign", clicks=2,
                 press={**other, "over": sha}).startswith("Saved.")
    # Past the rule, to the check that the same work is not saved twice.
    for press in ({**other, "over": None}, {**other, "clicks": 1}):
        assert _save(app, annotate, meta, untouched, label="benign", clicks=2,
                     press=press).startswith("Nothing changed since version 1")
    assert annotate._pressed_over_another(meta, 2, other) is not None
    assert annotate._pressed_over_another(meta, 2, {**other, "over": sha}) is None


@pytest.mark.usefixtures("an_app_exists")
def test_unseen_save_rule(annotate):
    from annotation_client import _editing

    meta, drawn, _data = open_work()
    sha = meta["sha256"]
    untouched = {"image": sha, "present": _editing.empty_state(), "past": [], "future": []}
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    now = {"image": sha, "at": time.time_ns(), "after_save_next": True}

    def unseen(history=untouched, label=None, opened=now, pending=None, clicks=3, press=None):
        return annotate._unseen_save(meta, history, None, label, "", blank, clicks,
                                     opened, pending, press)

    assert "opened less than" in unseen()
    assert unseen(history=None) is not None  # nothing drawn yet: still as opened
    assert unseen(history=drawn) is None  # an outline drawn
    assert unseen(label="benign") is None
    # Opened long ago, another image's open, no open known (a reload), a forged time; or
    # opened by the reader's own pick or upload, not by Save & next.
    for opened in ({**now, "at": time.time_ns() - 2 * 10**9}, {**now, "image": "f" * 64},
                   None, {**now, "at": "soon"}, {**now, "at": True},
                   {**now, "at": time.time_ns() + 60 * 10**9},
                   {"image": sha, "at": time.time_ns()}, {**now, "after_save_next": 1}):
        assert unseen(opened=opened) is None, opened
    # Save & next pressed over another image, whose save would land on this one: refused
    # even with the work changed; a Save & next of another click, or of this image, is not.
    other = {"clicks": 3, "image": "a" * 64}
    assert "pressed for another image" in unseen(history=drawn, pending=other)
    assert unseen(history=drawn, pending={**other, "clicks": 2}) is None
    assert unseen(history=drawn, pending={**other, "image": sha}) is None
    # How long the tab showed it, when this save's press says so (a Save & next's or a
    # plain Save's), outweighs the server's clock, which starts before the image travels
    # and is drawn.
    long_ago = {**now, "at": time.time_ns() - 5 * 10**9}
    press = {"clicks": 3, "image": sha}
    shown = {**press, "shown_ms": 300}
    assert "opened less than" in unseen(opened=long_ago, press=shown)
    assert "opened less than" in unseen(opened=long_ago, press=shown,
                                        pending={"clicks": 3, "image": sha})
    assert unseen(opened={**now, "at": time.time_ns() - 2 * 10**9},
                  press={**press, "shown_ms": 1600}) is None
    # But no longer than the server has had it open: the tab drew it after that.
    assert "opened less than" in unseen(opened=now, press={**press, "shown_ms": 1600})
    # Unknown, or not this save's press (another click, another image's): the server's
    # clock, as before.
    for other in ({**press, "shown_ms": None}, {**press, "shown_ms": -5},
                  {**press, "shown_ms": True}, {**press, "shown_ms": "soon"},
                  {**press, "shown_ms": float("nan")}, {**shown, "clicks": 2},
                  {**shown, "image": "f" * 64}, {"shown_ms": 300}, [3, sha, 300]):
        assert unseen(opened=long_ago, press=other) is None, other
        assert "opened less than" in unseen(opened=now, press=other), other


@pytest.mark.usefixtures("an_app_exists")
def test_the_open_s_message_names_the_open_it_is_for(annotate):
    """clear_save_message's answer says which open it is for (IMAGE_OPENED's "at"): the
    browser puts it under Save only for that open, and only if no Save was pressed on it
    (SAVE_ALERT_ON_OPEN)."""
    opened = {"image": "b" * 64, "at": 1_765_000_000_000_000_000}
    meta = {"sha256": "b" * 64}
    saved = {"image": "a" * 64, "name": "a.png", "version": 2}
    message, used = annotate.clear_save_message(opened, saved, meta)
    assert message["opened"] == opened["at"] and used is None
    assert text_of(message["alert"]) == (
        "Saved. a.png, as version 2, before this image was opened.")
    # Opened otherwise than by Save & next: the message under Save is emptied.
    assert annotate.clear_save_message(opened, None, meta) == (
        {"opened": opened["at"], "alert": None}, None)
