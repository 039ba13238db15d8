"""Browser test: an outline selected from the keyboard (R), so Delete takes off one region.

Only a pointer could select an outline: a reader using the keyboard could not remove a
false-positive region and keep the true one (Grow, Shrink and Reset act on every region),
and Delete did nothing (audit 703 F1). A stand-in model outlines two rectangles.
"""

from __future__ import annotations

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    gradient_png,
    serve_http,
    settled,
    upload,
    wait_for,
)
from _dash_helpers import edit_status as _status
from _dash_helpers import graph_js as _js
from _dash_helpers import shape_paths as _shape_paths
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import _shapes, create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 240, 180
#: The stand-in model's two regions (x0, y0, x1, y1, pixel edges): a lesion and a
#: false positive beside it.
RECTANGLES = ((20, 30, 90, 110), (140, 60, 220, 150))


def _mask_of(*rectangles) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for x0, y0, x1, y1 in rectangles:
        mask[y0:y1, x0:x1] = True
    return mask


class _TwoRegions(HealthyModelServer):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_outline(_mask_of(*RECTANGLES))


def _region_mask(path: str) -> np.ndarray:
    return _shapes.paths_to_mask([path], (HEIGHT, WIDTH))


def test_r_selects_each_outline_in_turn_and_delete_erases_only_that_one(
        dash_duo, data_dir, tmp_path):
    with serve_http(_TwoRegions) as url:
        dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir}))
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
        upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30,
                 _status(dash_duo))
        settled(dash_duo, quiet=0.5)
        driver = dash_duo.driver
        paths = _shape_paths(dash_duo)
        assert len(paths) == 2

        def press(*keys) -> None:
            chain = ActionChains(driver)
            for key in keys:
                chain = chain.send_keys(key)
            chain.perform()

        def selected():
            return _js(dash_duo, "return gd._fullLayout._activeShapeIndex;")

        def handles() -> int:
            return _js(dash_duo, "return document.querySelectorAll("
                                 "'#annotation-graph .outline-controllers circle').length;")

        def said() -> str:
            return dash_duo.find_element(f"#{ids.OUTLINE_SELECTED}").text

        said_box = dash_duo.find_element(f"#{ids.OUTLINE_SELECTED}")
        assert said_box.get_attribute("role") == "status"
        assert said() == ""
        # From the page (nothing focused), R selects each region in turn, shown selected
        # with its vertex handles, and says which.
        driver.execute_script("document.activeElement.blur();")
        press("r")
        wait_for(dash_duo, lambda: selected() == 0 and handles() > 0, 10, "R selected nothing")
        wait_for(dash_duo, lambda: said().startswith("Outline 1 of 2 selected"), 10, said())
        press("r")
        wait_for(dash_duo, lambda: selected() == 1, 10, "R did not select the next outline")
        wait_for(dash_duo, lambda: said().startswith("Outline 2 of 2 selected"), 10, said())
        # Shift+R goes back; Esc, or R past the last region, selects none.
        ActionChains(driver).key_down(Keys.SHIFT).send_keys("r").key_up(Keys.SHIFT).perform()
        wait_for(dash_duo, lambda: selected() == 0, 10, "Shift+R did not go back")
        press(Keys.ESCAPE)
        wait_for(dash_duo, lambda: selected() is None and handles() == 0, 10,
                 "Esc did not let go of the outline")
        wait_for(dash_duo, lambda: said() == "No outline selected.", 10, said())
        press("r", "r", "r")
        wait_for(dash_duo, lambda: selected() is None, 10, "R past the last selected one")

        # A key typed into a text field is the field's.
        note = driver.find_element(By.ID, ids.NOTE)
        driver.execute_script("arguments[0].focus();", note)
        note.send_keys("r")
        settled(dash_duo, quiet=0.3)
        assert selected() is None and note.get_attribute("value") == "r"

        # The false positive (the second region) selected, Delete erases it alone.
        driver.execute_script("document.activeElement.blur();")
        press("r", "r")
        wait_for(dash_duo, lambda: selected() == 1, 10, "R did not select the second outline")
        press(Keys.DELETE)
        wait_for(dash_duo, lambda: len(_shape_paths(dash_duo)) == 1, 10, "Delete did nothing")
        left = _shape_paths(dash_duo)[0]
        assert np.array_equal(_region_mask(left), _region_mask(paths[0]))
        wait_for(dash_duo, lambda: "1 region(s)" in _status(dash_duo), 10, _status(dash_duo))

        # With a drawing tool the outline cannot be selected (Delete would erase it
        # unseen): R says what to pick.
        press("c")
        wait_for(dash_duo, lambda: _js(dash_duo, "return gd.layout.shapes.every("
                                                 "s => s.editable !== true);"), 10,
                 "the outline stayed editable with Cut away")
        press("r")
        wait_for(dash_duo, lambda: said().startswith("Pick Pan or Zoom"), 10, said())
        assert selected() is None
