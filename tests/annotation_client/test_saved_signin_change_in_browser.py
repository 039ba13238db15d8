"""In the browser: a blinded Saved page is drawn afresh when another reader signs in.

Left alone by the thirty-eighth session: the Annotate page was drawn afresh for a new
sign-in (test_signin_change_in_browser.py), but a Saved page left open under blinded
reading kept listing the last reader's saves, their labels and notes, for the next
reader to read, until someone navigated away from it.
"""

from __future__ import annotations

import time

import pytest
from _dash_helpers import (
    SIGN_IN_HEADER,
    closed_port,
    console_errors,
    sign_in,
    signed_in_by_cookie,
    wait_for,
)
from _saved_data import NOTE_A1, save_three
from selenium.webdriver.common.by import By

from annotation_client import create_app

pytestmark = pytest.mark.browser


def _start(dash_duo, tmp_path, monkeypatch, *, blinded: bool, poll_ms: int) -> None:
    """Serve the three versions of ``save_three`` behind the stand-in sign-in proxy, the
    Saved page checking the sign-in every ``poll_ms``."""
    save_three(tmp_path / "annotations")
    app = create_app({"DATA_DIR": tmp_path / "annotations", "AUTO_SEGMENT": False,
                      "REQUEST_TIMEOUT": 3,
                      "MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "ANNOTATOR_HEADER": SIGN_IN_HEADER, "BLINDED_READING": blinded})
    from annotation_client.pages import saved  # registered by create_app

    monkeypatch.setattr(saved, "SIGNIN_POLL_MS", poll_ms)
    signed_in_by_cookie(app)
    dash_duo.start_server(app)


def _body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_a_blinded_saved_page_is_drawn_afresh_for_the_next_reader(dash_duo, tmp_path,
                                                                  monkeypatch):
    # Dr Ada saved left.png twice, Dr Bo right.png.
    _start(dash_duo, tmp_path, monkeypatch, blinded=True, poll_ms=1000)
    driver = dash_duo.driver
    sign_in(driver, "Dr Ada")
    driver.get(dash_duo.server_url + "/saved")
    wait_for(dash_duo, lambda: "left.png" in _body(driver), 20,
             "Dr Ada's saves are not listed")
    assert "right.png" not in _body(driver)

    # The sign-in passes to Dr Bo; nobody reloads the tab.
    driver.execute_script("window.drAdasPage = true;")
    sign_in(driver, "Dr Bo")
    wait_for(dash_duo, lambda: not driver.execute_script("return !!window.drAdasPage;"), 20,
             "the page was not drawn afresh for Dr Bo")
    wait_for(dash_duo, lambda: "right.png" in _body(driver), 20,
             "Dr Bo's saves are not listed")
    text = _body(driver)
    assert "left.png" not in text and "Dr Ada" not in text and NOTE_A1 not in text
    assert driver.current_url.rstrip("/").endswith("/saved")
    errors = console_errors(dash_duo)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_a_saved_page_that_is_not_blinded_does_not_poll(dash_duo, tmp_path, monkeypatch):
    # Readers who may see each other's saves lose nothing to a new sign-in: the page is
    # left as it is (no reload that would drop a filter being chosen).
    _start(dash_duo, tmp_path, monkeypatch, blinded=False, poll_ms=500)
    driver = dash_duo.driver
    sign_in(driver, "Dr Ada")
    driver.get(dash_duo.server_url + "/saved")
    wait_for(dash_duo, lambda: "right.png" in _body(driver) and "left.png" in _body(driver),
             20, "the saves are not listed")
    driver.execute_script("window.drAdasPage = true;")
    sign_in(driver, "Dr Bo")
    time.sleep(2.5)  # five polls' worth, had the page been polling
    assert driver.execute_script("return !!window.drAdasPage;")


def test_a_page_drawn_while_nobody_was_signed_in_is_not_drawn_afresh(dash_duo, tmp_path,
                                                                     monkeypatch):
    # Audit 916 F2: drawn for nobody, the page reloaded at the next poll for the reader
    # who was back, and with it threw away the Annotate page's unsaved work in the shell.
    _start(dash_duo, tmp_path, monkeypatch, blinded=True, poll_ms=500)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")  # no cookie: the proxy names nobody
    wait_for(dash_duo, lambda: "no saves are shown" in _body(driver), 20,
             "the page does not say that no saves are shown")
    driver.execute_script("window.drawnForNobody = true;")
    sign_in(driver, "Dr Ada")
    time.sleep(2.5)  # five polls' worth
    assert driver.execute_script("return !!window.drawnForNobody;")
    assert "left.png" not in _body(driver)
