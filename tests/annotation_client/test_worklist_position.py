"""Where the open worklist entry is: "Open: case07.png (7 of 18)", Previous and Next."""

from __future__ import annotations

import datetime as dt
import hashlib

import dash
import numpy as np
import pytest
from _dash_helpers import as_callback, click, closed_port, text_of, wait_for
from _saved_data import save_version
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from annotation_client import _views, _worklist, create_app, ids

CASES = ["case01.png", "case02.png", "case03.png"]


def _entry(path, version=0, too_large=False):
    return _worklist.WorklistEntry(path, 10, None if too_large else "0" * 64, version, too_large)


# --------------------------------------------------------------------------- plain functions


def test_neighbours_in_list_order_whatever_the_status():
    entries = [_entry("a.png"), _entry("b.png", version=3), _entry("c.png", too_large=True),
               _entry("d.png")]  # fmt: skip
    assert _worklist.neighbour(entries, "a.png", 1) == "b.png"  # saved: opened all the same
    assert _worklist.neighbour(entries, "b.png", 1) == "d.png"  # too large: passed over
    assert _worklist.neighbour(entries, "d.png", -1) == "b.png"
    assert _worklist.neighbour(entries, "a.png", -1) is None
    assert _worklist.neighbour(entries, "d.png", 1) is None
    # Nothing open (or an upload): Next gives the first, Previous the last.
    assert _worklist.neighbour(entries, None, 1) == "a.png"
    assert _worklist.neighbour(entries, None, -1) == "d.png"
    # The open entry is too large (listed after it grew): from its place.
    assert _worklist.neighbour(entries, "c.png", 1) == "d.png"
    assert _worklist.neighbour(entries, "c.png", -1) == "b.png"
    assert _worklist.neighbour([], None, 1) is None
    assert _worklist.position(entries, "d.png") == 4
    assert _worklist.position(entries, "x.png") is None


def test_from_an_entry_no_longer_listed_the_neighbours_are_those_of_its_place():
    # The open file moved or deleted (audit helper-407, F4): Next went to the first entry.
    entries = [_entry("a.png"), _entry("site A/sub/m1.png"), _entry("site A/sub/normal.png"),
               _entry("site A/z.png", too_large=True), _entry("zz/b.png")]
    gone = "site A/sub/m2.jpg.png"
    assert _worklist.neighbour(entries, gone, 1) == "site A/sub/normal.png"
    assert _worklist.neighbour(entries, gone, -1) == "site A/sub/m1.png"
    # Its place folder by folder, as the listing sorts; too large ones passed over.
    assert _worklist.neighbour(entries, "site A/y.png", 1) == "zz/b.png"  # z.png too large
    assert _worklist.neighbour(entries, "site A/sub/zz.png", 1) == "zz/b.png"
    assert _worklist.neighbour(entries, "0.png", -1) is None
    assert _worklist.neighbour(entries, "zzz.png", 1) is None
    assert _worklist.neighbour(entries, "zzz.png", -1) == "zz/b.png"


def test_the_position_line():
    entries = [_entry(f"case{n:02d}.png") for n in range(1, 19)]
    assert text_of(_views.worklist_position(entries, "case07.png")) == (
        "Open: case07.png (7 of 18)")
    assert _views.worklist_position(entries, None) is None


# --------------------------------------------------------------------------- the callbacks


def _app(tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    ramp = (np.add.outer(np.arange(20), np.arange(30)) // 4).astype(np.uint8)
    for seed, name in enumerate(CASES):
        Image.fromarray(ramp + np.uint8(seed * 7)).save(folder / name)
    return create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder,
                       "MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                       "REQUEST_TIMEOUT": 3})


def _run(app, trigger, function, *args):
    return as_callback(lambda: function(*args), trigger, app=app, value=1)


def _meta(app, path):
    from annotation_client.pages import annotate

    with app.server.test_request_context("/"):
        return annotate.open_worklist_entry({"path": path, "at": 1}, None)[0]


@pytest.mark.usefixtures("an_app_exists")
def test_previous_and_next_ask_for_the_neighbours_and_about_unsaved_work(tmp_path):
    from annotation_client.pages import annotate

    app = _app(tmp_path)
    meta = _meta(app, "case02.png")

    def press(button, mark=""):
        clicks = {"previous": 1} if button == ids.WORKLIST_PREVIOUS else {"following": 1}
        return _run(app, f"{button}.n_clicks", lambda: annotate.request_entry(
            None, None, None, None, mark, meta, "page", None, **clicks))

    request, value, asked, pending, _note = press(ids.WORKLIST_FOLLOWING)
    assert request["path"] == "case03.png" and value is None and not asked
    assert press(ids.WORKLIST_PREVIOUS)[0]["path"] == "case01.png"
    # Unsaved work: asked first, as a pick is.
    request, _value, asked, pending, _note = press(ids.WORKLIST_PREVIOUS, mark="dirty")
    assert request is dash.no_update and asked is True and pending == "case01.png"


@pytest.mark.usefixtures("an_app_exists")
def test_next_from_a_file_moved_away_opens_the_one_after_its_place(tmp_path):
    from annotation_client.pages import annotate

    app = _app(tmp_path)
    meta = _meta(app, "case02.png")
    folder = tmp_path / "worklist"
    (folder / "case02.png").rename(tmp_path / "case02.png")  # out of the worklist

    def press(button, clicks):
        return _run(app, f"{button}.n_clicks", lambda: annotate.request_entry(
            None, None, None, None, "", meta, "page", None, **clicks))

    assert press(ids.WORKLIST_FOLLOWING, {"following": 1})[0]["path"] == "case03.png"
    assert press(ids.WORKLIST_PREVIOUS, {"previous": 1})[0]["path"] == "case01.png"
    # The buttons say the same: from case02.png's place, neither end is reached.
    out = _run(app, f"{ids.WORKLIST_REFRESH}.n_clicks",
               lambda: annotate.show_worklist(True, 1, None, meta, None, "page", None))
    assert out[3:] == (False, False)


@pytest.mark.usefixtures("an_app_exists")
def test_the_listing_says_where_the_open_entry_is(tmp_path):
    from annotation_client.pages import annotate

    app = _app(tmp_path)
    result = _run(app, "annotate-page-load.data", annotate.show_worklist,
                  True, None, None, _meta(app, "case03.png"))
    _options, _note, position, previous_off, next_off = result
    assert text_of(position) == "Open: case03.png (3 of 3)"
    assert (previous_off, next_off) == (False, True)
    result = _run(app, "annotate-page-load.data", annotate.show_worklist, True, None, None, None)
    assert result[2:] == (None, False, False)


@pytest.mark.usefixtures("an_app_exists")
def test_the_health_poll_redraws_the_statuses_and_keeps_a_message(tmp_path):
    """Another reader's save shows at the next poll; the note under the list is drawn
    again only when its count changed, and a message in its place stays."""
    from annotation_client.pages import annotate

    app = _app(tmp_path)
    poll = f"{ids.SERVER_POLL}.n_intervals"

    def listing(trigger, shown_note=None):
        return _run(app, trigger, lambda: annotate.show_worklist(
            True, None, None, None, None, "page", None, 3, shown_note))

    options, note, *_ = listing("annotate-page-load.data")
    assert text_of(note) == "3 image(s) · 3 not annotated"
    # As the browser sends the note back with the next call: JSON.
    sent = [part.to_plotly_json() for part in note]
    assert listing(poll, sent)[1] is dash.no_update
    assert listing(poll, sent)[0] == options

    sha = hashlib.sha256((tmp_path / "worklist" / "case02.png").read_bytes()).hexdigest()
    save_version(tmp_path / "data", sha, name="case02.png", worklist_path="case02.png",
                 saved_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    options, note, *_ = listing(poll, sent)
    assert "case02.png — saved v1" in [o["label"] for o in options]
    assert text_of(note) == "3 image(s) · 2 not annotated"
    # Open next's message in the note's place stays, as the statuses move on.
    done = _views.alert("Every other image of the worklist has a saved annotation.", "info",
                        id="worklist-done").to_plotly_json()
    assert listing(poll, done)[1] is dash.no_update
    # Not the poll: drawn as before.
    assert text_of(listing(f"{ids.WORKLIST_REFRESH}.n_clicks", done)[1]) == (
        "3 image(s) · 2 not annotated")
    # A listing that failed is drawn again once the folder is back.
    failed = annotate._worklist_error(OSError("gone")).to_plotly_json()
    assert text_of(listing(poll, failed)[1]) == "3 image(s) · 2 not annotated"


@pytest.mark.usefixtures("an_app_exists")
def test_a_link_older_than_a_rename_opens_the_file_where_it_is_now(tmp_path):
    from annotation_client.pages import annotate

    app = _app(tmp_path)
    worklist = tmp_path / "worklist"
    sha = hashlib.sha256((worklist / "case02.png").read_bytes()).hexdigest()
    (worklist / "renamed").mkdir()
    (worklist / "case02.png").rename(worklist / "renamed" / "case two.png")

    def follow(path, expect):
        return _run(app, "annotate-url.search", annotate.open_linked, path, None, "",
                    expect, 1)

    request, asked, _pending, _note, revise = follow("case02.png", sha)
    assert request["path"] == "renamed/case two.png" and asked is False
    assert revise == {"worklist_path": "renamed/case two.png", "expect": sha, "version": 1}
    # No file holds it: the path as linked, for the open to say it is not there.
    assert follow("case02.png", "0" * 64)[0]["path"] == "case02.png"
    # A path that still holds its image is taken as it is.
    same = hashlib.sha256((worklist / "case01.png").read_bytes()).hexdigest()
    assert follow("case01.png", same)[0]["path"] == "case01.png"


def test_the_count_shown_is_found_in_the_layout_and_in_json(tmp_path):
    from annotation_client.pages import annotate

    note = _views.worklist_summary(_worklist.Worklist(tmp_path, (_entry("a.png"),), 1))
    assert annotate._shown_count(note) == "1 image(s) · 1 not annotated"
    assert annotate._shown_count([n.to_plotly_json() for n in note]) == (
        "1 image(s) · 1 not annotated")
    for other in (None, [], "text", {"props": None}, {"props": {"children": ["x", 3]}}):
        assert annotate._shown_count(other) is None


# --------------------------------------------------------------------------- in a browser


def _image_name(driver) -> str:
    return driver.execute_script(
        "var e = document.getElementById('image-name'); return e ? e.textContent : '';")


def _position(driver) -> str:
    return driver.find_element(By.ID, ids.WORKLIST_POSITION).text


def test_previous_and_next_walk_the_list_and_ask_before_dropping_work(dash_duo, tmp_path):
    app = _app(tmp_path)
    worklist = tmp_path / "worklist"
    # case02.png is saved: Next opens it all the same (list order, whatever the status).
    sha = hashlib.sha256((worklist / "case02.png").read_bytes()).hexdigest()
    save_version(tmp_path / "data", sha, name="case02.png", worklist_path="case02.png",
                 saved_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    assert _position(driver) == ""

    click(driver, By.ID, ids.WORKLIST_FOLLOWING)  # nothing open: the first
    wait_for(dash_duo, lambda: _image_name(driver) == "case01.png", 20, "case01 did not open")
    wait_for(dash_duo, lambda: _position(driver) == "Open: case01.png (1 of 3)", 10,
             f"position: {_position(driver)!r}")
    assert driver.find_element(By.ID, ids.WORKLIST_PREVIOUS).get_attribute("disabled")
    click(driver, By.ID, ids.WORKLIST_FOLLOWING)
    wait_for(dash_duo, lambda: _image_name(driver) == "case02.png", 20, "case02 did not open")
    wait_for(dash_duo, lambda: _position(driver) == "Open: case02.png (2 of 3)", 10,
             f"position: {_position(driver)!r}")

    # Unsaved work: asked first; Cancel keeps the image.
    driver.find_element(By.ID, ids.NOTE).send_keys("oval")
    dash_duo.wait_for_element(f"#{ids.UNSAVED_MARK}.dirty", timeout=10)
    click(driver, By.ID, ids.WORKLIST_PREVIOUS)
    WebDriverWait(driver, 15).until(expected_conditions.alert_is_present()).dismiss()
    assert _image_name(driver) == "case02.png"
    click(driver, By.ID, ids.WORKLIST_PREVIOUS)
    WebDriverWait(driver, 15).until(expected_conditions.alert_is_present()).accept()
    wait_for(dash_duo, lambda: _image_name(driver) == "case01.png", 20, "case01 did not open")
    wait_for(dash_duo, lambda: _position(driver) == "Open: case01.png (1 of 3)", 10,
             f"position: {_position(driver)!r}")


def test_next_to_a_file_of_the_same_name_in_another_folder_focuses_the_image(dash_duo,
                                                                            tmp_path):
    # PACS exports repeat names in every study's folder: the name alone did not change.
    from _dash_helpers import case_png, worklist_app

    worklist = tmp_path / "worklist"
    (worklist / "study1").mkdir(parents=True)
    (worklist / "study2").mkdir()
    case_png(worklist / "study1" / "IM00001.png", 1)
    case_png(worklist / "study2" / "IM00001.png", 2)
    dash_duo.start_server(worklist_app(tmp_path / "data", worklist))
    driver = dash_duo.driver
    dash_duo.wait_for_element("#worklist-count", timeout=30)

    def focused_on_image() -> bool:
        return driver.execute_script(
            "return document.getElementById('image-panel').contains(document.activeElement);")

    for study in ("study1", "study2"):
        click(driver, By.ID, ids.WORKLIST_FOLLOWING)
        wait_for(dash_duo, lambda s=study: _position(driver).startswith(f"Open: {s}/"), 20,
                 f"{study} did not open")
        wait_for(dash_duo, focused_on_image, 10, f"the focus stayed on Next for {study}")
        # Back on the button, as a keyboard user who presses Next again would be.
        driver.execute_script("document.getElementById(arguments[0]).focus();",
                              ids.WORKLIST_FOLLOWING)


def test_past_the_lists_limit_the_neighbours_follow_the_folders_order():
    """From a file past the listing's limit (opened by Open next or found by a search)
    Next gave None and Previous the last listed entry: they go on through the folder."""
    entries = [_entry("a.png"), _entry("b.png", too_large=True)]
    unlisted = ("c.png", "d/big.png", "d/e.png")
    opens = {"c.png": True, "d/big.png": False, "d/e.png": True}.__getitem__
    assert _worklist.neighbour(entries, "a.png", 1, unlisted, opens) == "c.png"
    assert _worklist.neighbour(entries, "c.png", 1, unlisted, opens) == "d/e.png"
    assert _worklist.neighbour(entries, "d/e.png", -1, unlisted, opens) == "c.png"
    assert _worklist.neighbour(entries, "c.png", -1, unlisted, opens) == "a.png"
    assert _worklist.neighbour(entries, "d/e.png", 1, unlisted, opens) is None
    assert _worklist.neighbour(entries, None, -1, unlisted, opens) == "d/e.png"
    # Moved or deleted since it opened: from its place among them.
    assert _worklist.neighbour(entries, "d/a.png", 1, unlisted, opens) == "d/e.png"
    assert _worklist.neighbour(entries, "d/a.png", -1, unlisted, opens) == "c.png"
    # Asked only of the files stepped over.
    asked = []
    _worklist.neighbour(entries, "a.png", 1, unlisted, lambda p: asked.append(p) or True)
    assert asked == ["c.png"]
