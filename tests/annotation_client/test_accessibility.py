"""Every page, as a screen-reader or keyboard user meets it: axe-core in Chromium.

axe-core (Deque's accessibility engine, the JavaScript that ships inside the
``axe-playwright-python`` wheel) runs on the Annotate page without and with an image
and its AI outline, on the Saved page without and with saved versions, on the Learn
page and on the page of an unknown address. Any violation of any impact fails, with one
exception (``axe_check``) checked by hand below: Dash's dropdowns. Text whose colour
contrast axe-core leaves undecided (*incomplete*: an element over it hides its
background from axe) has its ratio computed from the page's styles, and fails below
WCAG AA too.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _dash_helpers import click, closed_port, pick_option, settled, upload, wait_for
from _saved_data import save_three
from axe_check import DROPDOWN_FOCUS_TARGET, assert_accessible, assert_incomplete_contrast
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids

pytestmark = pytest.mark.usefixtures("an_app_exists")


def _assert_accessible(dash_duo, where: str) -> None:
    assert_accessible(dash_duo.driver, where)
    # What axe-core could not decide (the upload zone's text, under its transparent
    # file field): its "browse" link was 4.27:1, passed as not a violation.
    assert_incomplete_contrast(dash_duo.driver, where)


def test_every_page_passes_axe(dash_duo, live_model_server, busi_dir, data_dir, tmp_path):
    save_three(data_dir)
    worklist = tmp_path / "worklist"
    worklist.mkdir()
    image = busi_dir / "benign" / "benign (1).png"
    shutil.copy(image, worklist / "case 1.png")
    app = create_app({"MODEL_SERVER_URL": live_model_server, "DATA_DIR": data_dir,
                      "WORKLIST_DIR": worklist})
    dash_duo.start_server(app)
    driver = dash_duo.driver

    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    wait_for(dash_duo, lambda: "ready" in driver.find_element(By.ID, ids.SERVER_STATUS).text, 60)
    _assert_accessible(dash_duo, "Annotate, no image")

    upload(dash_duo, image)
    wait_for(dash_duo, lambda: "px²" in dash_duo.find_element(f"#{ids.MEASUREMENTS}").text, 60,
             "no AI outline")
    _assert_accessible(dash_duo, "Annotate, an image and its AI outline")

    # Saved: the Record card gains "Saved before" with Load it to revise, and Compare with.
    settled(dash_duo, quiet=0.5)  # the recall of a stored name would write over one typed
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr Axe", Keys.TAB)
    click(driver, By.XPATH, f"//*[@id='{ids.FINAL_LABEL}']//label[normalize-space()='benign']")
    click(driver, By.ID, ids.SAVE_BUTTON)
    dash_duo.wait_for_element("#save-result[data-version]", timeout=30)
    wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.COMPARE).is_displayed(),
             20, "no Compare with after the save")
    _assert_accessible(dash_duo, "Annotate, a saved image")
    # Another reader opens it: "Saved before ... by Dr Axe" and its Load it to revise.
    driver.get(dash_duo.server_url + "/")
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    settled(dash_duo, quiet=0.5)
    name = driver.find_element(By.ID, ids.ANNOTATOR)
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("Dr Bee", Keys.TAB)
    upload(dash_duo, image)
    wait_for(dash_duo, lambda: driver.find_element(By.ID, ids.OTHERS_SAVES_LOAD).is_displayed(),
             30, "no note of another reader's save")
    _assert_accessible(dash_duo, "Annotate, another reader's saved image")

    driver.get(dash_duo.server_url + "/saved")
    wait_for(dash_duo, lambda: driver.find_elements(By.CSS_SELECTOR, f"#{ids.SAVED_TABLE} td"),
             30, "no saved versions listed")
    _assert_accessible(dash_duo, "Saved, three versions")

    driver.get(dash_duo.server_url + "/learn")
    dash_duo.wait_for_element("h1")
    _assert_accessible(dash_duo, "Learn")


def test_the_pages_pass_axe_with_the_server_down_and_nothing_saved(dash_duo, data_dir, tmp_path):
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir, "REQUEST_TIMEOUT": 3})
    dash_duo.start_server(app)
    # The server's alert, and a file the page refuses: what the page says, read out.
    dash_duo.wait_for_element("#server-alert-message", timeout=20)
    bad = tmp_path / "report.png"
    bad.write_bytes(b"a text file named like a PNG")
    upload(dash_duo, bad)
    dash_duo.wait_for_element("#upload-error", timeout=20)
    _assert_accessible(dash_duo, "Annotate, server down, a file refused")

    # No rows: the table's scrolling frame is all there is to focus.
    dash_duo.driver.get(dash_duo.server_url + "/saved")
    dash_duo.wait_for_element(f"#{ids.SAVED_TABLE} .dash-spreadsheet-container")
    wait_for(dash_duo, lambda: dash_duo.find_element(
        f"#{ids.SAVED_TABLE} .dash-spreadsheet-container").get_attribute("tabindex") == "0", 10)
    _assert_accessible(dash_duo, "Saved, nothing saved")

    # An unknown address: its page had an h4 and no h1.
    dash_duo.driver.get(dash_duo.server_url + "/nowhere")
    dash_duo.wait_for_element("#not-found")
    assert [h.text for h in dash_duo.driver.find_elements(By.CSS_SELECTOR, "h1")] == [
        "Page not found"]
    _assert_accessible(dash_duo, "Not found")


#: The accessible name a screen reader reads for ``el`` when aria-labelledby names it.
NAME_OF = r"""
function nameOf(el) {
    return (el.getAttribute('aria-labelledby') || '').split(/\s+/).map(function (id) {
        var e = id && document.getElementById(id);
        return e ? e.textContent : '';
    }).join(' ').replace(/\s+/g, ' ').trim();
}
"""


def test_a_dropdown_hands_the_focus_to_its_named_button(dash_duo, data_dir):
    """What the one exception above rests on: the hidden input never keeps the focus."""
    save_three(data_dir)
    app = create_app({"MODEL_SERVER_URL": "http://127.0.0.1:9", "DATA_DIR": data_dir})
    dash_duo.start_server(app)
    dash_duo.driver.get(dash_duo.server_url + "/saved")
    dash_duo.wait_for_element(DROPDOWN_FOCUS_TARGET)
    landed = dash_duo.driver.execute_script(
        NAME_OF + """
        return Array.prototype.map.call(document.querySelectorAll(arguments[0]), function (t) {
            t.focus();
            var now = document.activeElement;
            return [now.tagName, now.id, nameOf(now)];
        });
        """,
        DROPDOWN_FOCUS_TARGET,
    )
    assert [(tag, id_) for tag, id_, _ in landed] == [
        ("BUTTON", ids.SAVED_ANNOTATOR), ("BUTTON", ids.SAVED_LABEL),
        ("BUTTON", ids.SAVED_ASSESSMENT)]
    # Named by the field's label, then the value shown, as a select would be.
    assert [name for *_, name in landed] == [
        "Annotator Any annotator", "Final label Any final label",
        "BI-RADS assessment Any BI-RADS"]

    # Still so once another value is picked and the dropdown drawn again.
    driver = dash_duo.driver
    driver.find_element(By.ID, ids.SAVED_LABEL).click()
    option = wait_for(dash_duo, lambda: next(
        (o for o in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
         if o.text == "Benign"), None), 10, "no Benign option")
    pick_option(dash_duo, option)
    wait_for(dash_duo, lambda: driver.execute_script(
        NAME_OF + "return nameOf(document.getElementById(arguments[0]));", ids.SAVED_LABEL)
        == "Final label Benign", 10, "the label was lost")


def test_radio_and_check_box_sets_are_named_groups_and_the_edit_status_is_spoken(
        dash_duo, data_dir, tmp_path):
    # A <label for> pointed at the DIV of a dbc.RadioItems or Checklist, which a label
    # cannot name: a screen reader met "benign, radio button" with no question.
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": data_dir})
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.FINAL_LABEL} input[type=radio]")

    def group(element_id):
        return driver.execute_script(
            NAME_OF + "var e = document.getElementById(arguments[0]);"
            "return [e.getAttribute('role'), nameOf(e)];", element_id)

    wait_for(dash_duo, lambda: group(ids.FINAL_LABEL)[0] is not None, 10, "no group role")
    assert group(ids.FINAL_LABEL) == ["radiogroup", "Final label"]
    assert group(ids.TOOL) == ["radiogroup", "Editing tool"]
    assert group(ids.descriptor("margin")) == ["group", "Margin"]
    # A select is named by its label already, and keeps its own role.
    assert group(ids.descriptor("shape"))[0] is None
    assert dash_duo.find_element(f"#{ids.EDIT_STATUS}").get_attribute("role") == "status"

    # Nothing to erase before an image is open.
    erase = dash_duo.find_element(f"#{ids.ERASE_BUTTON}")
    assert not erase.is_enabled()
    image = tmp_path / "scan.png"
    Image.fromarray(np.add.outer(np.arange(40), np.arange(60)).astype(np.uint8)).save(image)
    upload(dash_duo, image)
    wait_for(dash_duo, erase.is_enabled, 20, "Erase selected stayed disabled")


def test_focus_rings_are_seen_and_forced_colours_show_the_tool_picked(dash_duo, data_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.NOTE}", timeout=20)

    def outline(selector) -> tuple[str, float]:
        style = driver.execute_script(
            "var s = getComputedStyle(document.querySelector(arguments[0]));"
            "return [s.outlineStyle, parseFloat(s.outlineWidth)];", selector)
        return style[0], style[1]

    # Bootstrap's own ring is a pale halo (1.4:1 on white): a solid 2 px outline now,
    # from the keyboard (focus-visible), on a select as on a button or a radio.
    driver.execute_script("document.getElementById(arguments[0]).focus();", ids.NOTE)
    for _ in range(3):
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(
            Keys.SHIFT).perform()
        focused = driver.execute_script("return document.activeElement.type;")
        assert focused in ("select-one", "radio", "checkbox", "button"), focused
        assert outline(":focus") == ("solid", 2.0), focused

    # Forced colours paint Bootstrap's background of the picked tool over: it is
    # outlined instead.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "forced-colors", "value": "active"}]})
    try:
        checked = f"#{ids.TOOL} .btn-check:checked + .btn"
        unchecked = f"#{ids.TOOL} .btn-check:not(:checked) + .btn"
        assert outline(checked)[0] == "solid" and outline(checked)[1] >= 3
        assert outline(unchecked)[0] == "none"
        # The sliders' tracks were backgrounds only, painted over: a thumb over marks.
        track = driver.execute_script(
            "var t = getComputedStyle(document.querySelector('.dash-slider-track'));"
            "var r = getComputedStyle(document.querySelector('.dash-slider-range'));"
            "return [t.outlineStyle, r.backgroundColor, r.forcedColorAdjust];")
        assert track[0] == "solid" and track[2] == "none"
        assert track[1] not in ("rgba(0, 0, 0, 0)", "transparent")
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_each_set_of_radio_buttons_is_one_tab_stop(dash_duo, data_dir):
    # Unnamed, each radio was a stop of its own: six extra presses of Tab.
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    dash_duo.wait_for_element(f"#{ids.NOTE}", timeout=20)
    names = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('input[type=radio]'))"
        ".map(r => [r.parentElement.closest('[id]').id, r.name]);")
    groups = {group for group, _ in names}
    assert {ids.TOOL, ids.FINAL_LABEL} <= groups
    assert all(name == group for group, name in names if group in (ids.TOOL, ids.FINAL_LABEL))


#: For the focused element: its outline's style and width, and whether the ring (the
#: outline, out to its offset) lies inside every box that clips it (overflow not visible).
RING = r"""
var e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
var out = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth);
var shown = true;
for (var box = e.parentElement; box && box !== document.body; box = box.parentElement) {
    var b = getComputedStyle(box);
    if (b.overflowX === 'visible' && b.overflowY === 'visible') { continue; }
    var c = box.getBoundingClientRect();
    shown = shown && r.left - out >= c.left && r.top - out >= c.top &&
        r.right + out <= c.right && r.bottom + out <= c.bottom;
}
return [s.outlineStyle, parseFloat(s.outlineWidth), shown];
"""


def test_the_saved_tables_sort_buttons_and_links_show_the_focus_ring(
        dash_duo, data_dir, tmp_path):
    # Dash's table set "outline: none" on whatever was focused inside it: 19 sort
    # buttons and the Open links went by with nothing to show where the focus was.
    from selenium.webdriver.common.action_chains import ActionChains

    save_three(data_dir)
    folder = tmp_path / "worklist"
    folder.mkdir()  # study7/right.png's version gets its Open link
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir, "WORKLIST_DIR": folder}))
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/saved")
    wait_for(dash_duo, lambda: driver.find_elements(By.CSS_SELECTOR, "a[href*='open=']"), 20,
             "no Open link")
    driver.execute_script("document.getElementById(arguments[0]).focus();",
                          ids.SAVED_PROGRESS_BUTTON)
    seen = {}
    for _ in range(40):  # the table, its sort buttons, then the Open link
        ActionChains(driver).send_keys(Keys.TAB).perform()
        kind = driver.execute_script(
            "var e = document.activeElement; return e.tagName === 'A' ? 'link' :"
            " e.classList.contains('column-header--sort') ? 'sort' : e.tagName;")
        if kind in ("sort", "link"):
            seen.setdefault(kind, driver.execute_script(RING))
        if kind == "link":
            break
    assert seen == {"sort": ["solid", 2.0, True], "link": ["solid", 2.0, True]}


def test_a_change_of_the_model_servers_badge_is_read_out_once(dash_duo, data_dir,
                                                                monkeypatch):
    # The badge changed silently when the server went away mid-session; a live badge
    # would have been read out at every health poll, which draws it anew.
    from _dash_helpers import HealthyModelServer, serve_http

    server = serve_http(HealthyModelServer)
    url = server.__enter__()
    try:
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir})
        from annotation_client.pages import annotate  # registered by create_app

        monkeypatch.setattr(annotate, "SERVER_POLL_MS", 1000)
        dash_duo.start_server(app)
        driver = dash_duo.driver
        dash_duo.wait_for_element(f"#{ids.SERVER_STATUS_SAID}")
        wait_for(dash_duo, lambda: "model server ready" in
                 driver.find_element(By.ID, ids.SERVER_STATUS).text, 20, "no ready badge")
        said = driver.find_element(By.ID, ids.SERVER_STATUS_SAID)
        assert (said.get_attribute("role"), said.get_attribute("aria-live")) == (
            "status", "polite")
        # Not the badge: drawn anew at every poll, it would be read out at every one.
        assert driver.execute_script(
            "return document.getElementById(arguments[0])"
            ".closest('[aria-live], [role=status], [role=alert]');", ids.SERVER_STATUS) is None
        # Counts the polls (each draws the badge anew) and what the region says.
        driver.execute_script(
            "window.__polls = 0; window.__said = [];"
            "new MutationObserver(function () { window.__polls += 1; })"
            ".observe(document.getElementById(arguments[0]), {childList: true, subtree: true});"
            "var said = document.getElementById(arguments[1]);"
            "new MutationObserver(function () { window.__said.push(said.textContent); })"
            ".observe(said, {childList: true, subtree: true, characterData: true});",
            ids.SERVER_STATUS, ids.SERVER_STATUS_SAID)
        wait_for(dash_duo, lambda: driver.execute_script("return window.__polls;") >= 2, 20,
                 "the badge was not drawn again")
        assert driver.execute_script("return window.__said;") == []  # nothing new to say
    finally:
        server.__exit__(None, None, None)
    wait_for(dash_duo, lambda: "model server offline" in
             driver.find_element(By.ID, ids.SERVER_STATUS).text, 20, "no offline badge")
    wait_for(dash_duo, lambda: said.text == "model server offline", 10, said.text)
    polls = driver.execute_script("return window.__polls;")
    wait_for(dash_duo, lambda: driver.execute_script("return window.__polls;") >= polls + 4,
             20, "the badge was not drawn again")
    assert driver.execute_script("return window.__said;") == ["model server offline"]


def test_no_page_scrolls_sideways_at_320_css_pixels(dash_duo, data_dir):
    # 320 CSS px is a 1280 px screen at 400 % zoom (WCAG 1.4.10, reflow): the editing
    # tools' group, 418 px wide, did not wrap, and the Annotate page scrolled sideways.
    save_three(data_dir)
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                                      "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 320, "height": 256, "deviceScaleFactor": 1, "mobile": False})
    try:
        for path, ready in (("/", f"#{ids.TOOL} input[type=radio]"),
                            ("/saved", f"#{ids.SAVED_TABLE} td"), ("/learn", "h1"),
                            ("/nowhere", "#not-found")):
            driver.get(dash_duo.server_url + path)
            dash_duo.wait_for_element(ready, timeout=20)
            settled(dash_duo, quiet=0.5)
            widths = driver.execute_script(
                "var r = document.documentElement; return [r.scrollWidth, r.clientWidth];")
            assert widths[0] <= widths[1], (path, widths)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
