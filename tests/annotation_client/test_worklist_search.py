"""A file past the worklist dropdown's limit (``_worklist.MAX_ENTRIES``) can be picked
from it: typing part of its name finds it.

The dropdown holds the first ``MAX_ENTRIES`` files and searches them in the browser;
the files past them were reached by *Open next not annotated* only. What the reader
types now goes to the client too (``search_value``), which adds the files past the
limit whose path holds it (:func:`_worklist.search_unlisted`) to the options.
"""

from __future__ import annotations

import dash
import pytest
from _dash_helpers import (
    as_callback,
    case_png,
    click,
    image_name,
    pick_option,
    text_of,
    wait_for,
    worklist_app,
)
from selenium.webdriver.common.by import By

from annotation_client import _worklist, ids

CAP = _worklist.MAX_ENTRIES
PAST = [f"case{n:05d}.png" for n in range(CAP, CAP + 3)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The cap's files (a few bytes each: listed, never opened) and three images past
    it, one in a folder."""
    folder = tmp_path_factory.mktemp("search") / "worklist"
    folder.mkdir()
    for n in range(CAP):
        (folder / f"case{n:05d}.png").write_bytes(b"%d" % n)
    for seed, name in enumerate(PAST):
        case_png(folder / name, seed)
    (folder / "site").mkdir()
    case_png(folder / "site" / "late case.png", 9)
    return folder


def test_search_finds_the_files_past_the_cap_by_every_word(folder, tmp_path):
    from annotation_client._storage import AnnotationStore

    listing = _worklist.list_images(folder, AnnotationStore(tmp_path / "data"))
    assert listing.unlisted == (*PAST, "site/late case.png")
    assert _worklist.search_unlisted(listing, "CASE05001") == [PAST[1]]
    assert _worklist.search_unlisted(listing, "case0500") == PAST
    assert _worklist.search_unlisted(listing, "case0500", limit=2) == PAST[:2]
    assert _worklist.search_unlisted(listing, "late  site/") == ["site/late case.png"]
    assert _worklist.search_unlisted(listing, "case00001") == []  # listed: the browser's
    assert _worklist.search_unlisted(listing, "  ") == _worklist.search_unlisted(
        listing, None) == []


@pytest.mark.usefixtures("an_app_exists")
def test_the_options_get_the_files_found_and_lose_them_as_a_patch(folder, tmp_path):
    from annotation_client.pages import annotate

    app = worklist_app(tmp_path / "data", folder)

    def answer(search, sent, shown=None):
        return as_callback(lambda: annotate.send_worklist(
            True, None, None, None, None, "page", None, None, shown, None, sent, search),
            f"{ids.WORKLIST}.search_value", app=app, value=search)

    options, shown, *_rest, digest = answer(None, None)
    assert len(options) == CAP
    # No note shown yet (the load's answer dropped as the search overtook it): drawn.
    assert text_of(shown).startswith(f"{CAP} of {CAP + 4} image(s) listed")
    found, note, *_rest, with_found = answer("case05001", digest, shown)
    # The entry found alone goes down, and the note under the list stays as it is.
    assert isinstance(found, dash.Patch) and note is dash.no_update
    operations = found.to_plotly_json()["operations"]
    assert [op["operation"] for op in operations] == ["Extend"]
    assert operations[0]["params"]["value"] == [{
        "label": f"{PAST[1]} — not listed: past the first {CAP}", "value": PAST[1],
        "disabled": False}]
    gone, *_rest, again = answer("", with_found, shown)
    assert [op["operation"] for op in gone.to_plotly_json()["operations"]] == ["Delete"]
    assert again == digest


def _search_box(driver):
    return driver.find_element(By.CSS_SELECTOR, ".dash-dropdown-search")


def _open_by_search(dash_duo, folder, tmp_path, path: str) -> None:
    """Start the client on ``folder``, type ``path`` in the dropdown, pick the file found."""
    dash_duo.start_server(worklist_app(tmp_path / "data", folder))
    driver = dash_duo.driver
    wait_for(dash_duo, lambda: "4 more not listed" in driver.find_element(
        By.ID, "worklist-count").text, 60, "the list did not come")
    click(driver, By.ID, ids.WORKLIST)
    box = wait_for(dash_duo, lambda: _search_box(driver), 10, "no search box")
    box.send_keys(path)

    def option():
        return next((o for o in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                     if o.text.startswith(path + " — ")), None)

    pick_option(dash_duo, wait_for(dash_duo, option, 20, f"{path} not found"))
    wait_for(dash_duo, lambda: image_name(dash_duo) == path.split("/")[-1], 30,
             f"{path} did not open")


def _position(driver) -> str:
    return text_of(driver.find_element(By.ID, ids.WORKLIST_POSITION).text)


def test_in_the_browser_a_file_past_the_cap_is_found_by_its_name_and_opens(
        dash_duo, folder, tmp_path):
    _open_by_search(dash_duo, folder, tmp_path, PAST[1])
    wait_for(dash_duo, lambda: _position(dash_duo.driver)
             == f"Open: {PAST[1]} (not listed: past the first {CAP})", 20,
             "the position does not say where the file is")


def test_in_the_browser_previous_and_next_go_on_past_the_cap_in_the_folders_order(
        dash_duo, folder, tmp_path):
    """From a file past the cap Next was disabled, and Previous went to the last listed
    entry: both now follow the folder's order, as Open next does."""
    driver = dash_duo.driver
    _open_by_search(dash_duo, folder, tmp_path, PAST[1])

    def step(button: str, path: str) -> None:
        wait_for(dash_duo, lambda: driver.find_element(By.ID, button).is_enabled(), 20,
                 f"{button} is disabled, on the way to {path}")
        click(driver, By.ID, button)
        wait_for(dash_duo, lambda: image_name(dash_duo) == path.split("/")[-1], 30,
                 f"{button} did not open {path}")
        wait_for(dash_duo, lambda: _position(driver).startswith(f"Open: {path} ("), 20,
                 f"the position does not name {path}")

    step(ids.WORKLIST_FOLLOWING, PAST[2])
    step(ids.WORKLIST_FOLLOWING, "site/late case.png")
    wait_for(dash_duo, lambda: not driver.find_element(By.ID, ids.WORKLIST_FOLLOWING)
             .is_enabled(), 20, "Next is enabled on the folder's last file")
    step(ids.WORKLIST_PREVIOUS, PAST[2])
    step(ids.WORKLIST_PREVIOUS, PAST[1])
    step(ids.WORKLIST_PREVIOUS, PAST[0])  # not the last listed entry, case04999


@pytest.mark.usefixtures("an_app_exists")
def test_a_keystroke_in_a_folder_listed_whole_sends_nothing(tmp_path):
    # Each keystroke ran the whole status pass over the list (0.2-0.3 s of the server's
    # time at 4000 files), though no file past the cap was there to find (review 1010).
    from dash.exceptions import PreventUpdate

    from annotation_client.pages import annotate

    small = tmp_path / "worklist"
    small.mkdir()
    for seed in range(3):
        case_png(small / f"case{seed}.png", seed)
    app = worklist_app(tmp_path / "data", small)

    def answer(search, shown):
        return as_callback(lambda: annotate.send_worklist(
            True, None, None, None, None, "page", None, None, shown, None, None, search),
            f"{ids.WORKLIST}.search_value", app=app, value=search)

    # No note shown yet: the search may be what draws the list the load's answer lost.
    options, shown, *_rest = answer("case1", None)
    assert [o["value"] for o in options] == ["case0.png", "case1.png", "case2.png"]
    with pytest.raises(PreventUpdate):
        answer("case1", shown)
