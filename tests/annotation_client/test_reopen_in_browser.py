"""Browser test of the audit's case07: a saved case picked again from the worklist.

Before, it came back as the AI's outline with a blank label, the page did not call
the work unsaved, and Save wrote a version with no label over the radiologist's
reading (then the same again). A stand-in model server outlines a square; the
worklist's two images were saved before, one by the reader, one by another reader.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    console_errors,
    pick_option,
    serve_http,
    settled,
    wait_for,
)
from _dash_helpers import edit_status as _status
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

import vectorizer
from annotation_client import _shapes, create_app, ids
from annotation_client._record import build_record
from annotation_client._storage import AnnotationStore

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 256, 200
_GD = "var gd = document.querySelector('#annotation-graph .js-plotly-plot');"
#: The stand-in model's outline, and the radiologist's, drawn wider by hand.
AI_BOX = (60, 50, 140, 120)
EDITED = "M40,40L180,40L180,150L40,150Z"


def _mask_of(x0, y0, x1, y1) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


class _SquareModel(HealthyModelServer):
    """Outlines :data:`AI_BOX` in any image."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mask = _mask_of(*AI_BOX)
        self.send_outline(mask, 32)


def _square_model():
    return serve_http(_SquareModel)


def _frame(path: Path, shift: int) -> str:
    """A gradient PNG (``shift`` makes each file another image); its SHA-256."""
    ramp = (np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) + shift) * 255 // (
        WIDTH + HEIGHT + shift)
    Image.fromarray(ramp.astype(np.uint8)).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_before(data_dir, sha, name, *, annotator, label, assessment):
    """The version saved of ``name`` before: :data:`EDITED` over the model's outline."""
    paths = _shapes.svg_to_paths(_shapes.paths_to_svg([EDITED], WIDTH, HEIGHT), WIDTH, HEIGHT)
    mask = _shapes.paths_to_mask(paths, (HEIGHT, WIDTH))
    record = build_record(
        image={"sha256": sha, "name": name, "width": WIDTH, "height": HEIGHT,
               "worklist_path": name},
        annotator=annotator, final_mask=mask, ai_mask=_mask_of(*AI_BOX), final_label=label,
        descriptors={"assessment": assessment}, measurements={"count": 1},
    )
    AnnotationStore(data_dir).save(sha, svg=_shapes.paths_to_svg(paths, WIDTH, HEIGHT),
                                   mask_png=vectorizer.mask_to_png(mask), record=record)
    return paths


def _shape_paths(dash_duo) -> list[str]:
    return dash_duo.driver.execute_script(
        _GD + "if (!gd || !gd.layout || !gd.layout.shapes) { return []; }"
        "return gd.layout.shapes.filter(s => s.type === 'path').map(s => s.path);")


def _pick(dash_duo, path: str) -> None:
    """Pick the worklist entry ``path``, like a user."""
    settled(dash_duo, quiet=0.5)  # a page still moving takes the click elsewhere
    click(dash_duo.driver, By.ID, ids.WORKLIST)
    options = wait_for(dash_duo, lambda: dash_duo.driver.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-option"), 10, "no worklist options")
    option = next((o for o in options if o.text.startswith(path + " — ")), None)
    assert option is not None, [o.text for o in options]
    pick_option(dash_duo, option)


def _label(dash_duo) -> str | None:
    checked = dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.FINAL_LABEL} input:checked")
    return checked[0].get_attribute("value") if checked else None


def _answer(dash_duo, accept: bool) -> str:
    prompt = WebDriverWait(dash_duo.driver, 10).until(
        expected_conditions.alert_is_present(), "no question was asked")
    text = prompt.text
    prompt.accept() if accept else prompt.dismiss()
    return text


def test_a_saved_case_reopened_from_the_worklist_is_the_saved_reading(
        dash_duo, data_dir, tmp_path):
    worklist = tmp_path / "worklist"
    worklist.mkdir()
    own_sha = _frame(worklist / "case07.png", 0)
    other_sha = _frame(worklist / "case08.png", 40)
    saved = _save_before(data_dir, own_sha, "case07.png", annotator="Dr Ada", label="benign",
                         assessment="3")
    _save_before(data_dir, other_sha, "case08.png", annotator="Dr Cy", label="malignant",
                 assessment="5")
    with _square_model() as url:
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir,
                          "WORKLIST_DIR": worklist})
        dash_duo.start_server(app)
        driver = dash_duo.driver
        wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(f"#{ids.SERVER_STATUS}").text)
        settled(dash_duo, quiet=0.5)  # the recall of a stored name would write over one typed
        driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr Ada", Keys.TAB)

        # 1. Her case: opened, it is her saved reading, after the model's outline.
        _pick(dash_duo, "case07.png")
        dash_duo.wait_for_contains_text(f"#{ids.SAVE_ALERT}", "Version 1 loaded", timeout=30)
        wait_for(dash_duo, lambda: _shape_paths(dash_duo) == saved, 10, "not the saved outline")
        assert _label(dash_duo) == "benign"
        assert Select(driver.find_element(By.ID, ids.descriptor("assessment"))) \
            .first_selected_option.get_attribute("value") == "3"
        settled(dash_duo, quiet=0.5)
        assert "dirty" not in dash_duo.find_element(f"#{ids.UNSAVED_MARK}").get_attribute("class")
        assert not dash_duo.find_element(f"#{ids.OTHERS_SAVES}").is_displayed()

        # 2. Saved again unchanged: no version 2, and the message says why.
        click(driver, By.ID, ids.SAVE_BUTTON)
        dash_duo.wait_for_contains_text(
            "#save-result", "Nothing changed since version 1; no new version saved.", timeout=20)
        assert not (data_dir / own_sha / "v002.json").exists()

        # 3. Undo back to the model's outline, then Save: asked first; Cancel keeps v1 alone.
        click(driver, By.ID, ids.UNDO_BUTTON)
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 10, _status(dash_duo))
        click(driver, By.ID, ids.SAVE_BUTTON)
        question = _answer(dash_duo, accept=False)
        assert "version 1, your latest" in question \
            and "This save's outline is the AI's, untouched" in question
        dash_duo.wait_for_contains_text("#save-result", "Not saved yet.", timeout=10)
        settled(dash_duo, quiet=0.5)
        assert not (data_dir / own_sha / "v002.json").exists()
        # Asked again, and OK: saved, one click more.
        click(driver, By.ID, ids.SAVE_BUTTON)
        _answer(dash_duo, accept=True)
        dash_duo.wait_for_element("#save-result[data-version='2']", timeout=20)
        second = json.loads((data_dir / own_sha / "v002.json").read_text())
        assert second["agreement"]["edited"] is False and second["final"]["label"] == "benign"

        # 4. Another reader's case: not loaded, but said above the image.
        _pick(dash_duo, "case08.png")
        wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "case08.png", 20)
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30, _status(dash_duo))
        notice = dash_duo.find_element(f"#{ids.OTHERS_SAVES}")
        wait_for(dash_duo, notice.is_displayed, 10, "the other reader's save is not said")
        assert "by Dr Cy" in notice.text and "You (Dr Ada) have not saved it" in notice.text
        # Where it is seen: above the image, in the first screen.
        top = driver.execute_script("return arguments[0].getBoundingClientRect().top;", notice)
        assert top < driver.execute_script("return window.innerHeight;")
        assert _label(dash_duo) is None
        # The hint: a malignant label that the model's outline agrees with, and BI-RADS 2.
        click(driver, By.XPATH,
              f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='malignant']")
        Select(driver.find_element(By.ID, ids.descriptor("assessment"))).select_by_value("2")
        dash_duo.wait_for_contains_text(f"#{ids.READING_HINT}", "BI-RADS 2 (benign) is not a "
                                        "malignant reading", timeout=10)
        # Taken up all the same: the notice's button loads Dr Cy's version, which would
        # put its label and BI-RADS over the ones chosen, unsaved: asked first (they were
        # replaced without a word). Cancel leaves them.
        assert "dirty" in dash_duo.find_element(f"#{ids.UNSAVED_MARK}").get_attribute("class")
        click(driver, By.ID, ids.OTHERS_SAVES_LOAD)
        question = _answer(dash_duo, accept=False)
        assert question.startswith("The work on the open image (its outline, label, "
                                   "BI-RADS, note or pixel spacing) is not saved. Load the "
                                   "saved version anyway?")
        settled(dash_duo, quiet=1.0)
        assert "Version 1 loaded" not in dash_duo.find_element(f"#{ids.SAVE_ALERT}").text
        assert Select(driver.find_element(By.ID, ids.descriptor("assessment"))) \
            .first_selected_option.get_attribute("value") == "2"
        click(driver, By.ID, ids.OTHERS_SAVES_LOAD)
        _answer(dash_duo, accept=True)
        dash_duo.wait_for_contains_text(f"#{ids.SAVE_ALERT}", "revision of version 1 by Dr Cy",
                                        timeout=20)
        assert Select(driver.find_element(By.ID, ids.descriptor("assessment"))) \
            .first_selected_option.get_attribute("value") == "5"
        wait_for(dash_duo, lambda: not notice.is_displayed(), 10, "the notice stayed")
        assert _label(dash_duo) == "malignant"
        errors = console_errors(dash_duo)
        assert not errors, errors
