"""Browser test: a save that would leave out a version saved in another tab asks first.

Two tabs on one image, one reader: the first saves, then the second. The second's
save made a new version without the first's work and only said so afterwards ("Not
part of it: v1, saved after this page opened the image"). Now it asks in the
browser's dialog: OK saves, Cancel keeps the work on screen, unsaved, and says so.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    console_errors,
    gradient_png,
    serve_http,
    settled,
    wait_for,
)
from _dash_helpers import edit_status as _status
from _dash_helpers import upload as _upload
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from annotation_client import create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 256, 200


class _Model(HealthyModelServer):
    """A model server whose /predict outlines a square."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        mask[40:100, 30:90] = True
        self.send_outline(mask)


def _open_tab(dash_duo, image, note: str) -> None:
    """The Annotate page, the reader's name, ``image`` opened with its AI outline, and
    ``note`` typed (so that the two tabs' work differs)."""
    driver = dash_duo.driver
    wait_for(dash_duo, lambda: driver.find_elements(By.ID, ids.ANNOTATOR), 20, "no page")
    field = driver.find_element(By.ID, ids.ANNOTATOR)
    field.clear()
    field.send_keys("Dr Ada", Keys.TAB)
    _upload(dash_duo, image)
    wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30, "no AI outline")
    driver.find_element(By.ID, ids.NOTE).send_keys(note, Keys.TAB)
    settled(dash_duo, quiet=0.5)


def _versions(data_dir) -> list[int]:
    return sorted(json.loads(p.read_text())["version"] for p in data_dir.rglob("v*.json"))


def _question(driver, accept: bool) -> str:
    prompt = WebDriverWait(driver, 10).until(expected_conditions.alert_is_present(),
                                             "no question was asked")
    text = prompt.text
    prompt.accept() if accept else prompt.dismiss()
    return text


def test_a_save_that_leaves_out_another_tab_s_version_asks_first(dash_duo, data_dir, tmp_path):
    image = gradient_png(tmp_path / "scan.png", WIDTH, HEIGHT)
    with serve_http(_Model) as url:
        dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir}))
        driver = dash_duo.driver
        first = driver.current_window_handle
        _open_tab(dash_duo, image, "first tab")
        driver.switch_to.new_window("tab")
        driver.get(dash_duo.server_url)
        _open_tab(dash_duo, image, "second tab")

        driver.switch_to.window(first)
        click(driver, By.ID, ids.SAVE_BUTTON)
        dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)

        second = [h for h in driver.window_handles if h != first][0]
        driver.switch_to.window(second)
        click(driver, By.ID, ids.SAVE_BUTTON)
        asked = _question(driver, accept=False)
        assert asked.startswith("v1 was saved after this page opened the image"), asked
        # Cancel: nothing written, and the page says the work is not saved yet.
        settled(dash_duo, quiet=1.0)
        said = driver.find_element(By.ID, "save-result").text
        assert said.startswith("Not saved yet.") and "stays on screen, unsaved" in said, said
        assert _versions(data_dir) == [1]
        assert "dirty" in driver.find_element(By.ID, ids.UNSAVED_MARK).get_attribute("class")

        # OK: saved, and told again what the new version leaves out.
        click(driver, By.ID, ids.SAVE_BUTTON)
        _question(driver, accept=True)
        dash_duo.wait_for_element("#save-result[data-version='2']", timeout=20)
        said = driver.find_element(By.ID, "save-result").text
        assert "Not part of it: v1, saved after this page opened the image" in said, said
        assert _versions(data_dir) == [1, 2]
        assert not console_errors(dash_duo)
