"""*Compare with* in the browser: headless chromium, real files, the model server down.

A reader outlines an image by hand and saves it, edits the outline, and chooses the
saved version in *Compare with*: its outline is drawn over the image as a dashed trace
with a caption naming it and its Dice with the outline on screen, which follows the
edits; the outline being edited, its undo history and what Save writes are untouched;
"None", and a new image, take it away.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import (
    click,
    closed_port,
    console_errors,
    edit_status,
    image_to_screen,
    open_entry,
    settled,
    shape_paths,
    sign_in,
    signed_in_by_cookie,
    store_data,
    upload,
    wait_for,
)
from _dash_helpers import graph_js as _js
from axe_check import violations
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

import vectorizer
from annotation_client import _compare, _shapes, create_app, ids
from annotation_client._record import build_record
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.browser

USER = "X-Forwarded-User"

WIDTH, HEIGHT = 256, 200
#: The outline saved as version 1, and the one it is edited to (shifted 20 px right,
#: overlapping 40 of 60 columns: Dice 2 * 40 / 120).
SAVED = "M40,40L100,40L100,100L40,100Z"
EDITED = "M60,40L120,40L120,100L60,100Z"


def _ramp(path: Path, seed: int = 0) -> Path:
    """A grey ramp (the page refuses an image of one value); ``seed`` changes its hash."""
    ramp = np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) * 255 // (WIDTH + HEIGHT)
    Image.fromarray((ramp + seed).astype(np.uint8)).save(path)
    return path


def _same(paths) -> list[str]:
    return [_shapes.format_path(_shapes.parse_path(p)) for p in paths]


def _traces(dash_duo) -> list[dict]:
    """The graph's traces past the image: type, name, dash, and their x and y."""
    return _js(dash_duo, "return (gd && gd.data ? gd.data.slice(1) : []).map(t => ({"
                         "type: t.type, name: t.name, dash: (t.line || {}).dash,"
                         "x: t.x, y: t.y}));")


def _drawn_lines(dash_duo) -> int:
    """The scatter lines plotly drew (the compared version's, when one is)."""
    return _js(dash_duo, "return gd ? gd.querySelectorAll('.scatterlayer .js-line').length : 0;")


def _choices(select: Select) -> list[tuple[str, str]]:
    """``(value, text)`` of the list's options, without dbc.Select's hidden placeholder."""
    return [(o.get_attribute("value"), o.text) for o in select.options
            if o.get_attribute("hidden") is None]


def _choose_none(select: Select) -> None:
    """Pick the list's "None", as a user does (Select.select_by_value would pick the
    hidden placeholder of the same value, which a user cannot)."""
    next(o for o in select.options
         if o.get_attribute("value") == "" and o.get_attribute("hidden") is None).click()


def _caption(dash_duo) -> str:
    return dash_duo.driver.find_element(By.ID, ids.COMPARE_CAPTION).text


def _draw(dash_duo, path: str) -> None:
    """Put ``path`` on the graph as its only outline, as a graph edit does."""
    _js(dash_duo, "Plotly.relayout(gd, {shapes: [{type: 'path', xref: 'x', yref: 'y',"
                  " path: arguments[0]}]});", path)


def test_a_saved_version_is_drawn_beside_the_edited_outline_and_save_is_unchanged(
        dash_duo, tmp_path, artifacts_dir):
    data_dir = tmp_path / "annotations"
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element("#server-alert-message", timeout=20)
    settled(dash_duo, quiet=0.5)  # the recall of a stored name would write over one typed
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr Ada", Keys.TAB)
    image = _ramp(tmp_path / "frame.png")
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    upload(dash_duo, image)
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "frame.png")
    settled(dash_duo, quiet=0.5)
    compare = driver.find_element(By.ID, ids.COMPARE)
    assert not compare.is_displayed()  # nothing saved yet

    # Version 1: the first outline, labelled benign.
    _draw(dash_duo, SAVED)
    wait_for(dash_duo, lambda: "1 region(s)" in edit_status(dash_duo), 10,
             "the outline was not recorded")
    click(driver, By.XPATH, f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='benign']")
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=30)
    wait_for(dash_duo, compare.is_displayed, 10, "Compare with did not appear after a save")

    # The outline edited: 20 px to the right.
    _draw(dash_duo, EDITED)
    wait_for(dash_duo, lambda: _same(store_data(dash_duo, ids.HISTORY)["present"]["paths"])
             == _same([EDITED]), 10, "the edit was not recorded")
    settled(dash_duo, quiet=0.5)
    history = store_data(dash_duo, ids.HISTORY)
    steps = len(history["past"])
    assert _traces(dash_duo) == []

    # Compared with version 1: its outline over the image, as a dashed trace.
    select = Select(driver.find_element(By.ID, ids.COMPARE_VERSION))
    assert select.first_selected_option.text == "None"
    [none, first] = _choices(select)
    assert none == ("", "None") and first[0] == "1"
    assert first[1].startswith("v1 by Dr Ada, ") and first[1].endswith(" UTC, final label benign")
    select.select_by_value("1")
    wait_for(dash_duo, lambda: len(_traces(dash_duo)) == 1, 10, "no compared outline drawn")
    [trace] = _traces(dash_duo)
    xs, ys = _compare.overlay_xy(_shapes.svg_to_paths(
        (data_dir / sha / "v001.svg").read_text(), WIDTH, HEIGHT))
    assert (trace["type"], trace["name"], trace["dash"]) == ("scatter", "compared version",
                                                             "dash")
    assert (trace["x"], trace["y"]) == (xs, ys)
    assert (min(x for x in xs if x is not None), max(x for x in xs if x is not None)) == (40, 100)
    assert _drawn_lines(dash_duo) == 1
    wait_for(dash_duo, lambda: "Dice with the outline on screen: 0.667." in _caption(dash_duo),
             10, f"caption: {_caption(dash_duo)!r}")
    assert "v1 by Dr Ada" in _caption(dash_duo) and "final label benign" in _caption(dash_duo)
    driver.execute_script("document.getElementById(arguments[0]).scrollIntoView("
                          "{block: 'start', behavior: 'instant'});", ids.ANNOTATION_GRAPH)
    driver.save_screenshot(str(artifacts_dir / "01-compared.png"))
    # axe finds nothing in the row (the list is named by its label, the caption's colours
    # read); the rest of the page is test_accessibility's.
    assert [v["id"] for v in violations(driver) if any(
        'id="compare' in node["html"] or "compare" in " ".join(map(str, node["target"]))
        for node in v["nodes"])] == []
    # H hides the compared line with the outline (the image seen bare), and shows both.
    def shown():
        return _js(dash_duo, "return [gd.data[1].visible !== false,"
                             " gd.layout.shapes.every(s => s.visible !== false)];")

    driver.execute_script("document.activeElement.blur();")
    driver.find_element(By.TAG_NAME, "body").send_keys("h")
    wait_for(dash_duo, lambda: shown() == [False, False], 10, f"after H: {shown()}")
    driver.find_element(By.TAG_NAME, "body").send_keys("h")
    wait_for(dash_duo, lambda: shown() == [True, True], 10, f"after H again: {shown()}")
    # The outline on screen and its history are the edited ones, as they were.
    settled(dash_duo, quiet=0.5)
    assert _same(shape_paths(dash_duo)) == _same([EDITED])
    after = store_data(dash_duo, ids.HISTORY)
    assert len(after["past"]) == steps and after["present"] == history["present"]

    # Undo brings version 1's outline back on screen: the Dice follows, the trace stays.
    click(driver, By.ID, ids.UNDO_BUTTON)
    wait_for(dash_duo, lambda: "Dice with the outline on screen: 1.000." in _caption(dash_duo),
             10, f"caption: {_caption(dash_duo)!r}")
    assert len(_traces(dash_duo)) == 1
    # The compared line lies on the outline now, and a click there still selects the
    # outline for editing (its vertex handles show): the trace takes no clicks.
    driver.execute_script("document.getElementById(arguments[0]).scrollIntoView("
                          "{block: 'center', behavior: 'instant'});", ids.ANNOTATION_GRAPH)
    ActionChains(driver).move_to_location(*image_to_screen(dash_duo, 70, 40)).click().perform()
    wait_for(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll("
                                   "'#annotation-graph .outline-controllers circle').length;")
             == 4, 10, "a click on the outline did not select it")
    click(driver, By.ID, ids.REDO_BUTTON)
    wait_for(dash_duo, lambda: "Dice with the outline on screen: 0.667." in _caption(dash_duo),
             10, f"caption: {_caption(dash_duo)!r}")

    # Save writes the outline being edited, not the compared one.
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='2']", timeout=30)
    saved = _shapes.svg_to_paths((data_dir / sha / "v002.svg").read_text(), WIDTH, HEIGHT)
    assert _same(saved) == _same([EDITED])
    assert sorted(p.name for p in (data_dir / sha).iterdir() if p.name.startswith("v")) == [
        "v001.json", "v001.svg", "v001_mask.png", "v002.json", "v002.svg", "v002_mask.png"]
    # The list now names both, newest first, and keeps the choice.
    wait_for(dash_duo, lambda: len(_choices(select)) == 3, 10, "v2 was not listed")
    assert [value for value, _ in _choices(select)] == ["", "2", "1"]
    assert select.first_selected_option.get_attribute("value") == "1"

    # None takes it away (the listed None: dbc.Select's hidden placeholder has its value).
    _choose_none(select)
    wait_for(dash_duo, lambda: _traces(dash_duo) == [], 10, "the compared outline stayed")
    wait_for(dash_duo, lambda: _caption(dash_duo) == "", 10, "the caption stayed")
    assert _drawn_lines(dash_duo) == 0
    assert _same(shape_paths(dash_duo)) == _same([EDITED])

    # Chosen again, then another image opens: gone, and the list is back to None.
    select.select_by_value("1")
    wait_for(dash_duo, lambda: len(_traces(dash_duo)) == 1, 10, "no compared outline drawn")
    upload(dash_duo, _ramp(tmp_path / "other.png", seed=3))
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "other.png")
    settled(dash_duo, quiet=0.5)
    assert _traces(dash_duo) == [] and _caption(dash_duo) == ""
    assert not driver.find_element(By.ID, ids.COMPARE).is_displayed()
    assert Select(driver.find_element(By.ID, ids.COMPARE_VERSION)) \
        .first_selected_option.get_attribute("value") == ""
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_under_blinded_reading_a_reader_compares_their_own_and_a_reviewer_both(
        dash_duo, tmp_path):
    """Dr Ada and Dr Bo read one.png apart; Dr Ada is offered her own version only, the
    reviewer both, and compares them while revising Dr Bo's (the adjudication)."""
    folder = tmp_path / "worklist"
    folder.mkdir()
    image = _ramp(folder / "one.png")
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    meta = {"sha256": sha, "name": "one.png", "width": WIDTH, "height": HEIGHT,
            "worklist_path": "one.png"}
    data_dir = tmp_path / "annotations"
    for annotator, path, label, day in (("Dr Ada", SAVED, "benign", 1),
                                        ("Dr Bo", EDITED, "malignant", 2)):
        mask = _shapes.paths_to_mask([path], (HEIGHT, WIDTH))
        AnnotationStore(data_dir).save(
            sha, svg=_shapes.paths_to_svg([path], WIDTH, HEIGHT),
            mask_png=vectorizer.mask_to_png(mask),
            record=build_record(image=meta, annotator=annotator, final_mask=mask,
                                final_label=label,
                                saved_at=dt.datetime(2024, 6, day, 9, 0, tzinfo=dt.UTC)))
    app = create_app({"DATA_DIR": data_dir, "WORKLIST_DIR": folder, "AUTO_SEGMENT": False,
                      "MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "ANNOTATOR_HEADER": USER, "BLINDED_READING": True,
                      "REVIEWERS": "Dr Chair"})
    signed_in_by_cookie(app)
    dash_duo.start_server(app)
    driver = dash_duo.driver

    def sign_in_and_open(name):
        sign_in(driver, name)
        driver.get(dash_duo.server_url + "/")
        dash_duo.wait_for_element("#worklist-count", timeout=30)
        open_entry(dash_duo, "one.png")
        wait_for(dash_duo, driver.find_element(By.ID, ids.COMPARE).is_displayed, 10,
                 f"{name} is offered no version to compare with")
        return Select(driver.find_element(By.ID, ids.COMPARE_VERSION))

    # Dr Ada: her own version only; Dr Bo's is not named, not even in the page's HTML.
    select = sign_in_and_open("Dr Ada")
    assert _choices(select) == [("", "None"),
                                ("1", "v1 by Dr Ada, 2024-06-01 09:00 UTC, final label benign")]
    assert "Dr Bo" not in driver.find_element(By.ID, ids.COMPARE).get_attribute("innerHTML")
    select.select_by_value("1")
    wait_for(dash_duo, lambda: len(_traces(dash_duo)) == 1, 10, "no compared outline drawn")
    # Her version opened loaded, so the outline on screen is the one compared.
    wait_for(dash_duo, lambda: _caption(dash_duo).endswith("on screen: 1.000."), 10,
             f"caption: {_caption(dash_duo)!r}")

    # The reviewer: both, newest first; nothing of theirs is loaded as the image opens.
    select = sign_in_and_open("Dr Chair")
    assert [value for value, _ in _choices(select)] == ["", "2", "1"]
    assert _traces(dash_duo) == []
    select.select_by_value("1")
    wait_for(dash_duo, lambda: "v1 by Dr Ada" in _caption(dash_duo), 10,
             f"caption: {_caption(dash_duo)!r}")
    assert _caption(dash_duo).endswith("Dice with the outline on screen: 0.000.")
    # Revising Dr Bo's version with Dr Ada's beside it: their Dice is the caption's.
    click(driver, By.ID, ids.LOAD_SAVED_BUTTON)
    wait_for(dash_duo, lambda: _caption(dash_duo).endswith("on screen: 0.667."), 10,
             f"caption: {_caption(dash_duo)!r}")
    assert _same(shape_paths(dash_duo)) == _same([EDITED])
    [trace] = _traces(dash_duo)
    assert (trace["x"], trace["y"]) == _compare.overlay_xy([SAVED])
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
