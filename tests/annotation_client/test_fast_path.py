"""The fast path through a case: Save in view, Save & next, keys, wheel, tool, selects.

A radiologist reads a worklist one case after another: the image opens, the
outline is edited, the label set, the case saved and the next one opened. The
browser tests here run that loop with the model server down (the outline is not
the point) on small images of a worklist folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import click, find_component, make_worklist, settled, wait_for
from _dash_helpers import graph_js as _js
from _dash_helpers import image_name as _image_name
from _dash_helpers import open_entry as _open_entry
from _dash_helpers import start_on_worklist as _start
from _dash_helpers import worklist_app as _app
from _dash_helpers import worklist_versions as _versions
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from annotation_client import ids

# --------------------------------------------------------------------------- helpers


@pytest.fixture
def worklist(tmp_path) -> Path:
    return make_worklist(tmp_path)


def _rect(dash_duo, element_id: str) -> dict:
    return dash_duo.driver.execute_script(
        "var r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, inner: window.innerHeight};",
        element_id,
    )


def _in_view(rect: dict) -> bool:
    return rect["top"] >= 0 and rect["bottom"] <= rect["inner"] and rect["bottom"] > rect["top"]


def _has_focus(dash_duo, element) -> bool:
    return dash_duo.driver.execute_script("return document.activeElement === arguments[0];",
                                          element)


def _press(dash_duo, key: str, *, shift=False, element=None) -> None:
    """Ctrl(+Shift)+key, to ``element`` (focused first) or to whatever has the focus.

    A field that has the focus is not clicked again: a click at its centre can land on
    the sticky action bar over it, move the focus to the page, and send the keys there.
    One that has not is clicked with :func:`click`, which raises if something covers it.
    Either way the keys go only once the field is known to have the focus.
    """
    if element is not None:
        if not _has_focus(dash_duo, element):
            click(dash_duo.driver, By.ID, element.get_attribute("id"))
        assert _has_focus(dash_duo, element), (
            "the keys would not go to #" + element.get_attribute("id") + " but to #"
            + dash_duo.driver.execute_script("return document.activeElement.id;"))
    chain = ActionChains(dash_duo.driver)
    chain.key_down(Keys.CONTROL)
    if shift:
        chain.key_down(Keys.SHIFT)
    chain.send_keys(key)
    if shift:
        chain.key_up(Keys.SHIFT)
    chain.key_up(Keys.CONTROL).perform()


def _save_message(dash_duo) -> str:
    return dash_duo.driver.execute_script(
        "var e = document.getElementById('save-result'); return e ? e.textContent : '';"
    )


# --------------------------------------------------------------------------- Save in view


def test_save_and_open_next_are_in_view_without_scrolling(dash_duo, data_dir, worklist,
                                                          artifacts_dir):
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    for width, height in ((1366, 768), (1440, 900), (1920, 1080)):
        driver.set_window_size(width, height)
        driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
        time.sleep(0.3)
        for element_id in (ids.SAVE_BUTTON, ids.SAVE_NEXT_BUTTON, ids.WORKLIST_NEXT):
            rect = _rect(dash_duo, element_id)
            assert _in_view(rect), (width, height, element_id, rect)
        driver.save_screenshot(str(artifacts_dir / f"01-top-{width}x{height}.png"))
        # Scrolled to the end, the bar is back in its place after the Record card,
        # which it does not cover.
        driver.execute_script(
            "window.scrollTo({top: document.body.scrollHeight, behavior: 'instant'});")
        time.sleep(0.2)
        bar, note = _rect(dash_duo, ids.ACTION_BAR), _rect(dash_duo, ids.NOTE)
        assert note["bottom"] <= bar["top"] and _in_view(note), (width, note, bar)
        driver.save_screenshot(str(artifacts_dir / f"02-end-{width}x{height}.png"))
    # The keyboard reaches Save after the record's fields.
    order = driver.execute_script(
        "var all = Array.from(document.querySelectorAll('textarea, input, button, select'));"
        "return [all.indexOf(document.getElementById(arguments[0])),"
        "        all.indexOf(document.getElementById(arguments[1])),"
        "        all.indexOf(document.getElementById(arguments[2]))];",
        ids.NOTE, ids.SAVE_BUTTON, ids.SAVE_NEXT_BUTTON,
    )
    assert 0 <= order[0] < order[1] < order[2], order


def test_without_a_worklist_there_is_no_save_and_next(dash_duo, data_dir):
    dash_duo.start_server(_app(data_dir, None))
    dash_duo.wait_for_element(f"#{ids.SAVE_BUTTON}")
    assert not dash_duo.find_element(f"#{ids.SAVE_NEXT_BUTTON}").is_displayed()


# --------------------------------------------------------------------------- the wheel


def _ranges(dash_duo) -> list:
    return _js(dash_duo, "return [gd._fullLayout.xaxis.range.slice(),"
                         " gd._fullLayout.yaxis.range.slice()];")


def _wheel(dash_duo, delta: int, ctrl: bool) -> None:
    """A wheel event over the middle of the image, as plotly's drag layer gets it."""
    _js(
        dash_duo,
        "var drag = gd.querySelector('.nsewdrag'), r = drag.getBoundingClientRect();"
        "drag.dispatchEvent(new WheelEvent('wheel', {deltaY: arguments[0], ctrlKey: arguments[1],"
        "  clientX: r.left + r.width / 2, clientY: r.top + r.height / 2,"
        "  bubbles: true, cancelable: true}));",
        delta, ctrl,
    )


def test_the_wheel_over_the_image_scrolls_the_page_and_ctrl_wheel_zooms(
    dash_duo, data_dir, worklist
):
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    driver.set_window_size(1440, 900)
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
    time.sleep(0.3)
    before = _ranges(dash_duo)
    graph = driver.find_element(By.CSS_SELECTOR, "#annotation-graph .nsewdrag")
    # A real wheel: the page scrolls, the image keeps its view, and a hint says how to zoom.
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(graph), 0, 300).perform()
    wait_for(dash_duo, lambda: driver.execute_script("return window.scrollY;") > 0, 5,
             "the page did not scroll")
    assert _ranges(dash_duo) == before
    hint = dash_duo.wait_for_element("#wheel-hint.shown", timeout=5)
    assert hint.text == "Ctrl + scroll to zoom"
    wait_for(dash_duo, lambda: not driver.find_elements(By.CSS_SELECTOR, "#wheel-hint.shown"),
             5, "the hint stayed")

    # Ctrl+wheel (or a pinch) zooms in.
    _wheel(dash_duo, -300, ctrl=True)
    (x0, x1), (y0, y1) = wait_for(
        dash_duo, lambda: (r := _ranges(dash_duo)) != before and r, 5, "ctrl+wheel did not zoom")
    assert x1 - x0 < 600 and y0 - y1 < 400
    # Zoomed out as far as it goes, the view stops at the image's edges.
    for _ in range(8):
        _wheel(dash_duo, 600, ctrl=True)
        time.sleep(0.1)
    (x0, x1), (y0, y1) = _ranges(dash_duo)
    assert 0 - 1e-6 <= x0 < x1 <= 600 + 1e-6, (x0, x1)
    assert 400 + 1e-6 >= y0 > y1 >= 0 - 1e-6, (y0, y1)


# --------------------------------------------------------------------------- Save & next


def test_save_and_next_saves_then_opens_the_next_case_and_a_refusal_stays(
    dash_duo, data_dir, worklist
):
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    # Refused (no annotator): the message stays, and so does the image.
    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    wait_for(dash_duo, lambda: "Not saved." in _save_message(dash_duo), 15, "no refusal")
    settled(dash_duo, quiet=1.0)
    assert _image_name(dash_duo) == "a.png"
    assert "Not saved." in _save_message(dash_duo)
    assert _versions(data_dir, worklist, "a.png") == []

    # Ctrl+S in the note saves, and opens nothing; the browser does not save the page.
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Fast Reader", Keys.TAB)
    note = driver.find_element(By.ID, ids.NOTE)
    note.send_keys("oval, parallel")
    dash_duo.wait_for_element(f"#{ids.UNSAVED_MARK}.dirty", timeout=10)
    driver.execute_script(
        "document.addEventListener('keydown', function (e) {"
        "  if (e.key.toLowerCase() === 's') { window.__prevented = e.defaultPrevented; } });")
    _press(dash_duo, "s", element=note)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)
    assert driver.execute_script("return window.__prevented;") is True
    settled(dash_duo, quiet=1.0)
    assert _image_name(dash_duo) == "a.png"
    assert _versions(data_dir, worklist, "a.png") == ["v001.json"]

    # Edited again, Save & next: saved (v2), then b.png opens, with no question asked
    # about unsaved work (the work is saved by then).
    note.send_keys(", circumscribed")
    dash_duo.wait_for_element(f"#{ids.UNSAVED_MARK}.dirty", timeout=10)
    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "b.png", 20, "b.png did not open")
    settled(dash_duo, quiet=0.5)  # b.png's open has answered in full (see _open_entry)
    assert _versions(data_dir, worklist, "a.png") == ["v001.json", "v002.json"]
    sha_dir = next(p for p in data_dir.iterdir() if (p / "v002.json").exists())
    record = json.loads((sha_dir / "v002.json").read_text())
    assert record["final"]["note"] == "oval, parallel, circumscribed"
    assert driver.find_element(By.ID, ids.NOTE).get_attribute("value") == ""
    # The image's keys act on b.png at once: the focus left the button for its column.
    assert driver.execute_script(
        "return document.getElementById('image-panel').contains(document.activeElement);")
    # The save's own message went with a.png: a line over b.png says it was saved.
    done = "#save-next-result"
    assert dash_duo.find_element(done).text.startswith(
        "Saved. a.png, as version 2, before this image was opened.")

    # Ctrl+Shift+S from the page (not from the note, where keys are the note's).
    note = driver.find_element(By.ID, ids.NOTE)
    _press(dash_duo, "s", shift=True, element=note)
    settled(dash_duo, quiet=1.0)
    assert _image_name(dash_duo) == "b.png" and _versions(data_dir, worklist, "b.png") == []
    driver.execute_script("document.activeElement.blur();")
    _press(dash_duo, "s", shift=True)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "c.png", 20, "c.png did not open")
    assert _versions(data_dir, worklist, "b.png") == ["v001.json"]
    wait_for(dash_duo, lambda: "b.png, as version 1," in dash_duo.find_element(done).text, 10)
    # Said once: the next image opened otherwise has no such line.
    click(driver, By.ID, ids.WORKLIST_PREVIOUS)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "b.png", 20, "Previous did not open")
    settled(dash_duo, quiet=0.5)
    assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, done)


@pytest.mark.usefixtures("an_app_exists")
def test_the_line_over_the_next_case_takes_only_a_save_of_another_image(annotate):
    # The store is the browser's: a forged or stale value says nothing.
    meta = {"sha256": "b" * 64, "name": "b.png"}
    said = {"image": "a" * 64, "name": "a.png", "version": "2"}
    assert annotate._saved_before_next(said, meta) == ("a.png", 2)
    for forged in (None, "a.png", {**said, "image": meta["sha256"]}, {**said, "name": 5},
                   {**said, "version": "two"}, {**said, "version": 0}, {**said, "version": None}):
        assert annotate._saved_before_next(forged, meta) is None, forged
    assert annotate._saved_before_next({**said, "name": "x" * 5000}, meta)[0] == "x" * 200


@pytest.mark.usefixtures("an_app_exists")
def test_the_line_for_the_next_case_is_dropped_when_none_opened(annotate):
    # Every other case saved: nothing opens, and a case opened much later must not
    # read "a.png, as version 2, before this image was opened".
    from annotation_client import _views

    said = {"image": "a" * 64, "name": "a.png", "version": 2}
    done = [_views.alert("Every other image of the worklist has a saved annotation.",
                         "info", id="worklist-done").to_plotly_json()]
    assert annotate.forget_saved_before_next(done, said) is None
    count = [_views.html.Span("3 image(s)", id="worklist-count").to_plotly_json()]
    for note, kept in ((count, said), (done, None)):
        with pytest.raises(annotate.PreventUpdate):
            annotate.forget_saved_before_next(note, kept)


def test_save_and_next_stays_on_a_case_whose_save_has_something_to_read(
        dash_duo, data_dir, worklist):
    # The save's "Check:" (a reading that contradicts itself) went with the case: the
    # next image opened at once and cleared it, unread.
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Fast Reader", Keys.TAB)
    click(driver, By.XPATH,
          f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='malignant']")
    Select(driver.find_element(By.ID, ids.descriptor("assessment"))).select_by_value("2")
    dash_duo.wait_for_contains_text(f"#{ids.READING_HINT}", "is not a malignant reading",
                                    timeout=10)
    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)
    settled(dash_duo, quiet=1.5)
    assert _image_name(dash_duo) == "a.png"
    assert _versions(data_dir, worklist, "a.png") == ["v001.json"]
    check = dash_duo.find_element("#save-check").text
    assert "The final label is malignant, but BI-RADS 2" in check
    # Read, and on to the next case by hand.
    click(driver, By.ID, ids.WORKLIST_FOLLOWING)
    wait_for(dash_duo, lambda: _image_name(dash_duo) != "a.png", 20, "Next did not open")


def _answer_question(dash_duo, accept: bool) -> str:
    prompt = WebDriverWait(dash_duo.driver, 15).until(
        expected_conditions.alert_is_present(), "no question was asked")
    text = prompt.text
    prompt.accept() if accept else prompt.dismiss()
    return text


def _saved_by_another_reader(data_dir: Path, worklist: Path, name: str) -> None:
    """Version 1 of the case ``name``, labelled benign by Dr Ada, with no outline."""
    import hashlib

    import vectorizer
    from annotation_client import AnnotationStore
    from annotation_client._record import build_record

    sha = hashlib.sha256((worklist / name).read_bytes()).hexdigest()
    width, height = Image.open(worklist / name).size
    mask = np.zeros((height, width), dtype=bool)
    image = {"sha256": sha, "name": name, "width": width, "height": height,
             "worklist_path": name}
    record = build_record(image=image, annotator="Dr Ada", final_mask=mask,
                          final_label="benign", measurements={"count": 0})
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"/>'
    AnnotationStore(data_dir).save(sha, svg=svg, mask_png=vectorizer.mask_to_png(mask),
                                   record=record)


def test_save_and_next_waits_for_the_answer_to_the_saves_question(dash_duo, data_dir, worklist):
    # A save that would drop the label of the reader's own latest version (not loaded:
    # the case opened before the name was typed) asks first: Cancel keeps the case open
    # and unsaved; OK saves it, and then the next case opens. (Another reader's version
    # is no earlier state of this reader's work, and is not asked about.)
    _saved_by_another_reader(data_dir, worklist, "a.png")  # by Dr Ada
    dash_duo.start_server(_app(data_dir, worklist))
    driver = dash_duo.driver
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    # The page load's callbacks have answered, the recall of a stored name among them,
    # which would write over a name typed before it.
    settled(dash_duo, quiet=0.5)
    _open_entry(dash_duo, "a.png")
    settled(dash_duo, quiet=1.0)
    field = driver.find_element(By.ID, ids.ANNOTATOR)
    field.send_keys("Dr Ada", Keys.TAB)
    settled(dash_duo, quiet=1.0)
    assert field.get_attribute("value") == "Dr Ada", "the typed name was replaced"
    assert not driver.find_elements(By.CSS_SELECTOR, f"#{ids.FINAL_LABEL} input:checked")

    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    assert "anyway?" in _answer_question(dash_duo, accept=False)
    settled(dash_duo, quiet=1.0)
    assert _image_name(dash_duo) == "a.png"
    assert _versions(data_dir, worklist, "a.png") == ["v001.json"]

    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    _answer_question(dash_duo, accept=True)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "b.png", 20, "b.png did not open")
    assert _versions(data_dir, worklist, "a.png") == ["v001.json", "v002.json"]


def test_ctrl_s_in_the_annotator_field_is_left_to_the_field(dash_duo, data_dir, worklist):
    # The name is sent when its field is left: a save from it would miss what was typed.
    _start(dash_duo, data_dir, worklist)
    field = dash_duo.driver.find_element(By.ID, ids.ANNOTATOR)
    field.send_keys("Half Typed")
    dash_duo.driver.execute_script(
        "document.addEventListener('keydown', function (e) {"
        "  if (e.key.toLowerCase() === 's') { window.__prevented = e.defaultPrevented; } });")
    _press(dash_duo, "s", element=field)
    settled(dash_duo, quiet=1.0)
    assert _save_message(dash_duo) == ""
    # Nor does the browser's "Save page as" write the page, the image in it, to disk.
    assert dash_duo.driver.execute_script("return window.__prevented;") is True


def test_ctrl_s_in_a_select_saves(dash_duo, data_dir, worklist):
    # A select sends its choice as it is made; the assessment is where a reading ends.
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Fast Reader", Keys.TAB)
    Select(driver.find_element(By.ID, ids.descriptor("assessment"))).select_by_value("3")
    assessment = driver.find_element(By.ID, ids.descriptor("assessment"))
    driver.execute_script("arguments[0].focus();", assessment)
    _press(dash_duo, "s", element=assessment)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)
    sha_dir = next(p for p in data_dir.iterdir() if (p / "v001.json").exists())
    record = json.loads((sha_dir / "v001.json").read_text())
    assert record["final"]["descriptors"]["assessment"] == "3"


# --------------------------------------------------------------------------- the tool


def _dragmode(dash_duo) -> str:
    return _js(dash_duo, "return gd && gd._fullLayout ? gd._fullLayout.dragmode : null;")


@pytest.mark.parametrize(("label", "dragmode"), [("Box re-segment", "drawrect"),
                                                 ("Draw region", "drawclosedpath")])
def test_the_next_image_opens_with_the_default_tool(dash_duo, data_dir, worklist, label,
                                                    dragmode):
    _start(dash_duo, data_dir, worklist)
    click(dash_duo.driver, By.XPATH, f"//label[normalize-space()='{label}']")
    wait_for(dash_duo, lambda: _dragmode(dash_duo) == dragmode, 10, "the tool did not change")
    _open_entry(dash_duo, "b.png")
    wait_for(dash_duo, lambda: _dragmode(dash_duo) == "pan", 10,
             f"b.png opened in {_dragmode(dash_duo)}")
    checked = dash_duo.driver.find_element(By.CSS_SELECTOR, f"#{ids.TOOL} input:checked")
    assert checked.get_attribute("value") == "pan"


# --------------------------------------------------------------------------- no browser


@pytest.mark.usefixtures("an_app_exists")
def test_each_birads_select_reads_a_dash_once(annotate):
    card = annotate._record_card()
    for name in ("shape", "orientation", "echo_pattern", "posterior_features", "assessment"):
        select = find_component(card, ids.descriptor(name))
        # dbc.Select lists its placeholder (hidden, shown for the unset value) first.
        labels = [select.placeholder] + [o["label"] for o in select.options]
        assert labels.count("—") == 1, (name, labels)
        assert [o["value"] for o in select.options].count("") == 1  # a choice can be taken back


@pytest.mark.usefixtures("an_app_exists")
def test_reset_tool_only_changes_another_tool(annotate):
    from dash.exceptions import PreventUpdate

    assert annotate.reset_tool({"image": "x", "at": 1}, "box") == annotate.DEFAULT_TOOL == "pan"
    for opened, tool in (({"image": "x", "at": 1}, "pan"), (None, "box")):
        with pytest.raises(PreventUpdate):
            annotate.reset_tool(opened, tool)
