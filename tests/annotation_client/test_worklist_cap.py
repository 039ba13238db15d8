"""A worklist of more files than the list holds (``_worklist.MAX_ENTRIES``): the files
past the cap are not forgotten (audit helper-901, F3).

The folder holds the cap and three more tiny files (their bytes are their number, so
each is its own image); which images are saved is told by a stand-in for
:meth:`AnnotationStore.versions`, so that thousands of saves need not be written.
"""

from __future__ import annotations

import hashlib

import dash
import pytest
from _dash_helpers import as_callback, text_of

from annotation_client import _progress, _views, _worklist, create_app, ids
from annotation_client._database import AnnotationIndex, default_url
from annotation_client._storage import AnnotationStore

CAP = _worklist.MAX_ENTRIES
NAMES = [f"case{n:05d}.png" for n in range(CAP + 3)]


def _sha(n: int) -> str:
    return hashlib.sha256(b"%d" % n).hexdigest()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cap") / "worklist"
    folder.mkdir()
    for n, name in enumerate(NAMES):
        (folder / name).write_bytes(b"%d" % n)
    return folder


@pytest.fixture
def saved(monkeypatch):
    """The SHA-256 of the images saved (v1): edit the set to save or unsave one."""
    shas: set[str] = set()

    def versions(self, sha, annotator=None):
        return [1] if sha in shas else []

    monkeypatch.setattr(AnnotationStore, "versions", versions)
    return shas


def test_open_next_goes_on_past_the_cap_reading_only_what_it_reaches(folder, saved, tmp_path):
    saved.update(_sha(n) for n in range(CAP + 1))  # every listed one, and the first past
    store = AnnotationStore(tmp_path / "data")
    cache = _worklist.HashCache()
    listing = _worklist.list_images(folder, store, cache=cache)
    assert listing.truncated and listing.unlisted == tuple(NAMES[CAP:])
    assert _worklist.next_unannotated(listing.entries) is None  # the list alone: "done"
    assert cache.reads == CAP

    walk = _worklist.unannotated_walk(listing, store, NAMES[3], cache=cache)
    assert next(walk).path == NAMES[CAP + 1]
    assert cache.reads == CAP + 2  # the last file not read: the walk stopped before it
    assert [e.path for e in walk] == [NAMES[CAP + 2]]
    # From a file past the cap: on after it, then round from the top.
    assert [e.path for e in _worklist.unannotated_walk(listing, store, NAMES[-1],
                                                       cache=cache)] == [NAMES[CAP + 1]]
    saved.discard(_sha(2))  # listed: its status is the listing's
    listing = _worklist.list_images(folder, store, cache=cache)
    assert [e.path for e in _worklist.unannotated_walk(listing, store, NAMES[CAP + 1],
                                                       cache=cache)] == [NAMES[-1], NAMES[2]]


def test_the_count_never_says_none_left_when_files_are_not_listed(folder, saved, tmp_path):
    saved.update(_sha(n) for n in range(CAP))
    listing = _worklist.list_images(folder, AnnotationStore(tmp_path / "data"))
    text = text_of(_views.worklist_summary(listing))
    assert text.startswith(f"{CAP} of {CAP + 3} image(s) listed · 0 of them not annotated · "
                           "3 more not listed, not counted")
    assert "Open next not annotated goes on to them" in text
    position = _views.worklist_position(listing.entries, NAMES[-1], set(listing.unlisted))
    assert text_of(position) == f"Open: {NAMES[-1]} (not listed: past the first {CAP})"


def _app(tmp_path, folder):
    return create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder})


def _next(app, meta=None):
    from annotation_client.pages import annotate

    request, _value, _asked, _pending, note = as_callback(
        lambda: annotate.request_entry(None, 1, None, None, "", meta, "page", None),
        f"{ids.WORKLIST_NEXT}.n_clicks", app=app, value=1)
    return (None if request is dash.no_update else request["path"]), note


@pytest.mark.usefixtures("an_app_exists")
def test_the_page_opens_next_past_the_cap_and_says_done_only_when_all_are(folder, saved,
                                                                          tmp_path):
    app = _app(tmp_path, folder)
    saved.update(_sha(n) for n in range(CAP))
    path, _note = _next(app)
    assert path == NAMES[CAP]  # not "every other image has a saved annotation"
    saved.update(_sha(n) for n in range(CAP, CAP + 3))
    path, note = _next(app)
    assert path is None and "worklist-done" in str(note)


def test_progress_counts_the_files_past_the_lists_cap(folder, saved, tmp_path):
    saved.update(_sha(n) for n in range(CAP))  # not read by anyone: the index is empty
    index = AnnotationIndex(default_url(tmp_path / "data"))
    result = _progress.index_progress(index, AnnotationStore(tmp_path / "data"), folder)
    assert result["images"] == CAP + 3 and result["unread"] == CAP + 3
    assert result["worklist"] == {"files": CAP + 3, "found": CAP + 3, "too_large": 0,
                                  "truncated": False}
