"""In the browser: a duplicated tab takes a worklist claim token of its own.

Audit (s30, left open): a tab opened as a copy of another (the browser's Duplicate, or a
link opened in a new window) starts with a copy of its session storage, so with its claim
token. Opening a case in the copy moved the first tab's claim, and the case the first
tab still had open looked free to other readers. assets/sonotrace.js now asks the other
tabs whether the token is theirs, and a copy takes a new one.
"""

from __future__ import annotations

import numpy as np
from _dash_helpers import click, closed_port, wait_for
from PIL import Image
from selenium.webdriver.common.by import By

from annotation_client import create_app, ids

CASES = ("case01.png", "case02.png", "case03.png")
TOKEN = f"return JSON.parse(window.sessionStorage.getItem('{ids.WORKLIST_CLAIM_TOKEN}'));"


def _image_name(driver) -> str:
    return driver.execute_script(
        "var e = document.getElementById('image-name'); return e ? e.textContent : '';")


def test_a_duplicated_tab_claims_with_its_own_token_and_is_sent_to_another_case(
        dash_duo, tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    ramp = (np.add.outer(np.arange(20), np.arange(30)) // 4).astype(np.uint8)
    for seed, name in enumerate(CASES):
        Image.fromarray(ramp + np.uint8(seed * 7)).save(folder / name)
    app = create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder,
                      "MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    first_tab = driver.current_window_handle
    wait_for(dash_duo, lambda: isinstance(driver.execute_script(TOKEN), str), 10, "no token")
    token = driver.execute_script(TOKEN)
    click(driver, By.ID, ids.WORKLIST_NEXT)  # Open next not annotated: case01, claimed
    wait_for(dash_duo, lambda: _image_name(driver) == "case01.png", 20, "case01 did not open")

    # The copy: a window opened by the page gets a copy of its session storage.
    driver.execute_script("window.open(window.location.href, '_blank');")
    wait_for(dash_duo, lambda: len(driver.window_handles) == 2, 10, "no second tab")
    driver.switch_to.window(next(h for h in driver.window_handles if h != first_tab))
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    wait_for(dash_duo, lambda: driver.execute_script(TOKEN) not in (None, token), 10,
             f"the copy kept the first tab's token {token}")
    click(driver, By.ID, ids.WORKLIST_NEXT)
    # case01 is the first tab's: the copy is sent on. With one token it took case01.
    wait_for(dash_duo, lambda: _image_name(driver) == "case02.png", 20,
             f"the copy opened {_image_name(driver)!r}")

    driver.switch_to.window(first_tab)
    assert driver.execute_script(TOKEN) == token  # the first tab keeps its own
