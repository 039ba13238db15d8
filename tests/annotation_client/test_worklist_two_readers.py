"""Two readers share one worklist in two browser tabs: Open next not annotated gives them
two cases, and a case picked that the other has open is said so (annotation_client._claims)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import click, closed_port, pick_option, settled, wait_for
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids

CASES = ["case01.png", "case02.png", "case03.png"]


@pytest.fixture
def worklist(tmp_path) -> Path:
    folder = tmp_path / "worklist"
    folder.mkdir()
    ramp = (np.add.outer(np.arange(200), np.arange(300)) // 4).astype(np.uint8)
    for seed, name in enumerate(CASES):
        Image.fromarray(ramp + np.uint8(seed * 7)).save(folder / name)
    return folder


def _image_name(driver) -> str:
    return driver.execute_script(
        "var e = document.getElementById('image-name'); return e ? e.textContent : '';")


def _begin(dash_duo, name: str) -> None:
    """The page of this tab loaded, its reader named."""
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    # The page load's callbacks have answered, the recall of the stored name among them:
    # it would write over a name typed before it ("" in a new browser, the other tab's
    # name here).
    settled(dash_duo, quiet=0.5)
    field = dash_duo.driver.find_element(By.ID, ids.ANNOTATOR)
    field.clear()
    field.send_keys(name, Keys.TAB)
    settled(dash_duo, quiet=0.5)
    assert field.get_attribute("value") == name, "the typed name was replaced"


def _open_next(dash_duo, expected: str) -> None:
    click(dash_duo.driver, By.ID, ids.WORKLIST_NEXT)
    wait_for(dash_duo, lambda: _image_name(dash_duo.driver) == expected, 20,
             f"{expected} did not open")
    settled(dash_duo, quiet=0.5)  # and the callbacks the open sets off have answered


def _option_labels(dash_duo) -> list[str]:
    click(dash_duo.driver, By.ID, ids.WORKLIST)
    labels = wait_for(dash_duo, lambda: [o.text for o in dash_duo.driver.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-option")], 10, "no options")
    dash_duo.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait_for(dash_duo, lambda: not dash_duo.driver.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-option"), 5, "the worklist dropdown did not close")
    return labels


def _pick(dash_duo, path: str) -> None:
    driver = dash_duo.driver
    click(driver, By.ID, ids.WORKLIST)
    option = wait_for(dash_duo, lambda: next((o for o in driver.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-option") if o.text.startswith(path)), None),
        10, f"no {path} option")
    pick_option(dash_duo, option)
    wait_for(dash_duo, lambda: _image_name(driver) == path, 20, f"{path} did not open")
    settled(dash_duo, quiet=0.5)  # and the callbacks the open sets off have answered


def test_two_readers_get_two_cases_and_a_picked_case_says_whose_it_is(
    dash_duo, data_dir, worklist
):
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "WORKLIST_DIR": worklist, "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    first = driver.current_window_handle
    _begin(dash_duo, "Dr A")
    _open_next(dash_duo, "case01.png")
    # To the Saved page and back (the page is drawn anew, the image stays open): the
    # tab's claim is still its own, not another page's.
    click(driver, By.CSS_SELECTOR, "#navbar a.nav-link[href='/saved']")
    dash_duo.wait_for_element(f"#{ids.SAVED_TABLE}", timeout=20)
    click(driver, By.CSS_SELECTOR, "#navbar a.nav-link[href='/']")
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    wait_for(dash_duo, lambda: _image_name(driver) == "case01.png", 10, "case01.png not kept")
    assert any(label.startswith("case01.png — not annotated · open")
               and "open by" not in label for label in _option_labels(dash_duo))
    assert not driver.find_elements(By.ID, "worklist-claimed")

    # Dr B, in a tab of their own (its own session storage, so its own claim token).
    driver.switch_to.new_window("tab")
    second = driver.current_window_handle
    driver.get(dash_duo.server_url)
    _begin(dash_duo, "Dr B")
    wait_for(dash_duo, lambda: any("open by Dr A" in label for label in _option_labels(dash_duo)),
             15, "case01.png is not shown open by Dr A")
    _open_next(dash_duo, "case02.png")
    assert not driver.find_elements(By.ID, "worklist-claimed")

    # Dr B picks case01.png all the same: it opens, and the page says whose it is.
    _pick(dash_duo, "case01.png")
    note = dash_duo.wait_for_element("#worklist-claimed", timeout=15)
    assert "Dr A opened this image less than a minute ago and has not saved it yet." in note.text

    # Dr A's tab: case02.png is Dr B's no longer (Dr B moved to case01.png), so Next
    # from case01.png gives case02.png; Dr A's own claim never reads as another's.
    driver.switch_to.window(first)
    assert not driver.find_elements(By.ID, "worklist-claimed")
    _open_next(dash_duo, "case02.png")
    driver.switch_to.window(second)


def test_save_and_next_passes_over_the_case_another_reader_has_open(
    dash_duo, data_dir, worklist
):
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "WORKLIST_DIR": worklist, "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    first = driver.current_window_handle
    _begin(dash_duo, "Dr A")
    _open_next(dash_duo, "case01.png")
    driver.switch_to.new_window("tab")
    driver.get(dash_duo.server_url)
    _begin(dash_duo, "Dr B")
    _pick(dash_duo, "case02.png")  # picked, so that only Save & next is put to the test

    driver.switch_to.window(first)
    driver.find_element(By.ID, ids.NOTE).send_keys("oval")
    dash_duo.wait_for_element(f"#{ids.UNSAVED_MARK}.dirty", timeout=10)
    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    wait_for(dash_duo, lambda: _image_name(driver) not in ("", "case01.png"), 20,
             "no next case opened")
    assert _image_name(driver) == "case03.png"  # not case02.png, Dr B's
    # Saved: case01.png is annotated, and Dr A's claim is on case03.png now.
    labels = _option_labels(dash_duo)
    assert "case01.png — saved v1" in labels
    assert "case02.png — not annotated · open by Dr B" in labels
