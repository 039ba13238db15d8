"""The worklist's options go to the page only when they changed (audit helper-901, F1, F2).

Every open, save and health poll lists the folder again. The dropdown's options (over
500 KB at 5000 entries) were sent with each answer, every 20 s in each idle tab; now the
page keeps a digest of what it last got (``WORKLIST_SENT``) and an answer with the same
options leaves them out. What a reader would see change still comes at the next poll.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import dash
import numpy as np
import pytest
from _dash_helpers import as_callback, closed_port, worklist_labels
from _saved_data import save_version
from PIL import Image

from annotation_client import create_app, ids

pytestmark = pytest.mark.usefixtures("an_app_exists")

POLL = f"{ids.SERVER_POLL}.n_intervals"


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    ramp = (np.add.outer(np.arange(20), np.arange(30)) // 4).astype(np.uint8)
    for n in range(40):
        Image.fromarray(ramp + np.uint8(n)).save(folder / f"case{n:02d}.png")
    # The model server: a closed port (the page's segmentation fails, quietly).
    return create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder,
                       "MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                       "REQUEST_TIMEOUT": 3})


def _answer(app, sent, trigger=POLL, shown_note=None):
    """What the page gets for one call of the worklist's callback: its outputs."""
    from annotation_client.pages import annotate

    return as_callback(lambda: annotate.send_worklist(
        True, None, None, None, None, "page", None, 3, shown_note, None, sent, None),
        trigger, app=app, value=1)


def _size(answer) -> int:
    """Bytes of the answer's JSON, outputs left unchanged not counted (Dash leaves them
    out of the response)."""
    return len(json.dumps([v for v in answer if v is not dash.no_update],
                          default=lambda v: v.to_plotly_json()))


def _applied(page_options, answer):
    """The options the page has after ``answer`` (whole, or a Patch of a few entries, and
    of those added at or deleted from the end)."""
    if not isinstance(answer, dash.Patch):
        return answer
    options = list(page_options)
    for operation in answer.to_plotly_json()["operations"]:
        kind, location = operation["operation"], operation["location"]
        if kind == "Extend":
            assert location == []
            options.extend(operation["params"]["value"])
            continue
        assert kind in ("Assign", "Delete") and len(location) == 1, operation
        if kind == "Delete":
            assert location[0] == len(options) - 1  # from the end only
            del options[location[0]]
        else:
            options[location[0]] = operation["params"]["value"]
    return options


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_poll_with_nothing_changed_sends_no_options(app):
    first = _answer(app, None, trigger="annotate-page-load.data")
    options, note, *_rest, digest = first
    assert len(options) == 40 and isinstance(digest, str)
    sent_note = [part.to_plotly_json() for part in note]
    again = _answer(app, digest, shown_note=sent_note)
    assert again[0] is dash.no_update and again[-1] is dash.no_update
    assert again[1] is dash.no_update  # the count did not change either
    assert _size(again) * 20 < _size(first)
    # A page without the digest (reloaded: its store is empty) gets them all.
    assert _answer(app, None)[0] == options


def test_what_changed_comes_at_the_next_poll(app, tmp_path):
    folder = tmp_path / "worklist"
    page, *_rest, digest = _answer(app, None)
    # Another reader's save: that entry alone goes down.
    save_version(tmp_path / "data", _sha(folder / "case03.png"), name="case03.png",
                 worklist_path="case03.png", saved_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    answer = _answer(app, digest)
    assert isinstance(answer[0], dash.Patch) and _size(answer) < 600
    page, after_save = _applied(page, answer[0]), answer[-1]
    assert "case03.png — saved v1" in [o["label"] for o in page]
    assert after_save != digest
    # A new file at the end of the list: that entry alone goes down.
    (folder / "case40.png").write_bytes((folder / "case39.png").read_bytes() + b"\0")
    answer = _answer(app, after_save)
    assert isinstance(answer[0], dash.Patch) and _size(answer) < 600
    page, after_new = _applied(page, answer[0]), answer[-1]
    assert page[-1]["value"] == "case40.png" and len(page) == 41 and after_new != after_save
    # One in the middle of it: the whole list.
    (folder / "case20a.png").write_bytes((folder / "case39.png").read_bytes() + b"\1")
    options, *_rest, after_new = _answer(app, after_new)
    assert options[21]["value"] == "case20a.png" and len(options) == 42
    page = options
    # The saved file replaced by other bytes: no longer saved.
    (folder / "case03.png").write_bytes((folder / "case04.png").read_bytes() + b"\0")
    answer = _answer(app, after_new)
    page = _applied(page, answer[0])
    assert "case03.png — not annotated" in [o["label"] for o in page]
    assert _answer(app, answer[-1])[0] is dash.no_update
    # Whatever the page was sent, it ends with the options a whole listing gives.
    assert page == _answer(app, None)[0]
    # A page whose options the client no longer remembers gets them whole.
    assert _answer(app, "0" * 32)[0] == page


def test_a_listing_looks_up_where_only_links_and_folders_lead(tmp_path, monkeypatch):
    # Each open, save and poll lists the folder: a realpath (a few system calls) and
    # pathlib objects per file took most of a 5000-file listing's time (F1). Links are
    # still followed and checked: one out of the folder is not listed.
    from annotation_client import _worklist
    from annotation_client._storage import AnnotationStore

    folder = tmp_path / "worklist"
    for n in range(300):
        (folder / f"site{n % 3}").mkdir(parents=True, exist_ok=True)
        (folder / f"site{n % 3}" / f"case{n:03d}.png").write_bytes(b"%d" % n)
    (tmp_path / "outside.png").write_bytes(b"out")
    (folder / "site0" / "link out.png").symlink_to(tmp_path / "outside.png")
    (folder / "site1" / "link in.png").symlink_to(folder / "site2" / "case002.png")
    store = AnnotationStore(tmp_path / "data")
    real = _worklist.os.path.realpath
    looked_up = []
    monkeypatch.setattr(_worklist.os.path, "realpath",
                        lambda path, **kw: looked_up.append(path) or real(path, **kw))
    listing = _worklist.list_images(folder, store, cache=_worklist.HashCache())
    paths = [e.path for e in listing.entries]
    assert len(paths) == 301 and "site1/link in.png" in paths
    assert "site0/link out.png" not in paths
    assert len(looked_up) < 10  # the folder, its 3 folders, the 2 links, the data folder


def test_in_the_browser_the_open_mark_and_a_status_follow_the_patches(dash_duo, app,
                                                                        tmp_path):
    from _dash_helpers import click, wait_for
    from selenium.webdriver.common.by import By

    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    wait_for(dash_duo, lambda: len(worklist_labels(driver)) == 40, 20, "no options")
    for name in ("case00.png", "case01.png"):
        click(driver, By.ID, ids.WORKLIST_FOLLOWING)
        wait_for(dash_duo, lambda n=name: f"{n} — not annotated · open"
                 in worklist_labels(driver), 20,
                 f"{name} not marked open: {worklist_labels(driver)[:3]}")
    labels = worklist_labels(driver)
    assert labels[0] == "case00.png — not annotated" and len(labels) == 40
    assert sum(" · open" in label for label in labels) == 1
    # Another reader's save, seen at Refresh (as at the poll): one entry sent, shown.
    save_version(tmp_path / "data", _sha(tmp_path / "worklist" / "case05.png"),
                 name="case05.png", worklist_path="case05.png",
                 saved_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    click(driver, By.ID, ids.WORKLIST_REFRESH)
    wait_for(dash_duo, lambda: "case05.png — saved v1" in worklist_labels(driver), 20,
             "the save did not show")
    labels = worklist_labels(driver)
    assert len(labels) == 40 and labels[1] == "case01.png — not annotated · open"
    assert [label for label in labels if "saved" in label] == ["case05.png — saved v1"]
