"""Browser tests: *Unsaved changes* around the AI outline and a save (helper-404's F1, F5).

*Unsaved changes* (and the question before leaving) shows exactly when the work on
screen differs from the image's last save, or, before one, from the image as opened
with its AI outline. The AI outline erased, saved with no label, then back with Undo
or *Reset to AI* was called saved, yet opening the image again loaded the save,
without it; an Undo back past the AI outline was not called unsaved either; and a
Save right after the upload, before the model's outline came, saved a blank outline
as the reader's edit (Dice 0), under the outline that came after it.
"""

from __future__ import annotations

import contextlib
import json
import time

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    console_errors,
    gradient_png,
    serve_http,
    settled,
    store_data,
    wait_for,
    wait_recorded,
)
from _dash_helpers import graph_js as _js
from _dash_helpers import image_to_screen as _to_screen
from _dash_helpers import shape_paths as _shape_paths
from _dash_helpers import upload as _upload
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from annotation_client import _shapes, create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 256, 200
#: The stand-in model's outline: a square on the left of the image (x0, y0, x1, y1).
AI_SQUARE = (30, 40, 90, 100)
#: How long the slow stand-in takes over /predict: a busy model server.
PREDICT_SLOW_S = 4.0
MARK = f"#{ids.UNSAVED_MARK}"


class _Model(HealthyModelServer):
    """A model server whose /predict answers :data:`AI_SQUARE` after ``delay`` s."""

    delay = 0.0

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.delay)
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        x0, y0, x1, y1 = AI_SQUARE
        mask[y0:y1, x0:x1] = True
        self.send_outline(mask)


@contextlib.contextmanager
def _client(dash_duo, data_dir, delay: float = 0.0):
    """The client on a stand-in model server answering after ``delay`` s."""
    with serve_http(type("Model", (_Model,), {"delay": delay})) as url:
        dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir,
                                          "REQUEST_TIMEOUT": 30}))
        wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(f"#{ids.SERVER_STATUS}").text,
                 20, "the model server is not ready")
        yield dash_duo.driver


def _dirty(dash_duo) -> bool:
    return "dirty" in dash_duo.find_element(MARK).get_attribute("class")


def _leaving_is_questioned(dash_duo) -> bool:
    return dash_duo.driver.execute_script(
        "var e = new Event('beforeunload', {cancelable: true});"
        "window.dispatchEvent(e); return e.defaultPrevented;")


def _marked(dash_duo, unsaved: bool, why: str) -> None:
    """Wait for the mark to say ``unsaved``, then hold it for a second: the mark is
    redrawn after every answer, and a later one could still turn it."""
    wait_for(dash_duo, lambda: _dirty(dash_duo) == unsaved, 10, why)
    settled(dash_duo, quiet=1.0)
    assert _dirty(dash_duo) == unsaved, why
    assert _leaving_is_questioned(dash_duo) == unsaved, why


def _history(dash_duo) -> dict:
    return store_data(dash_duo, ids.HISTORY) or {}


def _name(driver, name="Dr Careful") -> None:
    """Type the annotator's name; it is sent as the field is left."""
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys(name, Keys.TAB)


def _open(dash_duo, tmp_path) -> None:
    _upload(dash_duo, gradient_png(tmp_path / "scan.png", WIDTH, HEIGHT))
    wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "scan.png", 20,
             "the image did not open")


def _select_outline(dash_duo) -> None:
    """Click the AI outline's edge (Pan, the tool an image opens with) to select it."""
    dash_duo.driver.execute_script("document.getElementById('annotation-graph')"
                                   ".scrollIntoView({block: 'center', behavior: 'instant'});")
    (x0, y0), (x1, y1) = _shapes.parse_path(_shape_paths(dash_duo)[0])[0][:2]
    ActionChains(dash_duo.driver).move_to_location(
        *_to_screen(dash_duo, (x0 + x1) / 2, (y0 + y1) / 2)).click().perform()
    wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout._activeShapeIndex;") == 0,
             10, "the outline was not selected")


def _record(data_dir, version: int) -> dict:
    (path,) = data_dir.rglob(f"v{version:03d}.json")
    return json.loads(path.read_text())


def test_the_ai_outline_back_after_a_save_without_it_is_unsaved(dash_duo, data_dir, tmp_path):
    """F1's reliable path: erase the AI outline, save with no label, then Undo, Redo,
    *Reset to AI*; and F5, an Undo back past the AI outline before any save."""
    with _client(dash_duo, data_dir) as driver:
        _name(driver)
        _open(dash_duo, tmp_path)
        wait_for(dash_duo, lambda: len(_shape_paths(dash_duo)) == 1, 30, "no AI outline")
        ai = _shape_paths(dash_duo)
        wait_recorded(dash_duo, ai, 1, message="the AI outline was not recorded")
        _marked(dash_duo, False, "the image as opened with its AI outline is no work")

        # F5: Undo back past the AI outline leaves a blank outline, which a save records.
        click(driver, By.ID, ids.UNDO_BUTTON)
        wait_recorded(dash_duo, [], 0, message="the Undo was not recorded")
        _marked(dash_duo, True, "an Undo past the AI outline was not called unsaved")
        click(driver, By.ID, ids.REDO_BUTTON)
        wait_recorded(dash_duo, ai, 1, message="the Redo was not recorded")
        _marked(dash_duo, False, "the AI outline, redone, was called unsaved")

        # The AI outline erased, and saved so with no label.
        _select_outline(dash_duo)
        ActionChains(driver).send_keys(Keys.DELETE).perform()
        wait_recorded(dash_duo, [], 2, message="the erasure was not recorded")
        _marked(dash_duo, True, "the erasure was not called unsaved")
        click(driver, By.ID, ids.SAVE_BUTTON)
        dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)
        _marked(dash_duo, False, "the work just saved was called unsaved")
        assert _record(data_dir, 1)["final"]["empty"] is True

        # Undo: the AI outline is back, and it is in no save. Opening the image again
        # would load version 1, without it: leaving must ask.
        click(driver, By.ID, ids.UNDO_BUTTON)
        wait_recorded(dash_duo, ai, 1, message="the Undo was not recorded")
        _marked(dash_duo, True, "the AI outline back after a save without it was "
                                "called saved")
        click(driver, By.ID, ids.REDO_BUTTON)
        wait_recorded(dash_duo, [], 2, message="the Redo was not recorded")
        _marked(dash_duo, False, "the work as saved was called unsaved")
        click(driver, By.ID, ids.RESET_BUTTON)
        wait_recorded(dash_duo, ai, 3, message="Reset to AI was not recorded")
        _marked(dash_duo, True, "Reset to AI after a save without it was called saved")

        # Saved now (the page asks first, as it leaves out version 1's edit), it is the save.
        click(driver, By.ID, ids.SAVE_BUTTON)
        WebDriverWait(driver, 10).until(expected_conditions.alert_is_present(),
                                        "no question was asked").accept()
        dash_duo.wait_for_element("#save-result[data-version='2']", timeout=20)
        _marked(dash_duo, False, "the AI outline saved was called unsaved")
        assert _record(data_dir, 2)["agreement"]["edited"] is False
        assert not console_errors(dash_duo)


def test_save_waits_for_the_models_outline_of_an_image_just_opened(
    dash_duo, data_dir, tmp_path
):
    """F1's race: Ctrl+S right after the upload, while the model segments."""
    with _client(dash_duo, data_dir, delay=PREDICT_SLOW_S) as driver:
        _name(driver)
        _open(dash_duo, tmp_path)
        driver.execute_script("document.activeElement.blur();")  # not in a text field
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL) \
            .perform()
        wait_for(dash_duo, lambda: "still on its way" in dash_duo.find_element(
            f"#{ids.SAVE_ALERT}").text, 10, "a save before the AI outline was not refused")
        assert not _shape_paths(dash_duo), "too slow to test: the outline came first"
        assert not list(data_dir.rglob("v*.json")), "a version was saved"

        wait_for(dash_duo, lambda: len(_shape_paths(dash_duo)) == 1, PREDICT_SLOW_S + 30,
                 "no AI outline")
        wait_recorded(dash_duo, _shape_paths(dash_duo), 1,
                      message="the AI outline was not recorded")
        _marked(dash_duo, False, "the image as opened with its AI outline is no work")
        # The refusal goes with its reason: it read as "still waiting" (audit 806 F3).
        wait_for(dash_duo, lambda: "still on its way" not in dash_duo.find_element(
            f"#{ids.SAVE_ALERT}").text, 10, "the refusal stayed after the outline arrived")
        assert "has arrived" in dash_duo.find_element(f"#{ids.SAVE_ALERT}").text
        click(driver, By.ID, ids.SAVE_BUTTON)
        dash_duo.wait_for_element("#save-result[data-version='1']", timeout=20)
        record = _record(data_dir, 1)
        assert record["final"]["empty"] is False
        assert record["agreement"]["edited"] is False
        assert _history(dash_duo)["present"]["action"] == "ai"
        assert not console_errors(dash_duo)
