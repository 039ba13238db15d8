"""In the browser: another user signed in to a shared workstation's tab gets a fresh page.

Audit 818 F1: behind a sign-in proxy with blinded reading, Dr B saved a reading (label
benign, a private note) and the sign-in passed to Dr E without the tab being reloaded.
At the next health poll the Annotator field said "Dr E", but Dr B's label, note and
"Saved. Version 1 ..." stayed on screen for Dr E to read. The page is now loaded afresh,
without the "unsaved work" question, and Dr B's unsaved note is not Dr E's to save.
"""

from __future__ import annotations

import numpy as np
import pytest
from _dash_helpers import (
    SIGN_IN_HEADER,
    click,
    closed_port,
    console_errors,
    open_entry,
    sign_in,
    signed_in_by_cookie,
    wait_for,
)
from PIL import Image
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids

pytestmark = pytest.mark.browser

USER = SIGN_IN_HEADER
NOTE = "Dr B private note: looks benign"


def _shown(driver) -> dict:
    """What of a reading the page shows: the image's name, the label, the note, the
    save message, the Annotator field and whether the work is marked unsaved."""
    return driver.execute_script("""
        function el(id) { return document.getElementById(id); }
        var label = document.querySelector('#final-label input:checked');
        var saved = el('save-result');
        return {image: el('image-name') ? el('image-name').textContent : '',
                label: label ? label.value : null,
                note: el('note') ? el('note').value : null,
                saved: saved ? saved.textContent : '',
                annotator: el('annotator') ? el('annotator').value : null,
                dirty: !!document.querySelector('#unsaved-flag.dirty')};
    """)


@pytest.mark.parametrize("blinded", [True, False], ids=["blinded", "not-blinded"])
def test_a_new_sign_in_gets_a_fresh_page_without_the_last_readers_reading(
        dash_duo, tmp_path, monkeypatch, blinded):
    folder = tmp_path / "worklist"
    folder.mkdir()
    ramp = (np.add.outer(np.arange(40), np.arange(60)) * 2).astype(np.uint8)
    Image.fromarray(ramp).save(folder / "case.png")
    app = create_app({"DATA_DIR": tmp_path / "annotations", "WORKLIST_DIR": folder,
                      "AUTO_SEGMENT": False, "REQUEST_TIMEOUT": 3,
                      "MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "ANNOTATOR_HEADER": USER, "BLINDED_READING": blinded})
    from annotation_client.pages import annotate  # registered by create_app

    monkeypatch.setattr(annotate, "SERVER_POLL_MS", 1000)
    signed_in_by_cookie(app)
    dash_duo.start_server(app)
    driver = dash_duo.driver
    sign_in(driver, "Dr B")
    driver.get(dash_duo.server_url + "/")
    wait_for(dash_duo, lambda: _shown(driver)["annotator"] == "Dr B", 20)

    # Dr B reads the case, saves it, and goes on typing: the work is unsaved again.
    open_entry(dash_duo, "case.png")
    click(driver, By.XPATH, f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='benign']")
    driver.find_element(By.ID, ids.NOTE).send_keys(NOTE, Keys.TAB)
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)
    driver.find_element(By.ID, ids.NOTE).send_keys(" and more", Keys.TAB)
    wait_for(dash_duo, lambda: _shown(driver)["dirty"], 10, "the added note is not unsaved")
    before = _shown(driver)
    assert before["label"] == "benign" and NOTE in before["note"] and before["saved"]

    # The sign-in passes to Dr E; nobody reloads the tab (a mark on this document
    # tells it from the next one).
    driver.execute_script("window.drBsPage = true;")
    sign_in(driver, "Dr E")
    wait_for(dash_duo, lambda: NOTE not in (_shown(driver)["note"] or ""), 20,
             f"Dr B's note is still on screen for Dr E: {_shown(driver)}")
    # The "unsaved work" question would be an alert, and would hold the page.
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is the check
    wait_for(dash_duo, lambda: not driver.execute_script("return !!window.drBsPage;"), 20,
             "the page was not loaded afresh")
    wait_for(dash_duo, lambda: _shown(driver)["annotator"] == "Dr E", 20,
             f"the field did not follow the sign-in: {_shown(driver)}")
    after = _shown(driver)
    assert after["label"] is None and not after["saved"] and not after["dirty"], after
    if blinded:
        # Nor is Dr B's case left open (a reload reopens nothing under blinding), nor
        # is Dr B named anywhere.
        assert after["image"] == "", after
        assert "Dr B" not in driver.find_element(By.TAG_NAME, "body").text
    else:
        # Readers may see each other's saves: the case opens again, Dr B's save
        # offered to load, and Dr E's reading starts apart from it.
        wait_for(dash_duo, lambda: "You (Dr E) have not saved it" in driver.find_element(
            By.TAG_NAME, "body").text, 20, f"the case did not open again: {_shown(driver)}")
        after = _shown(driver)
        assert after["label"] is None and NOTE not in after["note"], after
    # Dr E is not asked about the work Dr B left, and nothing of it was saved for Dr E.
    assert not list((tmp_path / "annotations").rglob("v002.json"))
    assert driver.current_url.rstrip("/") == dash_duo.server_url.rstrip("/")
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
