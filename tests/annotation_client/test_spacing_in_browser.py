"""In the browser: the last pixel spacing offered on the next image, and Calibrate.

Audit: set 0.08 mm/px on case10 and open case11, and the field was empty again,
in pixels; the spacing was read off the ruler by hovering its two ends. The model
server is down here: the spacing, not the outline, is the point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import click, closed_port, console_errors, settled, upload, wait_for
from _dash_helpers import graph_js as _js
from _dash_helpers import image_to_screen as _to_screen
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from annotation_client import create_app, ids

pytestmark = pytest.mark.browser


def _png(path: Path, width: int, height: int, seed: int) -> Path:
    """A grey ramp of ``width`` x ``height`` pixels, its own for each seed (its own hash)."""
    ramp = (np.add.outer(np.arange(height), np.arange(width)) // 4 + seed) % 256
    Image.fromarray(ramp.astype(np.uint8)).save(path)
    return path


def _text(dash_duo, element_id: str) -> str:
    # Read through JS: Dash replaces elements on update.
    return dash_duo.driver.execute_script(
        "var e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        element_id)


def _shown(dash_duo, element_id: str) -> bool:
    return dash_duo.driver.execute_script(
        "var e = document.getElementById(arguments[0]);"
        "return !!e && e.getClientRects().length > 0;", element_id)


def _value(dash_duo, element_id: str) -> str:
    return dash_duo.driver.execute_script(
        "return document.getElementById(arguments[0]).value;", element_id)


def _open(dash_duo, path: Path) -> None:
    upload(dash_duo, path)
    wait_for(dash_duo, lambda: _text(dash_duo, "image-name") == path.name, 20,
             f"{path.name} did not open")
    settled(dash_duo, quiet=0.5)


def _type(dash_duo, element_id: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    field = dash_duo.driver.find_element(By.ID, element_id)
    field.send_keys(Keys.CONTROL, "a", Keys.DELETE)  # clear() fires no React change
    field.send_keys(text)


def test_the_last_spacing_is_offered_in_one_click_and_calibrate_measures_the_depth_scale(
        dash_duo, tmp_path):
    case10 = _png(tmp_path / "case10.png", 600, 400, 0)
    case11 = _png(tmp_path / "case11.png", 600, 400, 9)
    case12 = _png(tmp_path / "case12.png", 500, 300, 3)
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": tmp_path / "data", "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    # Opening the next image asks first when the work is in no save: yes, here.
    driver.execute_script("window.confirm = function() { return true; };")

    # 1. case10: 0.08 typed and Set. Nothing to offer: none was Set before.
    _open(dash_duo, case10)
    assert not _shown(dash_duo, ids.SPACING_REUSE_ROW)
    _type(dash_duo, ids.SPACING_INPUT, "0.08")
    click(driver, By.ID, ids.SPACING_SET)
    wait_for(dash_duo, lambda: "0.080 × 0.080 mm" in _text(dash_duo, ids.IMAGE_INFO), 10)
    settled(dash_duo, quiet=0.5)
    assert not _shown(dash_duo, ids.SPACING_REUSE_ROW)

    # 2. case11: in pixels, the field empty; the spacing is offered, not applied.
    _open(dash_duo, case11)
    wait_for(dash_duo, lambda: _shown(dash_duo, ids.SPACING_REUSE_ROW), 10, "nothing offered")
    assert _text(dash_duo, ids.SPACING_REUSE) == "Use 0.08 mm/px (as set on case10.png)"
    assert _text(dash_duo, ids.SPACING_REUSE_NOTE) == ""  # the same size
    assert _value(dash_duo, ids.SPACING_INPUT) == ""
    assert "pixel spacing unknown" in _text(dash_duo, ids.IMAGE_INFO)
    click(driver, By.ID, ids.SPACING_REUSE)
    wait_for(dash_duo, lambda: "0.080 × 0.080 mm" in _text(dash_duo, ids.IMAGE_INFO), 10)
    wait_for(dash_duo, lambda: _value(dash_duo, ids.SPACING_INPUT) == "0.08", 10)
    assert "as set on case10.png" in _text(dash_duo, ids.SPACING_NOTE)
    wait_for(dash_duo, lambda: not _shown(dash_duo, ids.SPACING_REUSE_ROW), 10)

    # 3. case12, another size: still offered, and the size is said.
    _open(dash_duo, case12)
    wait_for(dash_duo, lambda: _shown(dash_duo, ids.SPACING_REUSE_ROW), 10, "nothing offered")
    assert _text(dash_duo, ids.SPACING_REUSE_NOTE) == (
        "case10.png was 600 × 400 px, this image is 500 × 300 px: check its depth scale "
        "before using it.")

    # 4. Calibrate: a line along 400 px of the image, said to be 40 mm.
    assert _js(dash_duo, "return gd._fullLayout.dragmode;") == "pan"
    click(driver, By.ID, ids.SPACING_CALIBRATE)
    wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "drawline",
             10, "Calibrate did not turn the mouse into a line pen")
    driver.execute_script("document.getElementById('annotation-graph')"
                          ".scrollIntoView({block: 'center', behavior: 'instant'});")
    start, end = _to_screen(dash_duo, 50, 150), _to_screen(dash_duo, 450, 150)
    ActionChains(driver).move_to_location(*start).click_and_hold().move_to_location(
        start[0] + 20, start[1]).move_to_location(*end).release().perform()
    wait_for(dash_duo, lambda: _shown(dash_duo, ids.SPACING_LINE_FORM), 10, "no line measured")
    label = _text(dash_duo, ids.SPACING_LINE_TEXT)
    pixels = float(label.removeprefix("Line ").removesuffix(" px ="))
    # The screen maps a few image pixels to one of its own: the line is 400 px long,
    # give or take that rounding.
    per_screen_px = 400 / (end[0] - start[0])
    assert abs(pixels - 400) <= 2 * per_screen_px + 1, label
    # The line is taken off, is no outline and no step of the history; the tool is back.
    wait_for(dash_duo, lambda: _js(dash_duo, "return gd._fullLayout.dragmode;") == "pan", 10)
    assert _js(dash_duo, "return (gd.layout.shapes || []).length;") == 0
    assert driver.find_element(By.ID, ids.UNDO_BUTTON).get_attribute("disabled") is not None

    _type(dash_duo, ids.SPACING_LINE_MM, "0")
    click(driver, By.ID, ids.SPACING_LINE_COMPUTE)
    wait_for(dash_duo, lambda: "is not a length" in _text(dash_duo, ids.SPACING_NOTE), 10)
    _type(dash_duo, ids.SPACING_LINE_MM, "40")
    click(driver, By.ID, ids.SPACING_LINE_COMPUTE)
    wait_for(dash_duo, lambda: "Set to measure at it" in _text(dash_duo, ids.SPACING_NOTE), 10)
    shown = float(_value(dash_duo, ids.SPACING_INPUT))
    assert shown == pytest.approx(40 / pixels, rel=1e-3)  # the label rounds to 0.1 px
    # Shown for confirmation, not yet measured at.
    assert "pixel spacing unknown" in _text(dash_duo, ids.IMAGE_INFO)
    click(driver, By.ID, ids.SPACING_SET)
    wait_for(dash_duo, lambda: "pixel spacing 0.1" in _text(dash_duo, ids.IMAGE_INFO), 10,
             _text(dash_duo, ids.IMAGE_INFO))
    # Set as computed: the record will say it was calibrated, not typed.
    assert "calibrated on the image's depth scale" in _text(dash_duo, ids.IMAGE_INFO)
    assert not [e for e in console_errors(dash_duo) if "favicon" not in e]
