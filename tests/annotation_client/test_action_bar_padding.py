"""A field reached by Tab is not left under the sticky action bar, however tall it is."""

from __future__ import annotations

import pytest
from _dash_helpers import click, make_worklist, wait_for
from _dash_helpers import start_on_worklist as _start
from selenium.webdriver.common.by import By

from annotation_client import ids


@pytest.fixture
def worklist(tmp_path):
    return make_worklist(tmp_path)


def _rect(driver, element_id: str) -> dict:
    return driver.execute_script(
        "var r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, height: r.height};", element_id)


def _focus_just_under_the_bar(dash_duo, element_id: str, bar_height: float) -> None:
    """Scroll ``element_id`` to end just inside the bar's top edge, then give it the
    focus as Tab would. The browser scrolls a field it takes for hidden (by the page's
    scroll padding) into view, and leaves one it takes for shown where it is."""
    driver = dash_duo.driver
    # Its bottom 10 px inside the bar: under it, yet clear of a padding shorter than it.
    driver.execute_script(
        "var r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "window.scrollBy({top: r.bottom - (window.innerHeight - arguments[1] + 10),"
        " behavior: 'instant'});", element_id, bar_height)
    assert _rect(driver, element_id)["bottom"] > _rect(driver, ids.ACTION_BAR)["top"]
    driver.execute_script("document.getElementById(arguments[0]).focus();", element_id)
    wait_for(dash_duo, lambda: driver.execute_script(
        "return document.activeElement.id;") == element_id, 5, f"#{element_id} took no focus")


def test_a_field_reached_by_tab_stops_above_the_bar_with_a_save_message(
        dash_duo, data_dir, worklist):
    _start(dash_duo, data_dir, worklist)
    driver = dash_duo.driver
    bare = _rect(driver, ids.ACTION_BAR)["height"]

    # A save refused for want of a name writes its reason into the bar, which grows.
    click(driver, By.ID, ids.SAVE_BUTTON)
    wait_for(dash_duo, lambda: "Not saved" in driver.find_element(By.ID, ids.ACTION_BAR).text,
             15, "no answer to Save")
    tall = wait_for(dash_duo, lambda: (lambda h: h if h > bare + 20 else None)(
        _rect(driver, ids.ACTION_BAR)["height"]), 5, "the bar did not grow")
    # The stylesheet's fixed padding (4.5rem, 72 px) would be too little for it.
    assert tall > 72 + 8, tall

    # Fields of the Record card far enough from the column's end that the bar, held at
    # the window's foot, can be over them.
    for field in (ids.descriptor("shape"), ids.descriptor("orientation")):
        _focus_just_under_the_bar(dash_duo, field, tall)
        wait_for(dash_duo, lambda f=field: _rect(driver, f)["bottom"]
                 <= _rect(driver, ids.ACTION_BAR)["top"], 5, f"#{field} ended under the bar")
