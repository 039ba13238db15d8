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
from _dash_helpers import as_callback
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
    return create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder})


def _answer(app, sent, trigger=POLL, shown_note=None):
    """What the page gets for one call of the worklist's callback: its outputs."""
    from annotation_client.pages import annotate

    return as_callback(lambda: annotate.send_worklist(
        True, None, None, None, None, "page", None, 3, shown_note, None, sent),
        trigger, app=app, value=1)


def _size(answer) -> int:
    """Bytes of the answer's JSON, outputs left unchanged not counted (Dash leaves them
    out of the response)."""
    return len(json.dumps([v for v in answer if v is not dash.no_update], default=str))


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
    digest = _answer(app, None)[-1]
    # Another reader's save.
    save_version(tmp_path / "data", _sha(folder / "case03.png"), name="case03.png",
                 worklist_path="case03.png", saved_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    options, *_rest, after_save = _answer(app, digest)
    assert "case03.png — saved v1" in [o["label"] for o in options]
    assert after_save != digest
    # A new file.
    (folder / "case40.png").write_bytes((folder / "case39.png").read_bytes() + b"\0")
    options, *_rest, after_new = _answer(app, after_save)
    assert options[-1]["value"] == "case40.png" and after_new != after_save
    # The saved file replaced by other bytes: no longer saved.
    (folder / "case03.png").write_bytes((folder / "case04.png").read_bytes() + b"\0")
    options, *_rest, after_replaced = _answer(app, after_new)
    assert "case03.png — not annotated" in [o["label"] for o in options]
    assert _answer(app, after_replaced)[0] is dash.no_update


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
