"""Browser test: the buttons disabled while their request runs give the focus back
(when pressed from the keyboard; a click leaves it on the page, for the image's keys).

Auto-segment, Classify and Save are disabled while their request runs (Dash's
``running``), and the browser then drops the focus of the button pressed to the page
itself: after Enter on Save the focus was nowhere, with no ring, and a screen reader was
left at the document's top (audit 703 F2). *Load it to revise* is hidden once its
version is on screen: the focus goes to the image's column, where that version now is.
A stand-in model outlines a rectangle and classifies every image benign.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    gradient_png,
    serve_http,
    settled,
    upload,
    wait_for,
)
from _dash_helpers import edit_status as _status
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from annotation_client import create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 240, 180


class _StandInModel(HealthyModelServer):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/classify"):
            self.send_json(200, json.dumps({
                "label": "benign",
                "probabilities": {"normal": 0.1, "benign": 0.7, "malignant": 0.2},
                "model": {"name": "stand-in", "version": "0"}}).encode())
            return
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        mask[40:140, 60:180] = True
        self.send_outline(mask)


def test_the_focus_comes_back_to_the_button_pressed_once_its_request_is_done(
        dash_duo, data_dir, tmp_path):
    with serve_http(_StandInModel) as url:
        dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir}))
        driver = dash_duo.driver
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
        settled(dash_duo, quiet=0.5)  # the recall of a stored name would write over one typed
        driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr Keys", Keys.TAB)
        upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30,
                 _status(dash_duo))
        click(driver, By.XPATH,
              f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='benign']")
        settled(dash_duo, quiet=0.5)

        def focused() -> str:
            return driver.execute_script(
                "var e = document.activeElement; return e ? e.id || e.tagName : null;")

        def press_enter_on(button_id: str, done, what: str) -> None:
            button = driver.find_element(By.ID, button_id)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                                  "arguments[0].focus();", button)
            assert focused() == button_id
            # Seen disabled while it ran: the case this is about.
            driver.execute_script(
                "var b = arguments[0]; b.__wasDisabled = false;"
                "new MutationObserver(function () { if (b.disabled) { b.__wasDisabled = true; }"
                "}).observe(b, {attributes: true, attributeFilter: ['disabled']});", button)
            ActionChains(driver).send_keys(Keys.ENTER).perform()
            wait_for(dash_duo, done, 30, f"{what} did not finish")
            wait_for(dash_duo, lambda: button.is_enabled(), 10, f"{what} stayed disabled")
            assert driver.execute_script("return arguments[0].__wasDisabled;", button)

        segment = driver.find_element(By.ID, ids.SEGMENT_BUTTON)
        press_enter_on(ids.SEGMENT_BUTTON, lambda: driver.execute_script(
            "return arguments[0].__wasDisabled && !arguments[0].disabled;", segment),
            "Auto-segment")
        wait_for(dash_duo, lambda: focused() == ids.SEGMENT_BUTTON, 5,
                 f"the focus is on {focused()} after Auto-segment")

        press_enter_on(ids.CLASSIFY_BUTTON,
                       lambda: "benign" in driver.find_element(By.ID, ids.AI_LABEL).text,
                       "Classify")
        wait_for(dash_duo, lambda: focused() == ids.CLASSIFY_BUTTON, 5,
                 f"the focus is on {focused()} after Classify")

        press_enter_on(ids.SAVE_BUTTON,
                       lambda: driver.find_elements(By.CSS_SELECTOR, "#save-result[data-version]"),
                       "Save")
        wait_for(dash_duo, lambda: focused() == ids.SAVE_BUTTON, 5,
                 f"the focus is on {focused()} after Save")

        # Load it to revise is hidden once its version is on screen: the focus goes to
        # the image's column, where the version's outline is. Offered once the work on
        # screen differs from it (and asked about first: it is unsaved).
        click(driver, By.XPATH,
              f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='malignant']")
        load = wait_for(dash_duo, lambda: next(
            (b for b in driver.find_elements(By.ID, ids.LOAD_SAVED_BUTTON)
             if b.is_displayed() and b.is_enabled()), None), 20, "no Load it to revise")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                              "arguments[0].focus();", load)
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        WebDriverWait(driver, 10).until(expected_conditions.alert_is_present()).accept()
        wait_for(dash_duo, lambda: not load.is_displayed(), 20, "the version was not loaded")
        wait_for(dash_duo, lambda: focused() == ids.IMAGE_PANEL, 5,
                 f"the focus is on {focused()} after Load it to revise")

        # A click with the mouse leaves the focus on the page, where the image's keys
        # act: H after a click on Classify shows or hides the outline (audit 805 F1).
        classify = driver.find_element(By.ID, ids.CLASSIFY_BUTTON)
        driver.execute_script(
            "var b = arguments[0]; b.__wasDisabled = false;"
            "new MutationObserver(function () { if (b.disabled) { b.__wasDisabled = true; }"
            "}).observe(b, {attributes: true, attributeFilter: ['disabled']});", classify)
        click(driver, By.ID, ids.CLASSIFY_BUTTON)
        wait_for(dash_duo, lambda: driver.execute_script(
            "return arguments[0].__wasDisabled && !arguments[0].disabled;", classify), 30,
            "Classify did not run")
        settled(dash_duo, quiet=0.5)
        assert focused() != ids.CLASSIFY_BUTTON

        def shown() -> bool:
            return driver.execute_script(
                f"return document.getElementById('{ids.OVERLAY_VISIBLE}').checked;")

        before = shown()
        ActionChains(driver).send_keys("h").perform()
        wait_for(dash_duo, lambda: shown() != before, 5,
                 f"H did nothing after a click on Classify (focus on {focused()})")



def test_undo_disabled_at_the_historys_end_hands_the_focus_to_redo(dash_duo, data_dir, tmp_path):
    # Left alone two sessions: Enter on Undo at its last step disabled it, and the focus
    # went nowhere (no ring; a screen reader back at the document's top).
    with serve_http(_StandInModel) as url:
        dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir}))
        driver = dash_duo.driver
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
        upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30,
                 _status(dash_duo))
        undo = driver.find_element(By.ID, ids.UNDO_BUTTON)
        wait_for(dash_duo, undo.is_enabled, 10, "Undo is not offered after the AI outline")

        def focused() -> str:
            return driver.execute_script(
                "var e = document.activeElement; return e ? e.id || e.tagName : null;")

        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                              "arguments[0].focus();", undo)
        assert focused() == ids.UNDO_BUTTON
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for(dash_duo, lambda: not undo.is_enabled(), 20, "Undo was not disabled")
        wait_for(dash_duo, lambda: focused() == ids.REDO_BUTTON, 5,
                 f"the focus is on {focused()} after the last Undo")
        # And back: Redo to the end of the history gives it to Undo.
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 20, _status(dash_duo))
        wait_for(dash_duo, lambda: focused() == ids.UNDO_BUTTON, 5,
                 f"the focus is on {focused()} after the last Redo")
