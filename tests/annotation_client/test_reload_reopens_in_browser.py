"""In the browser: a reload opens the worklist case the tab had open, as a link would.

Audit (s30, left open): a reload (F5, a frozen page, a browser restarted with its tabs)
came back to an empty page, and the radiologist had to find the case in the list again.
The URL cannot say which case (worklist paths often name the patient); the tab's session
storage does.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
from _dash_helpers import click, wait_for
from PIL import Image
from selenium.webdriver.common.by import By

import vectorizer
from annotation_client import AnnotationStore, build_record, create_app, ids

CASES = ("case01.png", "case02.png", "case03.png")


def _image_name(driver) -> str:
    return driver.execute_script(
        "var e = document.getElementById('image-name'); return e ? e.textContent : '';")


def test_a_reload_opens_the_case_again_with_the_readers_saved_version(dash_duo, tmp_path,
                                                                       live_model_server):
    folder = tmp_path / "worklist"
    folder.mkdir()
    ramp = (np.add.outer(np.arange(20), np.arange(30)) // 4).astype(np.uint8)
    for seed, name in enumerate(CASES):
        Image.fromarray(ramp + np.uint8(seed * 7)).save(folder / name)
    # case02 was saved before, with a label: the reload brings that reading back too.
    sha = hashlib.sha256((folder / "case02.png").read_bytes()).hexdigest()
    mask = np.zeros((20, 30), bool)
    mask[4:12, 6:18] = True
    record = build_record(
        image={"sha256": sha, "name": "case02.png", "width": 30, "height": 20,
               "worklist_path": "case02.png"},
        annotator="Dr Ada", final_mask=mask, final_label="benign",
        saved_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))  # fmt: skip
    AnnotationStore(tmp_path / "data").save(sha, svg=vectorizer.mask_to_svg(mask),
                                            mask_png=vectorizer.mask_to_png(mask), record=record)
    app = create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder,
                      "MODEL_SERVER_URL": live_model_server})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    driver.execute_script(f"window.localStorage.setItem('{ids.ANNOTATOR_STORE}', "
                          "JSON.stringify('Dr Ada'));")
    driver.get(dash_duo.server_url)  # the reader named, as a reader's browser remembers
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    click(driver, By.ID, ids.WORKLIST_FOLLOWING)  # Next: case01
    wait_for(dash_duo, lambda: _image_name(driver) == "case01.png", 20, "case01 did not open")
    click(driver, By.ID, ids.WORKLIST_FOLLOWING)
    wait_for(dash_duo, lambda: _image_name(driver) == "case02.png", 20, "case02 did not open")

    driver.refresh()
    wait_for(dash_duo, lambda: _image_name(driver) == "case02.png", 30,
             f"the reload opened {_image_name(driver)!r}")
    assert "?" not in driver.current_url  # the case is not named in the URL
    # As a link opens it: the reader's saved reading is loaded once the model has answered.
    dash_duo.wait_for_contains_text(f"#{ids.SAVE_ALERT}", "Version 1 loaded", timeout=60)
    assert driver.find_element(By.CSS_SELECTOR, "input[value='benign']").is_selected()

    # A case whose file is removed since: said once, not at every reload.
    click(driver, By.ID, ids.WORKLIST_FOLLOWING)
    wait_for(dash_duo, lambda: _image_name(driver) == "case03.png", 30, "case03 did not open")
    (folder / "case03.png").unlink()
    driver.refresh()
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_ALERT}", "case03.png", timeout=30)
    driver.refresh()
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    wait_for(dash_duo, lambda: driver.execute_script(
        f"return window.sessionStorage.getItem('{ids.WORKLIST_REOPEN}');") == "null", 10)
    assert "case03.png" not in driver.find_element(By.ID, ids.UPLOAD_ALERT).text
    assert _image_name(driver) == ""
    click(driver, By.ID, ids.WORKLIST_FOLLOWING)  # nothing open: the first
    wait_for(dash_duo, lambda: _image_name(driver) == "case01.png", 30, "case01 did not open")

    # An upload opened since is no worklist case: a reload then opens nothing.
    upload = tmp_path / "upload.png"
    Image.fromarray(ramp + np.uint8(50)).save(upload)
    driver.execute_script("window.confirm = function() { return true; };")
    driver.find_element(By.CSS_SELECTOR, f"#{ids.IMAGE_UPLOAD} input[type=file]").send_keys(
        str(upload))
    wait_for(dash_duo, lambda: _image_name(driver) == "upload.png", 20, "no upload")
    driver.refresh()
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    wait_for(dash_duo, lambda: driver.execute_script(
        f"return window.sessionStorage.getItem('{ids.WORKLIST_REOPEN}');") == "null", 10)
    assert _image_name(driver) == ""


def _store_data(component, store_id):
    """The ``data`` of the Store ``store_id`` in a Dash layout tree."""
    if getattr(component, "id", None) == store_id:
        return component.data
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found = _store_data(child, store_id)
            if found is not None:
                return found
    return None


def test_under_blinded_reading_a_reload_reopens_nothing(tmp_path):
    # One tab may pass from one signed-in reader to the next, who must not find the
    # last one's case open (the page offers the reopen only when its store allows).
    for blinded, allowed in ((False, True), (True, False)):
        app = create_app({"DATA_DIR": tmp_path / str(blinded),
                          "MODEL_SERVER_URL": "http://127.0.0.1:9",
                          "ANNOTATOR_HEADER": "X-Forwarded-User", "BLINDED_READING": blinded})
        from annotation_client.pages import annotate

        with app.server.test_request_context("/"):
            assert _store_data(annotate.layout(), ids.WORKLIST_REOPEN_ON) is allowed
