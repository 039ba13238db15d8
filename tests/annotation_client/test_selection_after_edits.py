"""Browser test: a change to the outlines leaves nothing selected, so Delete erases only
an outline the user picked.

plotly.js keeps the selected outline as a position in the shape list across figures:
after an erase the next outline was shown selected, and a second Delete erased it; after
Ctrl+Z the outline the undo brought back was; and R, Delete, R, Delete left one outline,
the second R letting go of the outline the erase had left selected (audit 806 F1). A
stand-in model outlines three rectangles.
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
from selenium.webdriver.common.keys import Keys

from annotation_client import _shapes, create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 300, 180
#: The stand-in model's three regions (x0, y0, x1, y1, pixel edges).
RECTANGLES = ((20, 30, 80, 110), (120, 40, 180, 120), (220, 60, 280, 150))


class _ThreeRegions(HealthyModelServer):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        for x0, y0, x1, y1 in RECTANGLES:
            mask[y0:y1, x0:x1] = True
        self.send_outline(mask)


def _left(dash_duo) -> list[int]:
    """Which of :data:`RECTANGLES` the graph still shows (by the left edge of each)."""
    lefts = []
    for path in _shape_paths(dash_duo):
        mask = _shapes.paths_to_mask([path], (HEIGHT, WIDTH))
        lefts.append(int(np.flatnonzero(mask.any(axis=0))[0]))
    return sorted(lefts)


def test_an_erase_an_undo_and_grow_leave_nothing_selected(dash_duo, data_dir, tmp_path):
    with serve_http(_ThreeRegions) as url:
        dash_duo.start_server(create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir}))
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
        upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 30,
                 _status(dash_duo))
        settled(dash_duo, quiet=0.5)
        driver = dash_duo.driver
        assert _left(dash_duo) == [20, 120, 220]

        def press(*keys) -> None:
            chain = ActionChains(driver)
            for key in keys:
                chain = chain.send_keys(key)
            chain.perform()

        def ctrl(key) -> None:
            ActionChains(driver).key_down(Keys.CONTROL).send_keys(key).key_up(
                Keys.CONTROL).perform()

        def selected():
            return _js(dash_duo, "return gd._fullLayout._activeShapeIndex;")

        def handles() -> int:
            return _js(dash_duo, "return document.querySelectorAll("
                                 "'#annotation-graph .outline-controllers circle').length;")

        def said() -> str:
            return dash_duo.find_element(f"#{ids.OUTLINE_SELECTED}").text

        def count_becomes(n: int) -> None:
            wait_for(dash_duo, lambda: len(_shape_paths(dash_duo)) == n, 10,
                     f"{len(_shape_paths(dash_duo))} outlines, not {n}")
            wait_for(dash_duo, lambda: f"{n} region(s)" in _status(dash_duo), 10,
                     _status(dash_duo))
            settled(dash_duo, quiet=0.5)

        driver.execute_script("document.activeElement.blur();")
        # An edit of the picked outline itself (a vertex dragged, as plotly.js reports
        # it) keeps it selected: it is still the one the user picked.
        press("r")
        wait_for(dash_duo, lambda: selected() == 0, 10, "R selected nothing")
        _js(dash_duo, "Plotly.relayout(gd, {'shapes[0].path': 'M20,30L80,30L84,110L20,110Z'});")
        wait_for(dash_duo, lambda: "last change: edit" in _status(dash_duo), 10,
                 _status(dash_duo))
        settled(dash_duo, quiet=0.5)
        assert selected() == 0, said()
        press(Keys.ESCAPE)
        wait_for(dash_duo, lambda: selected() is None, 10, "Esc did not let go")

        # The first outline picked and erased: none of the others is selected after it,
        # and a second Delete (a double press) erases nothing.
        press("r")
        wait_for(dash_duo, lambda: selected() == 0, 10, "R selected nothing")
        press(Keys.DELETE)
        count_becomes(2)
        assert selected() is None and handles() == 0, said()
        wait_for(dash_duo, lambda: said() == "No outline selected.", 10, said())
        press(Keys.DELETE)
        settled(dash_duo, quiet=0.5)
        assert _left(dash_duo) == [120, 220]
        # So does a second click of Erase selected, which says nothing is selected.
        dash_duo.find_element(f"#{ids.ERASE_BUTTON}").click()
        dash_duo.wait_for_element("#erase-nothing", timeout=10)
        assert _left(dash_duo) == [120, 220]

        # Undo brings the erased outline back, and the one picked meanwhile is not
        # swapped for it: nothing is selected.
        driver.execute_script("document.activeElement.blur();")
        press("r", "r")
        wait_for(dash_duo, lambda: selected() == 1, 10, "R did not select the second")
        ctrl("z")
        count_becomes(3)
        assert selected() is None and handles() == 0, said()
        press(Keys.DELETE)
        settled(dash_duo, quiet=0.5)
        assert _left(dash_duo) == [20, 120, 220]

        # Grow changes every outline: none stays selected.
        press("r")
        wait_for(dash_duo, lambda: selected() == 0, 10, "R selected nothing")
        before = _shape_paths(dash_duo)
        dash_duo.find_element(f"#{ids.GROW_BUTTON}").click()
        wait_for(dash_duo, lambda: _shape_paths(dash_duo) != before, 10, "Grow did nothing")
        settled(dash_duo, quiet=0.5)
        assert selected() is None and handles() == 0, said()
        ctrl("z")
        count_becomes(3)

        # The keyboard's way (README): R, Delete, R, Delete erases two outlines, the
        # second R selecting one that is there.
        driver.execute_script("document.activeElement.blur();")
        press("r")
        wait_for(dash_duo, lambda: selected() == 0, 10, "R selected nothing")
        press(Keys.DELETE)
        count_becomes(2)
        press("r")
        wait_for(dash_duo, lambda: selected() == 0, 10, "the second R selected nothing")
        wait_for(dash_duo, lambda: said().startswith("Outline 1 of 2 selected"), 10, said())
        press(Keys.DELETE)
        count_becomes(1)
        assert _left(dash_duo) == [220]
