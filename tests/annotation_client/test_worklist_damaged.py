"""A damaged worklist file does not stop the reading (audit helper-407, F1).

*Open next not annotated* claims the entry it picks before opening it. A file that then
failed to open kept that claim for 15 minutes, the tab's claim left the image still on
screen, and every click (and every *Save & next*) picked the damaged file again. Now the
claim goes back to the image on screen, and the tab passes the file over, saying so,
until its bytes change.
"""

from __future__ import annotations

import dash
import numpy as np
import pytest
import sqlalchemy as sa
from _dash_helpers import (
    as_callback,
    click,
    make_worklist,
    open_entry,
    settled,
    text_of,
    wait_for,
    worklist_app,
)
from _dash_helpers import image_name as _image_name
from _saved_data import png_bytes
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from annotation_client import create_app, ids

# --------------------------------------------------------------------------- helpers


def _run(app, trigger, function, *args):
    """``function(*args)`` as the callback of a Dash request fired by ``trigger``."""
    return as_callback(lambda: function(*args), trigger, app=app, value=1)


def _claims(app) -> list[tuple[str, str]]:
    """``(page token, path)`` of every claim in the index database."""
    from annotation_client._app import get_index

    with app.server.app_context(), get_index().engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        if "worklist_claims" not in names:
            return []
        rows = conn.execute(sa.text("SELECT page, path FROM worklist_claims")).all()
    return sorted((page, path) for page, path in rows)


def _folder(tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    for n, name in enumerate(("a.png", "b.png", "c.png")):
        (folder / name).write_bytes(png_bytes(np.add.outer(np.arange(12), np.arange(16))
                                              % (3 + n) == 0))
    (folder / "b.png").write_bytes((folder / "b.png").read_bytes()[:40])  # truncated
    return folder


# ------------------------------------------------------------------ the callbacks, directly


@pytest.mark.usefixtures("an_app_exists")
def test_a_file_that_fails_to_open_gives_the_claim_back_and_is_passed_over(tmp_path, annotate):
    folder = _folder(tmp_path)
    app = create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder})

    def listing(meta, trigger, failed=None, saved=None):
        options, note, *_ = _run(app, trigger, annotate.show_worklist, True, None, saved, meta,
                                 None, "page-a", "Dr A", None, None, failed)
        return [o["label"] for o in options], text_of(note)

    def open_next(meta, failed=None):
        request, *_rest, note = _run(app, f"{ids.WORKLIST_NEXT}.n_clicks",
                                     annotate.request_entry, None, 1, None, None, "", meta,
                                     "page-a", "Dr A", None, None, failed)
        return (None if request is dash.no_update else request["path"]), text_of(note)

    def open_entry(request, current=None, failed=None):
        return _run(app, f"{ids.WORKLIST_REQUEST}.data", annotate.open_to_revise, None,
                    request, None, current, "pan", None, "Dr A", failed)

    # a.png open on page A, and claimed by it.
    meta = open_entry({"path": "a.png", "at": 1})[0]
    listing(meta, f"{ids.IMAGE_OPENED}.data")
    assert _claims(app) == [("page-a", "a.png")]
    # Open next picks b.png and claims it; b.png fails to open.
    assert open_next(meta)[0] == "b.png"
    assert _claims(app) == [("page-a", "b.png")]
    out = open_entry({"path": "b.png", "at": 2}, meta)
    assert out[0] is dash.no_update and "Cannot open this file." in text_of(out[4])
    failed = out[-2]
    assert list(failed["entries"]) == ["b.png"]
    # The claim goes back to a.png, still on screen; the note says what is passed over.
    labels, note = listing(meta, f"{ids.WORKLIST_FAILED}.data", failed)
    assert _claims(app) == [("page-a", "a.png")]
    assert "passes over, on this page, what it could not open: b.png" in note
    assert "b.png — not annotated" in labels
    # Open next goes on to c.png.
    assert open_next(meta, failed)[0] == "c.png"
    # c.png failing too: nothing left to open, and not "every image has a saved annotation".
    failed = {"entries": {**failed["entries"], "c.png": _sha(folder / "c.png")}}
    path, note = open_next(meta, failed)
    assert path is None and "could not be opened on this page" in note
    # b.png exported again, whole: its bytes changed, so it is offered again.
    (folder / "b.png").write_bytes(png_bytes(np.eye(12, 16, dtype=bool)))
    assert open_next(meta, failed)[0] == "b.png"


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.usefixtures("an_app_exists")
def test_after_a_save_the_failed_open_leaves_no_claim(tmp_path, annotate):
    folder = _folder(tmp_path)
    app = create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder})
    with app.server.test_request_context("/"):
        meta = annotate.open_worklist_entry({"path": "a.png", "at": 1}, None)[0]
    failed = {"entries": {"b.png": _sha(folder / "b.png")}, "at": 1, "last": "b.png"}

    def fired(meta, saved=None, page="page-a"):
        _run(app, f"{ids.WORKLIST_FAILED}.data", annotate.show_worklist, True, None, saved,
             meta, None, page, "Dr A", None, None, failed)

    # Save & next saved a.png (its claim ended), then Open next claimed b.png, which failed.
    with app.server.app_context():
        from annotation_client._app import get_index

        book = annotate._claims.claims_of(get_index())
        book.claim("page-a", "b.png")
        book.claim("page-b", "c.png")
    fired(meta, saved={"image": meta["sha256"], "versions": [1]})
    assert _claims(app) == [("page-b", "c.png")]
    # The store read back as another page of the tab loads, nothing open: only a claim
    # on the file that failed goes.
    with app.server.app_context():
        book.claim("page-a", "c.png")
    fired(None)
    assert _claims(app) == [("page-a", "c.png"), ("page-b", "c.png")]


def test_failed_entries_from_the_browser_are_checked(annotate):
    good = "a" * 64
    assert annotate._failed_entries({"entries": {"b.png": good}}) == {"b.png": good}
    for forged in (None, [], {"entries": []}, {"entries": {"b.png": "x"}},
                   {"entries": {"b.png": 5}}):
        assert annotate._failed_entries(forged) == {}, forged


# --------------------------------------------------------------------------- in a browser


@pytest.fixture
def worklist(tmp_path):
    folder = make_worklist(tmp_path)
    data = (folder / "b.png").read_bytes()
    (folder / "b.png").write_bytes(data[: len(data) // 2])  # truncated
    return folder


def test_save_and_next_and_open_next_get_past_a_damaged_file(dash_duo, data_dir, worklist):
    app = worklist_app(data_dir, worklist)
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    open_entry(dash_duo, "a.png")
    driver = dash_duo.driver
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr H", Keys.TAB)
    driver.find_element(By.ID, ids.NOTE).send_keys("oval")
    dash_duo.wait_for_element(f"#{ids.UNSAVED_MARK}.dirty", timeout=10)
    # Save & next saves a.png, then b.png, damaged, does not open: a.png stays, and the
    # page says b.png is passed over.
    click(driver, By.ID, ids.SAVE_NEXT_BUTTON)
    dash_duo.wait_for_element("#upload-error", timeout=20)
    settled(dash_duo, quiet=1.0)
    assert _image_name(dash_duo) == "a.png"
    # a.png is saved, so the tab holds no claim; none on b.png either (it held it for 15
    # minutes, and every other reader's Open next passed it over).
    assert _claims(app) == []
    # Open next goes on to c.png, not b.png again, and claims it.
    click(driver, By.ID, ids.WORKLIST_NEXT)
    wait_for(dash_duo, lambda: _image_name(dash_duo) == "c.png", 20, "c.png did not open")
    settled(dash_duo, quiet=0.5)
    assert [path for _page, path in _claims(app)] == ["c.png"]
    dash_duo.wait_for_contains_text("#worklist-passed-over", "b.png", timeout=15)
