"""The page when the client itself does not answer (restarting, the network gone).

Dash's renderer undoes a callback's ``running`` values only when an answer comes: a
Save sent while the client was down left Save disabled for good, with the page still
green. ``assets/sonotrace.js`` puts them back and says so. The browser is taken
offline with Chromium's network emulation: its requests then fail as they do when
nothing listens.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from _dash_helpers import (
    click,
    closed_port,
    edit_status,
    gradient_png,
    graph_js,
    settled,
    store_data,
    upload,
    wait_for,
    wait_recorded,
)
from PIL import Image
from selenium.webdriver.common.by import By

from annotation_client import create_app, ids

pytestmark = pytest.mark.usefixtures("an_app_exists")


def _offline(driver, offline: bool) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def test_a_save_the_client_never_answered_can_be_made_again(dash_duo, data_dir, tmp_path):
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    image = gradient_png(tmp_path / "scan.png")
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}", timeout=20)
    upload(dash_duo, image)
    save = driver.find_element(By.ID, ids.SAVE_BUTTON)
    wait_for(dash_duo, save.is_enabled, 20, "Save stayed disabled after the open")
    click(driver, By.XPATH, f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='normal']")
    name = driver.find_element(By.ID, ids.ANNOTATOR)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", name)
    name.send_keys("Dr Ada")
    driver.execute_script("arguments[0].blur();", name)  # sent when the field is left

    def text(component_id) -> str:
        return driver.find_element(By.ID, component_id).text

    _offline(driver, True)
    try:
        click(driver, By.ID, ids.SAVE_BUTTON)
        wait_for(dash_duo, lambda: text(ids.SAVE_ALERT).startswith("Not saved"), 20,
                 "the failed save said nothing")
        assert text(ids.SAVE_ALERT).startswith("Not saved, or not confirmed. Cannot reach "
                                               "the SonoTrace client")
        assert text(ids.SERVER_STATUS) == "client unreachable"
        # Not left disabled: it can be clicked again, and Ctrl+S with it.
        wait_for(dash_duo, save.is_enabled, 10, "Save stayed disabled")
    finally:
        _offline(driver, False)
    folder = data_dir / hashlib.sha256(image.read_bytes()).hexdigest()
    assert not (folder / "v001.json").exists()
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=30)
    assert (folder / "v001.json").exists()


def test_a_grow_click_the_client_never_answered_is_not_applied_by_the_next(
    dash_duo, data_dir, tmp_path
):
    """Grow clicked while the client was unreachable moved nothing; once it was back, the
    next Grow applied that click too, and grew by two steps (audit F3). The page's
    script now sends the counts of the failed request as lost."""
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}", timeout=20)
    upload(dash_duo, gradient_png(tmp_path / "scan.png"))  # 256 px wide: a step of 1 px
    wait_for(dash_duo, lambda: graph_js(dash_duo, "return !!(gd && gd.querySelector("
                                        "'.imagelayer image'));"), 20, "no image drawn")
    graph_js(dash_duo, "Plotly.relayout(gd, {shapes: [{type: 'path', xref: 'x', yref: 'y',"
                       " path: 'M60,50L160,50L160,150L60,150Z'}]});")
    wait_for(dash_duo, lambda: "last change: edit" in edit_status(dash_duo), 20,
             "the region drawn was not recorded")
    grow = driver.find_element(By.ID, ids.GROW_BUTTON)
    wait_for(dash_duo, grow.is_enabled, 10, "Grow stayed disabled")

    _offline(driver, True)
    try:
        click(driver, By.ID, ids.GROW_BUTTON)
        wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.SERVER_STATUS).text
                 == "client unreachable", 20, "the failed Grow said nothing")
        assert "last change: edit" in edit_status(dash_duo)  # the outline did not move
    finally:
        _offline(driver, False)
    click(driver, By.ID, ids.GROW_BUTTON)
    wait_for(dash_duo, lambda: "last change: grow" in edit_status(dash_duo), 20,
             edit_status(dash_duo))
    assert "last change: grow by 1 px ·" in edit_status(dash_duo)
    history = store_data(dash_duo, ids.HISTORY)
    assert history["present"]["offset_from"]["pixels"] == 1
    assert [s["action"] for s in history["past"]][-1] == "edit"


def test_an_undo_the_client_never_answered_is_not_made_by_the_next(
    dash_duo, data_dir, tmp_path
):
    """Undo pressed while the client was unreachable took back nothing on screen. Each
    Undo press counts (annotate._step_clicks), so the page's script sends its count as
    lost too: the next Undo takes back one step, not two."""
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}", timeout=20)
    upload(dash_duo, gradient_png(tmp_path / "scan.png"))
    wait_for(dash_duo, lambda: graph_js(dash_duo, "return !!(gd && gd.querySelector("
                                        "'.imagelayer image'));"), 20, "no image drawn")

    def regions() -> int:
        history = store_data(dash_duo, ids.HISTORY) or {"present": {"paths": []}}
        return len(history["present"]["paths"])

    for n, x in enumerate((20, 120)):
        graph_js(dash_duo, "Plotly.relayout(gd, {shapes: (gd.layout.shapes || []).concat(["
                           "{type: 'path', xref: 'x', yref: 'y', path: arguments[0]}])});",
                 f"M{x},50L{x + 60},50L{x + 60},110L{x},110Z")
        wait_for(dash_duo, lambda n=n: regions() == n + 1, 20, f"region {n + 1} not recorded")
    undo = driver.find_element(By.ID, ids.UNDO_BUTTON)
    wait_for(dash_duo, undo.is_enabled, 10, "Undo stayed disabled")

    _offline(driver, True)
    try:
        click(driver, By.ID, ids.UNDO_BUTTON)
        wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.SERVER_STATUS).text
                 == "client unreachable", 20, "the failed Undo said nothing")
        assert regions() == 2  # nothing was taken back
    finally:
        _offline(driver, False)
    click(driver, By.ID, ids.UNDO_BUTTON)
    wait_for(dash_duo, lambda: regions() < 2, 20, "the Undo did nothing")
    settled(dash_duo, quiet=1.0)
    assert regions() == 1, "the Undo made while the client was unreachable was made too"


#: Sends the edit callback's requests to a port nothing listens on while
#: ``window.__sonotraceFailEdits`` is set: they fail as when the client restarts,
#: through assets/sonotrace.js's wrapper (the page's fetch, which this wraps), while
#: every other request is answered.
FAIL_EDITS = """
var wrapped = window.fetch, port = arguments[0];
window.__sonotraceFailEdits = true;
window.fetch = function (input, init) {
  var body = init && typeof init.body === 'string' ? init.body : '';
  if (window.__sonotraceFailEdits && body.indexOf('outline-history.data') >= 0 &&
      /_dash-update-component/.test(typeof input === 'string' ? input : input.url)) {
    input = 'http://127.0.0.1:' + port + '/_dash-update-component';
  }
  return wrapped(input, init);
}.bind(null);
"""


def test_an_edit_the_client_never_answered_is_saved_and_recorded(dash_duo, data_dir,
                                                                tmp_path):
    """A vertex dragged while the client restarted stayed on screen, out of the outline
    history; the next Save wrote the outline of before and said "Saved" (audit 904 F1).
    Save now takes the outline on screen, and the history takes the edit at the
    client's next answer."""
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    image = gradient_png(tmp_path / "scan.png")  # 256 x 200
    folder = data_dir / hashlib.sha256(image.read_bytes()).hexdigest()
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}", timeout=20)
    upload(dash_duo, image)
    wait_for(dash_duo, lambda: graph_js(dash_duo, "return !!(gd && gd.querySelector("
                                        "'.imagelayer image'));"), 20, "no image drawn")
    small, large = "M60,50L160,50L160,150L60,150Z", "M40,40L200,40L200,180L40,180Z"
    graph_js(dash_duo, "Plotly.relayout(gd, {shapes: [{type: 'path', xref: 'x', yref: 'y',"
                       " path: arguments[0]}]});", small)
    wait_recorded(dash_duo, [small], 1, 20, "the region drawn was not recorded")
    click(driver, By.XPATH, f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='benign']")
    name = driver.find_element(By.ID, ids.ANNOTATOR)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", name)
    name.send_keys("Dr Ada")
    driver.execute_script("arguments[0].blur();", name)  # sent when the field is left
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=30)

    def mark() -> str:
        return driver.find_element(By.ID, ids.UNSAVED_MARK).text

    wait_for(dash_duo, lambda: mark() == "", 10, "the save left the work marked unsaved")
    driver.execute_script("(function () {" + FAIL_EDITS + "}).apply(null, arguments);",
                          closed_port())
    # The square's corners dragged out (the event plotly sends for it).
    graph_js(dash_duo, "Plotly.relayout(gd, {'shapes[0].path': arguments[0]});", large)
    wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.SERVER_STATUS).text
             == "client unreachable", 20, "the failed edit request said nothing")
    assert "1 undo step" in edit_status(dash_duo)  # not recorded
    driver.execute_script("window.__sonotraceFailEdits = false;")

    # The first request the client answers is the Save's.
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='2']", timeout=30)
    masks = [np.asarray(Image.open(folder / f"v00{v}_mask.png")) > 0 for v in (1, 2)]
    assert [int(m.sum()) for m in masks] == [100 * 100, 160 * 140]
    # The history took the edit too, with its undo step, and the work is saved.
    wait_recorded(dash_duo, [large], 2, 20, "the edit was not recorded after the save")
    wait_for(dash_duo, lambda: "last change: edit" in edit_status(dash_duo), 10,
             edit_status(dash_duo))
    wait_for(dash_duo, lambda: mark() == "", 10, "the saved work was left marked unsaved")
