"""Opening an image of the worklist lists its folder once.

Each callback an open sets off (the worklist's Previous and Next, the options and the
note after the open, the load of saved work) listed the folder again: three listings of
one folder, unchanged, for one open. They now share one (:func:`_worklist._image_paths`,
kept while no folder of the worklist has changed), and a file that arrives is listed at
the next look all the same.
"""

from __future__ import annotations

import os
import threading
import time

from _dash_helpers import (
    case_png,
    click,
    make_worklist,
    open_entry,
    settled,
    wait_for,
    worklist_app,
    worklist_labels,
)
from selenium.webdriver.common.by import By

from annotation_client import _worklist, ids
from annotation_client._storage import AnnotationStore


class Listings:
    """Counts the listings of one folder: ``os.scandir`` of it, in any thread."""

    def __init__(self, monkeypatch, folder):
        self.folder = os.fspath(folder.resolve())
        self.count = 0
        self._lock = threading.Lock()
        real = os.scandir

        def scandir(path="."):
            if os.fspath(path) == self.folder:
                with self._lock:
                    self.count += 1
            return real(path)

        monkeypatch.setattr(_worklist.os, "scandir", scandir)

    def reset(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
        return count


def _aged(folder) -> None:
    """Date the folder's last change a minute back: a folder changed in the last
    seconds is listed again at each look (the file system's clock may not have ticked
    since, see ``_worklist._RACY_NS``)."""
    when = time.time() - 60
    os.utime(folder, (when, when))


def test_one_listing_serves_until_a_file_arrives_or_leaves(tmp_path, monkeypatch):
    folder = tmp_path / "worklist"
    (folder / "site").mkdir(parents=True)
    for name in ("a.png", "site/b.png"):
        (folder / name).write_bytes(name.encode())
    for path in (folder / "site", folder):
        _aged(path)
    listings = Listings(monkeypatch, folder)
    store = AnnotationStore(tmp_path / "data")
    cache = _worklist.HashCache()
    for _ in range(3):
        assert [e.path for e in _worklist.list_images(folder, store, cache=cache).entries] \
            == ["a.png", "site/b.png"]
    assert listings.reset() == 1
    (folder / "site" / "c.png").write_bytes(b"c")  # in a folder under the worklist's
    assert [e.path for e in _worklist.list_images(folder, store, cache=cache).entries] \
        == ["a.png", "site/b.png", "site/c.png"]
    (folder / "a.png").rename(folder / "d.png")
    assert [e.path for e in _worklist.list_images(folder, store, cache=cache).entries] \
        == ["d.png", "site/b.png", "site/c.png"]
    # Changed just now, both times: each look lists it again (a file added in the
    # same tick of the file system's clock would not change its time).
    assert listings.reset() == 2
    _worklist.list_images(folder, store, cache=cache)
    assert listings.reset() == 1


def test_an_open_from_the_worklist_lists_its_folder_once(dash_duo, tmp_path, monkeypatch):
    folder = make_worklist(tmp_path)
    _aged(folder)
    listings = Listings(monkeypatch, folder)
    dash_duo.start_server(worklist_app(tmp_path / "data", folder))
    dash_duo.wait_for_element("#worklist-count", timeout=30)
    settled(dash_duo)
    listings.reset()
    open_entry(dash_duo, "a.png")
    wait_for(dash_duo, lambda: "a.png — not annotated · open" in worklist_labels(dash_duo.driver),
             20, "a.png not marked open")
    settled(dash_duo)
    assert listings.reset() <= 1  # none when the last look's listing still holds
    click(dash_duo.driver, By.ID, ids.WORKLIST_FOLLOWING)  # Next: one more open
    wait_for(dash_duo, lambda: "b.png — not annotated · open" in worklist_labels(dash_duo.driver),
             20, "b.png not marked open")
    settled(dash_duo)
    assert listings.reset() <= 1  # none when the last look's listing still holds
    # A file that arrives is in the list at the next look (Refresh, or the poll).
    case_png(folder / "d.png", 99)
    click(dash_duo.driver, By.ID, ids.WORKLIST_REFRESH)
    wait_for(dash_duo, lambda: "d.png — not annotated" in worklist_labels(dash_duo.driver), 20,
             "the new file is not listed")
