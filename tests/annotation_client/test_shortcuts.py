"""The list of keyboard shortcuts: what it says, and the ``?`` key and *Keys* button."""

from __future__ import annotations

import re

import pytest
from _dash_helpers import closed_port, wait_for
from axe_check import assert_accessible
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import _shortcuts, create_app, ids

pytestmark = pytest.mark.usefixtures("an_app_exists")


def _titles(component) -> list[str]:
    """Every ``title`` in a component tree."""
    found = []
    title = getattr(component, "title", None)
    if isinstance(title, str):
        found.append(title)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found += _titles(child)
    options = getattr(component, "options", None) or []
    for option in options if isinstance(options, list) else []:
        if isinstance(option, dict) and not isinstance(option.get("label"), str):
            found += _titles(option["label"])
    return found


def test_every_key_a_tool_bar_button_names_is_in_the_list():
    # A hover text says "(Ctrl+Z)": the list must say it too, or the two went apart.
    from annotation_client.pages import annotate

    listed = " ".join(keys for keys, _ in _shortcuts.SHORTCUTS)
    named = [match for title in _titles(annotate._tool_bar())
             for match in re.findall(r"\(([^()]+)\)$", title)]
    assert {"Ctrl+Z", "Ctrl+Y", "Delete", "C", "+", "−", "?"} <= set(named)
    for keys in named:
        assert keys in listed, keys


def test_question_mark_and_the_keys_button_open_the_list(dash_duo, data_dir):
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.SHORTCUTS_BUTTON}", timeout=20)

    def shown() -> list[str]:
        return [row.text for row in driver.find_elements(
            By.CSS_SELECTOR, f"#{ids.SHORTCUTS_PANEL} tbody tr") if row.is_displayed()]

    assert shown() == []
    # From the page (nothing focused): ? opens it, with every key and what it does.
    driver.execute_script("document.activeElement.blur();")
    ActionChains(driver).send_keys("?").perform()
    wait_for(dash_duo, lambda: len(shown()) == len(_shortcuts.SHORTCUTS), 10,
             "? did not open the list")
    assert shown() == [f"{keys} {does}" for keys, does in _shortcuts.SHORTCUTS]
    assert_accessible(driver, "the keyboard shortcuts dialog")
    # Esc closes it, and the button opens it again.
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    wait_for(dash_duo, lambda: shown() == [], 10, "Esc did not close the list")
    driver.find_element(By.ID, ids.SHORTCUTS_BUTTON).click()
    wait_for(dash_duo, lambda: len(shown()) == len(_shortcuts.SHORTCUTS), 10,
             "the Keys button did not open the list")
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    wait_for(dash_duo, lambda: shown() == [], 10, "Esc did not close the list")
    # Typed into a text field, ? is a character: the note keeps it, no list opens.
    note = driver.find_element(By.ID, ids.NOTE)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                          "arguments[0].focus();", note)
    note.send_keys("BI-RADS 4?")
    assert note.get_attribute("value").endswith("4?")
    assert shown() == []
